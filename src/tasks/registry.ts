/**
 * Benchmarks (`glasswing bench NAME`) and experiments (`glasswing experiment NAME`) register here.
 * Both return a readable table plus a JSON object of their figures; the CLI prints the table and,
 * with --json, ends with one line of JSON so runs can be compared (preceded by one line per
 * `jsonLines` entry when the task gives them).
 */
import { UnknownMethodError } from '../core/errors.js';

export interface TaskOptions {
  /** Reduced sizes for a quick check (tests use it). */
  quick?: boolean;
  /** Output folder for figures and markdown (experiments). */
  outDir?: string;
  seed?: number;
  /** Free-form extra options from the command line (--key value). */
  [key: string]: unknown;
}

/**
 * One row of the results page (docs/results.md, `glasswing experiment all`): a seed's claim beside
 * what this run measured. Experiments that reproduce a seed figure return these so the page is built
 * from the same run that printed the table, never typed in by hand.
 */
export interface SeedClaim {
  /** What is claimed, short: "FGSM ε = 0.3, naturally trained (Madry arch.)". */
  claim: string;
  /** Seed id and place: "004 §3", "001 Fig. 7". */
  seed: string;
  /** The seed's figure, as the seed states it ("< 10 %", "0.217"). */
  seedFigure: string;
  /** Ours, measured in this run, with its unit. */
  measured: string;
  /** One line on why it differs, when it does (a measured reason, not a guess). */
  note?: string;
}

export interface TaskResult {
  /** Rows of the table to print; every row has the same keys. */
  rows: Array<Record<string, string | number>>;
  /** Figures for the JSON line. */
  json: Record<string, unknown>;
  /** With --json, printed one per line before the summary line (e.g. one per table row). */
  jsonLines?: Array<Record<string, unknown>>;
  /** Markdown written (experiments) and files produced. */
  markdown?: string;
  files?: string[];
  /** Seed claims this run reproduces (or does not), for the results page. */
  claims?: SeedClaim[];
}

export interface TaskDefinition {
  name: string;
  description: string;
  run(options: TaskOptions): Promise<TaskResult>;
}

const benchmarks = new Map<string, TaskDefinition>();
const experiments = new Map<string, TaskDefinition>();

export function registerBenchmark(def: TaskDefinition): void {
  benchmarks.set(def.name, def);
}

export function registerExperiment(def: TaskDefinition): void {
  experiments.set(def.name, def);
}

function lookup(kind: string, map: Map<string, TaskDefinition>, name: string): TaskDefinition {
  const d = map.get(name);
  if (!d) throw new UnknownMethodError(`expected a ${kind} name (${[...map.keys()].sort().join(', ') || 'none registered'}); got "${name}"`);
  return d;
}

export const getBenchmark = (name: string) => lookup('benchmark', benchmarks, name);
export const getExperiment = (name: string) => lookup('experiment', experiments, name);
export const listBenchmarks = () => [...benchmarks.values()];
export const listExperiments = () => [...experiments.values()];

/** Format rows as an aligned plain-text table. */
export function formatTable(rows: Array<Record<string, string | number>>): string {
  if (rows.length === 0) return '(no rows)';
  const keys = Object.keys(rows[0]);
  const cell = (v: string | number | undefined) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v ?? ''));
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(keys), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(keys.map((k) => cell(r[k]))))].join('\n');
}
