/**
 * The results page (`glasswing experiment all --out DIR`, docs/results.md): every registered
 * experiment run in one process, in name order, each in its own try/catch, and one markdown page of
 * the seed claims they return (claim | seed | seed's figure | ours | note) with their figures, the
 * command that reproduces each and its run time.
 *
 * Why one page built by a run and not a hand-kept table: a figure typed into the docs goes stale the
 * day a model is retrained; this page is regenerated from the same run that printed the CLI table,
 * so every "ours" cell has a command, a date and a machine load behind it. A failed experiment is a
 * row that says it failed (with its one-line error), never a missing row and never an aborted page.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatTable, listExperiments, type SeedClaim, type TaskDefinition, type TaskOptions } from '../tasks/registry.js';
import { OptionError } from '../core/errors.js';
import { markdownTable } from './report.js';

/** What one experiment of `experiment all` did. */
export interface ExperimentRun {
  name: string;
  description: string;
  status: 'ok' | 'failed';
  /** The error's first line, when it failed. */
  error?: string;
  /** Wall time of its run() in seconds. */
  seconds: number;
  claims: SeedClaim[];
  rows: Array<Record<string, string | number>>;
  /** PNG figures it wrote that exist on disk. */
  figures: string[];
  /** The command that reproduces it alone. */
  command: string;
  outDir: string;
  /** When it ran (ISO) and the 1-minute load average at its start. */
  date: string;
  load: number;
  /** True when taken from an earlier run's DIR/NAME/run.json (`resume`). */
  reused?: boolean;
}

export interface RunAllOptions {
  /** Folder of the page; each experiment writes into DIR/NAME. */
  outDir: string;
  quick?: boolean;
  /** The experiments to run. Default: every registered one, in name order. */
  experiments?: TaskDefinition[];
  /** Run only these names (unknown names are an OptionError). */
  only?: string[];
  /** Skip these names. */
  skip?: string[];
  /** Extra options passed to every experiment (--key value on the command line). */
  extra?: Record<string, unknown>;
  /** Progress sink, one line per event (default: none). */
  log?: (line: string) => void;
  /**
   * Reuse an experiment's earlier result (DIR/NAME/run.json, written after every run) when it ran
   * without failing, with the same quick flag and options; run only the others. A long full run
   * that was interrupted, or that must be redone for one retrained model, need not start over.
   */
  resume?: boolean;
  /** With resume: run these again even when a reusable result exists (e.g. their model was retrained). */
  rerun?: string[];
}

/** Where runAllExperiments keeps what one experiment did, beside its output. */
export const RUN_FILE = 'run.json';

const firstLine = (e: unknown): string => {
  const err = e as Error;
  const msg = err && typeof err.message === 'string' ? `${err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message}` : String(e);
  return msg.split('\n')[0].trim();
};

function selected(o: RunAllOptions): TaskDefinition[] {
  const all = [...(o.experiments ?? listExperiments())].sort((a, b) => a.name.localeCompare(b.name));
  const names = new Set(all.map((d) => d.name));
  for (const n of [...(o.only ?? []), ...(o.skip ?? []), ...(o.rerun ?? [])]) {
    if (!names.has(n)) throw new OptionError(`expected experiment names among ${[...names].join(', ')}; got "${n}"`);
  }
  return all.filter((d) => (!o.only?.length || o.only.includes(d.name)) && !o.skip?.includes(d.name));
}

function commandFor(name: string, dir: string, quick: boolean, extra: Record<string, unknown>): string {
  const opts = Object.entries(extra).map(([k, v]) => (v === true ? ` --${k}` : ` --${k} ${String(v)}`)).join('');
  return `glasswing experiment ${name} --out ${dir}${quick ? ' --quick' : ''}${opts}`;
}

/**
 * Run every selected experiment, one after another, each into DIR/NAME. One failure is recorded
 * (status 'failed', its error's first line) and the next experiment runs.
 */
