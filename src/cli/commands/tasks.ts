import { formatTable, getBenchmark, getExperiment, listBenchmarks, listExperiments, type TaskDefinition } from '../../tasks/registry.js';
import { currentBackend } from '../../engine/backend.js';
import { OptionError } from '../../core/errors.js';
import { flag, str, taskOptions, type ParsedArgs } from '../args.js';
import type { Command } from './index.js';
import '../../../bench/index.js';
import '../../experiments/index.js';

async function runTask(kind: 'bench' | 'experiment', def: TaskDefinition, args: ParsedArgs): Promise<void> {
  const options = {
    ...taskOptions(args, ['json', 'out']),
    quick: flag(args, 'quick'),
    outDir: str(args, 'out', kind === 'experiment' ? `out/experiments/${def.name}` : undefined as unknown as string),
  };
  const result = await def.run(options);
  process.stdout.write(`${def.name}: ${def.description} (backend ${currentBackend()})\n\n${formatTable(result.rows)}\n`);
  if (result.files?.length) process.stdout.write(`\nwrote ${result.files.join(', ')}\n`);
  if (flag(args, 'json')) {
    for (const line of result.jsonLines ?? []) process.stdout.write(JSON.stringify({ [kind]: def.name, ...line }) + '\n');
    process.stdout.write(JSON.stringify({ [kind]: def.name, backend: currentBackend(), date: new Date().toISOString(), ...result.json }) + '\n');
  }
}

function listing(defs: TaskDefinition[]): string {
  return defs.map((d) => `  ${d.name.padEnd(14)} ${d.description}`).join('\n');
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'run a benchmark (ms per image, per method, batch size and backend noted)',
  get usage() {
    return `glasswing bench NAME [--quick] [--json]\n\nbenchmarks:\n${listing(listBenchmarks())}`;
  },
  async run(args) {
    const name = args.positional[0];
    if (!name) throw new OptionError(`expected a benchmark name (${listBenchmarks().map((b) => b.name).join(', ')}); got none`);
    await runTask('bench', getBenchmark(name), args);
  },
};

export const experimentCommand: Command = {
  name: 'experiment',
  summary: 'reproduce an experiment of the source papers (markdown table + PNG figures)',
  get usage() {
    return `glasswing experiment NAME [--quick] [--out DIR] [--json]\n\nexperiments:\n${listing(listExperiments())}`;
  },
  async run(args) {
    const name = args.positional[0];
    if (!name) throw new OptionError(`expected an experiment name (${listExperiments().map((b) => b.name).join(', ')}); got none`);
    await runTask('experiment', getExperiment(name), args);
  },
};
