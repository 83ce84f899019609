import { listMethods } from '../../core/registry.js';
import { flag } from '../args.js';
import type { Command } from './index.js';

export const methodsCommand: Command = {
  name: 'methods',
  summary: 'list the registered explanation methods and their default options',
  usage: 'glasswing methods [--json]',
  async run(args) {
    const methods = listMethods();
    if (flag(args, 'json')) {
      process.stdout.write(JSON.stringify(methods.map((m) => ({ name: m.name, family: m.family, signed: m.signed, description: m.description, defaults: m.defaults }))) + '\n');
      return;
    }
    const width = Math.max(...methods.map((m) => m.name.length));
    let family = '';
    for (const m of methods) {
      if (m.family !== family) {
        family = m.family;
        process.stdout.write(`\n${family}\n`);
      }
      process.stdout.write(`  ${m.name.padEnd(width)}  ${m.description}\n`);
      const defaults = Object.entries(m.defaults).filter(([, v]) => typeof v !== 'object' || v === null || Array.isArray(v));
      if (defaults.length) process.stdout.write(`  ${' '.repeat(width)}  options: ${defaults.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}\n`);
    }
  },
};