export async function runAllExperiments(o: RunAllOptions): Promise<ExperimentRun[]> {
  const defs = selected(o);
  const quick = Boolean(o.quick);
  const extra = o.extra ?? {};
  const log = o.log ?? (() => {});
  const runs: ExperimentRun[] = [];
  const start = performance.now();
  for (const [i, def] of defs.entries()) {
    const dir = path.join(o.outDir, def.name);
    fs.mkdirSync(dir, { recursive: true });
    const command = commandFor(def.name, dir, quick, extra);
    const saved = path.join(dir, RUN_FILE);
    if (o.resume && !o.rerun?.includes(def.name) && fs.existsSync(saved)) {
      const old = JSON.parse(fs.readFileSync(saved, 'utf8')) as ExperimentRun;
      if (old.status === 'ok' && old.command === command && old.figures.every((f) => fs.existsSync(f))) {
        runs.push({ ...old, reused: true });
        log(`[${i + 1}/${defs.length}] ${def.name}: reused the run of ${old.date} (${old.seconds.toFixed(1)} s)`);
        continue;
      }
    }
    const run: ExperimentRun = {
      name: def.name, description: def.description, status: 'ok', seconds: 0, claims: [], rows: [], figures: [],
      command, outDir: dir, date: new Date().toISOString(), load: os.loadavg()[0],
    };
    log(`[${i + 1}/${defs.length}] ${def.name} …`);
    const t = performance.now();
    try {
      const options: TaskOptions = { ...extra, quick, outDir: dir };
      const r = await def.run(options);
      run.claims = r.claims ?? [];
      run.rows = r.rows ?? [];
      run.figures = (r.files ?? []).filter((f) => f.toLowerCase().endsWith('.png') && fs.existsSync(f));
    } catch (e) {
      run.status = 'failed';
      run.error = firstLine(e);
    }
    run.seconds = (performance.now() - t) / 1000;
    runs.push(run);
    fs.writeFileSync(saved, JSON.stringify(run, null, 1));
    const elapsed = (performance.now() - start) / 1000;
    log(`[${i + 1}/${defs.length}] ${def.name}: ${run.status === 'ok' ? `ok, ${run.claims.length} claim row(s)` : `FAILED (${run.error})`} in ${run.seconds.toFixed(1)} s (elapsed ${elapsed.toFixed(1)} s)`);
  }
  return runs;
}

/** The combined claims table: one row per claim, and one per failed experiment or experiment without claims. */
export function claimRows(runs: ExperimentRun[]): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const r of runs) {
    if (r.status === 'failed') {
      out.push({ experiment: r.name, claim: '(experiment failed)', seed: '', "seed's figure": '', ours: 'FAILED', note: r.error ?? '', 's': r.seconds.toFixed(1) });
      continue;
    }
    if (!r.claims.length) {
      out.push({ experiment: r.name, claim: '(no seed claim rows; see its table)', seed: '', "seed's figure": '', ours: '', note: '', 's': r.seconds.toFixed(1) });
      continue;
    }
    for (const c of r.claims) out.push({ experiment: r.name, claim: c.claim, seed: c.seed, "seed's figure": c.seedFigure, ours: c.measured, note: c.note ?? '', 's': r.seconds.toFixed(1) });
  }
  return out;
}

/** The CLI's table: the same rows as the page's summary. */
export function claimsText(runs: ExperimentRun[]): string {
  return formatTable(claimRows(runs));
}

/** Where and how the page was made (its header). */
export interface PageInfo {
  command: string;
  date: string;
  machine: string;
  /** 1-minute load average at the start and the end of the run. */
  loadStart: number;
  loadEnd: number;
  totalSeconds: number;
  backend: string;
  /** Anything else the header should say (e.g. models missing at run time). */
  notes?: string[];
}

