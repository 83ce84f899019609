import { formatTable, getBenchmark, getExperiment, listBenchmarks, listExperiments, type TaskDefinition } from '../../tasks/registry.js';
import { currentBackend } from '../../engine/backend.js';
import { OptionError } from '../../core/errors.js';
import { flag, str, taskOptions, type ParsedArgs } from '../args.js';
import type { Command } from './index.js';
import '../../../bench/index.js';
import '../../experiments/index.js';
import { runAllExperiments, claimsText, writeResultsPage, machineInfo } from '../../experiments/results-page.js';
import * as os from 'node:os';
import * as path from 'node:path';

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
    return `glasswing experiment NAME [--quick] [--out DIR] [--json]\n` +
      `glasswing experiment all --out DIR [--quick] [--only a,b] [--skip a,b] [--resume [--rerun a,b]] [--publish docs/results.md] [--max-figure-kb N]\n` +
      `  runs every experiment (name order; a failure is a row, not an abort) and writes DIR/results.md: each seed claim beside\n` +
      `  ours, the figures, the command and run time; --publish also writes the page there with its PNGs in a folder beside it;\n` +
      `  --resume reuses each experiment's earlier result in DIR (DIR/NAME/run.json) unless it failed or is named in --rerun\n\n` +
      `experiments:\n${listing(listExperiments())}`;
  },
  async run(args) {
    const name = args.positional[0];
    if (!name) throw new OptionError(`expected an experiment name (all, ${listExperiments().map((b) => b.name).join(', ')}); got none`);
    if (name === 'all') await runAll(args);
    else await runTask('experiment', getExperiment(name), args);
  },
};

const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

/** `glasswing experiment all`: every experiment, one page (src/experiments/results-page.ts). */
async function runAll(args: ParsedArgs): Promise<void> {
  const out = str(args, 'out');
  if (!out) throw new OptionError('expected --out DIR for experiment all (the page and every experiment\'s output go there); got none');
  const quick = flag(args, 'quick');
  const publish = str(args, 'publish');
  const maxKb = Number(str(args, 'max-figure-kb', 'Infinity'));
  if (!(maxKb > 0)) throw new OptionError(`expected --max-figure-kb a positive number; got ${str(args, 'max-figure-kb')}`);
  const extra = taskOptions(args, ['json', 'out', 'quick', 'only', 'skip', 'publish', 'max-figure-kb', 'resume', 'rerun']);
  const loadStart = os.loadavg()[0];
  const t = performance.now();
  const runs = await runAllExperiments({
    outDir: out, quick, only: list(str(args, 'only')), skip: list(str(args, 'skip')), extra,
    resume: flag(args, 'resume'), rerun: list(str(args, 'rerun')),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const argv = process.argv.slice(2).join(' ');
  const info = {
    command: `glasswing ${argv}`, date: new Date().toISOString(), machine: machineInfo(), backend: currentBackend() ?? 'none',
    loadStart, loadEnd: os.loadavg()[0], totalSeconds: (performance.now() - t) / 1000,
  };
  const page = writeResultsPage(runs, info, path.join(out, 'results.md'), out);
  process.stdout.write(`experiment all (backend ${currentBackend()}): ${runs.length} experiments, ${runs.filter((r) => r.status === 'failed').length} failed, ${(info.totalSeconds / 60).toFixed(1)} min\n\n${claimsText(runs)}\n\nwrote ${page.page}\n`);
  if (publish) {
    const figDir = path.join(path.dirname(publish), path.basename(publish, path.extname(publish)));
    const p = writeResultsPage(runs, info, publish, figDir, maxKb * 1024);
    process.stdout.write(`wrote ${p.page} and ${p.figures.length} figures under ${figDir}${p.skipped.length ? ` (${p.skipped.length} over ${maxKb} KiB left out)` : ''}\n`);
  }
  if (flag(args, 'json')) {
    for (const r of runs) process.stdout.write(JSON.stringify({ experiment: r.name, status: r.status, error: r.error, seconds: r.seconds, claims: r.claims }) + '\n');
  }
}
