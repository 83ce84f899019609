#!/usr/bin/env node
/**
 * glasswing — explain image classifiers from the command line.
 * Every error ends the program with a non-zero exit code and one line saying what was expected and what came.
 */
import { initBackend } from '../engine/backend.js';
import { GlasswingError } from '../core/errors.js';
import { parseArgs } from './args.js';
import { commands, usage } from './commands/index.js';

const BOOLEAN_FLAGS = ['json', 'quick', 'help', 'stock', 'no-bias', 'invert', 'resume', 'detach', 'in-process', 'no-metrics'];

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 1;
  }
  const command = commands.get(name);
  if (!command) {
    process.stderr.write(`glasswing: expected a command (${[...commands.keys()].join(', ')}); got "${name}"\n`);
    return 2;
  }
  const args = parseArgs(rest, BOOLEAN_FLAGS);
  if (args.flags.has('help')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  const backend = await initBackend();
  process.stderr.write(`glasswing ${name}: backend ${backend}\n`);
  await command.run(args);
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    const kind = err instanceof GlasswingError ? err.name : 'error';
    process.stderr.write(`glasswing: ${kind}: ${message.split('\n')[0]}\n`);
    if (process.env.GLASSWING_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  },
);