export function machineInfo(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model?.trim() ?? 'unknown CPU';
  return `${cpus.length} × ${model}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * The page as markdown. `figureLink(run, file)` gives the relative link under which figure `file`
 * of `run` is reachable from the page (the page's writer copies it there).
 */
export function resultsMarkdown(runs: ExperimentRun[], info: PageInfo, figureLink: (run: ExperimentRun, file: string) => string): string {
  const ok = runs.filter((r) => r.status === 'ok').length;
  const reused = runs.filter((r) => r.reused).length;
  const dates = runs.map((r) => r.date).filter(Boolean).sort();
  const [first, last] = [dates[0] ?? info.date, dates[dates.length - 1] ?? info.date];
  const ls = runs.map((r) => r.load).filter((v) => Number.isFinite(v));
  const loads = ls.length ? `${Math.min(...ls).toFixed(1)}–${Math.max(...ls).toFixed(1)}` : 'unknown';
  const lines: string[] = [
    '# Results: the seeds\' claims, reproduced',
    '',
    'Generated, not typed in: every figure below was measured by `glasswing experiment all`, which runs every registered',
    'experiment on the shipped models in name order and writes this page. Regenerate it with the command below; each',
    'experiment\'s own command reruns it alone. A claim the run does not reproduce stays on the page as measured, with its note.',
    '',
    `- command: \`${info.command}\``,
    `- date: ${info.date}${reused ? `; the experiments ran between ${first} and ${last} (each section gives its own start)` : ''}`,
    `- machine: ${info.machine}; backend ${info.backend}`,
    `- load average (1 min): ${reused ? `${loads} at the experiments' starts; ` : ''}${info.loadStart.toFixed(2)} at the start of this command, ${info.loadEnd.toFixed(2)} at its end (the machine is shared; run times are wall times under that load)`,
    `- total: ${runs.length} experiments (${ok} ran, ${runs.length - ok} failed), ${(runs.reduce((t, r) => t + r.seconds, 0) / 60).toFixed(1)} min of experiment run time` +
      (reused ? `; ${reused} of them reused from an earlier run of the same command (\`--resume\`), this command took ${(info.totalSeconds / 60).toFixed(1)} min` : ''),
    ...(info.notes ?? []).map((n) => `- ${n}`),
    '',
    '## Every claim',
    '',
    '| experiment | claim | seed | seed\'s figure | ours | note |',
    '|---|---|---|---|---|---|',
    ...claimRows(runs).map((r) => `| [${r.experiment}](#${r.experiment}) | ${esc(r.claim)} | ${esc(r.seed)} | ${esc(r["seed's figure"])} | ${esc(r.ours)} | ${esc(r.note)} |`),
    '',
  ];
  for (const r of runs) {
    lines.push(`## ${r.name}`, '', r.description, '', `- command: \`${r.command}\``,
      `- run time: ${r.seconds.toFixed(1)} s, started ${r.date} at load ${r.load.toFixed(1)}${r.reused ? ' (from an earlier run of the same command, resumed)' : ''}`);
    if (r.status === 'failed') {
      lines.push(`- **failed**: ${r.error}`, '');
      continue;
    }
    lines.push('');
    if (r.claims.length) {
      lines.push('| claim | seed | seed\'s figure | ours | note |', '|---|---|---|---|---|');
      for (const c of r.claims) lines.push(`| ${esc(c.claim)} | ${esc(c.seed)} | ${esc(c.seedFigure)} | ${esc(c.measured)} | ${esc(c.note ?? '')} |`);
    } else {
      lines.push('No seed claim rows: this experiment reproduces figures or measures without a seed figure to compare; its table follows.');
    }
    lines.push('');
    if (r.rows.length) lines.push('<details><summary>its table</summary>', '', markdownTable(r.rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [esc(k), typeof v === 'string' ? esc(v) : v])))), '', '</details>', '');
    for (const f of r.figures) lines.push(`![${r.name}: ${path.basename(f)}](${figureLink(r, f)})`, '');
  }
  return lines.join('\n');
}

/**
 * Write the page to `pagePath`, copying each run's PNG figures into `figuresDir/NAME/` (relative
 * links from the page). Figures over `maxFigureBytes` are left out with a note, so a docs copy stays
 * small. Returns the page path and the figures copied.
 */
export function writeResultsPage(
  runs: ExperimentRun[], info: PageInfo, pagePath: string, figuresDir: string, maxFigureBytes = Infinity,
): { page: string; figures: string[]; skipped: string[] } {
  const copied: string[] = [];
  const skipped: string[] = [];
  const pageDir = path.dirname(path.resolve(pagePath));
  const kept = runs.map((r) => ({
    ...r,
    figures: r.figures.filter((f) => {
      const size = fs.statSync(f).size;
      if (size > maxFigureBytes) {
        skipped.push(f);
        return false;
      }
      return true;
    }),
  }));
  const linkOf = new Map<string, string>();
  for (const r of kept) {
    const dest = path.join(figuresDir, r.name);
    for (const f of r.figures) {
      const to = path.join(dest, path.basename(f));
      if (path.resolve(to) !== path.resolve(f)) {
        fs.mkdirSync(dest, { recursive: true });
        fs.copyFileSync(f, to);
      }
      copied.push(to);
      linkOf.set(`${r.name}\0${f}`, path.relative(pageDir, path.resolve(to)).split(path.sep).join('/'));
    }
  }
  const notes = [...(info.notes ?? []), ...(skipped.length ? [`left out (over ${(maxFigureBytes / 1024).toFixed(0)} KiB): ${skipped.map((f) => path.basename(f)).join(', ')}`] : [])];
  fs.mkdirSync(pageDir, { recursive: true });
  fs.writeFileSync(pagePath, resultsMarkdown(kept, { ...info, notes }, (r, f) => linkOf.get(`${r.name}\0${f}`)!));
  return { page: pagePath, figures: copied, skipped };
}
