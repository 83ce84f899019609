/**
 * Building a job from command-line choices, and running it in this process (`glasswing run` without
 * --queue): claim the output folder, verify what is already there (a restarted run skips every shard
 * whose files match their checksums and redoes the rest), run the missing shards with a progress bar
 * (ETA and images/s), then write the index and the report.
 */
import type { Classifier } from '../core/classifier.js';
import { getMethod } from '../core/registry.js';
import { getMetric } from '../metrics/registry.js';
import '../metrics/index.js';
import { OptionError } from '../core/errors.js';
import { parseTarget } from '../core/target.js';
import { progress } from '../util/progress.js';
import { finalizeRun, type RunSummary } from './finalize.js';
import { removeOrphans, scanRun, type RunState } from './manifest.js';
import { runShard } from './shard.js';
import { datasetSpec } from './source.js';
import { jobModelSpec } from './model-source.js';
import { claimOutDir, makeSpec, type JobSpec } from './spec.js';

export interface JobChoices {
  /** Shipped model name, model folder, or http(s) URL of a model folder. */
  model: string;
  /** mnist, fashion or an image folder. */
  dataset: string;
  split?: string;
  limit?: number;
  methods: string[];
  /** Method options: KEY → value for every method that has KEY, or METHOD → {KEY: value}. */
  options?: Record<string, unknown>;
  target?: string;
  /** Evaluation metrics to score every attribution with. */
  metrics?: string[];
  /** Metric options: KEY → value for every metric that has KEY, or METRIC → {KEY: value}. */
  metricOptions?: Record<string, unknown>;
  shardSize?: number;
  batch?: number;
}

export const DEFAULT_SHARD_SIZE = 256;
export const DEFAULT_BATCH = 32;

/** Splits method options: a key that names a method holds that method's options; other keys go to every method that has them. */
export function optionsPerMethod(methods: string[], options: Record<string, unknown>): Record<string, Record<string, unknown>> {
  return splitOptions(methods, options, (m) => getMethod(m).defaults, 'method');
}

function splitOptions(
  names: string[],
  options: Record<string, unknown>,
  defaultsOf: (name: string) => object,
  what: string,
): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const used = new Set<string>();
  for (const m of names) {
    const def = { defaults: defaultsOf(m) };
    out[m] = {};
    for (const [k, v] of Object.entries(options)) {
      if (k in def.defaults) {
        out[m][k] = v;
        used.add(k);
      }
    }
    const own = options[m];
    if (own && typeof own === 'object' && !Array.isArray(own)) {
      Object.assign(out[m], own);
      used.add(m);
    }
  }
  const unused = Object.keys(options).filter((k) => !used.has(k));
  if (unused.length) throw new OptionError(`expected ${what} options of ${names.join(', ')}; no ${what} has "${unused.join('", "')}"`);
  return out;
}

/** The job spec for these choices (methods, target and options are checked here, before any work). */
export async function buildSpec(c: JobChoices): Promise<JobSpec> {
  if (c.methods.length === 0) throw new OptionError('expected --methods a,b,…; got none');
  for (const m of c.methods) getMethod(m);
  if (new Set(c.methods).size !== c.methods.length) throw new OptionError(`expected each method once in --methods; got ${c.methods.join(',')}`);
  const target = c.target ?? 'predicted';
  parseTarget(target);
  const shardSize = c.shardSize ?? DEFAULT_SHARD_SIZE;
  const batch = c.batch ?? Math.min(DEFAULT_BATCH, shardSize);
  if (!Number.isInteger(batch) || batch < 1) throw new OptionError(`expected --batch to be a positive integer; got ${batch}`);
  const model = jobModelSpec(c.model);
  const metrics = c.metrics ?? [];
  for (const m of metrics) getMetric(m);
  if (new Set(metrics).size !== metrics.length) throw new OptionError(`expected each metric once in --metrics; got ${metrics.join(',')}`);
  if (!metrics.length && c.metricOptions && Object.keys(c.metricOptions).length) throw new OptionError('expected --metrics with --metric-options; got no metrics');
  return makeSpec({
    model,
    ...(metrics.length ? { metrics, metricOptions: splitOptions(metrics, c.metricOptions ?? {}, (m) => getMetric(m).defaults, 'metric') } : {}),
    dataset: await datasetSpec(c.dataset, { split: c.split, limit: c.limit }),
    methods: c.methods,
    options: optionsPerMethod(c.methods, c.options ?? {}),
    target,
    shardSize,
    batch,
  });
}

/**
 * Claims the folder for the job and checks every finished shard against its checksum; broken shards
 * lose their record (so they are redone). `exclusive`: no other writer runs on this folder, so
 * leftovers of dead writers can be removed now.
 */
export function prepareRun(outDir: string, spec: JobSpec, opts: { exclusive?: boolean } = {}): RunState {
  claimOutDir(outDir, spec);
  const state = scanRun(outDir, spec, { verify: true, repair: true });
  if (opts.exclusive) removeOrphans(outDir, spec, state.done);
  return state;
}

export interface LocalRunResult {
  /** Shards computed by this call. */
  written: number;
  /** Shards found finished (checksums verified) and skipped. */
  skipped: number;
  /** Shards whose files did not match their record, redone. */
  redone: number;
  summary: RunSummary;
}

/** Runs every missing shard of the job in this process, then finalizes. */
export async function runLocal(outDir: string, spec: JobSpec, classifier: Classifier, opts: { label?: string } = {}): Promise<LocalRunResult> {
  const state = prepareRun(outDir, spec, { exclusive: true });
  const todo = state.missing;
  const total = todo.reduce((a, s) => a + s.end - s.start, 0);
  const bar = progress(opts.label ?? `run ${spec.key}`, total);
  const start = performance.now();
  let done = 0;
  let written = 0;
  for (const shard of todo) {
    const r = await runShard({ outDir, spec, classifier, onImages: (n) => {
      done += n;
      const secs = (performance.now() - start) / 1000;
      bar.update(done, `${(done / Math.max(secs, 1e-3)).toFixed(1)} img/s`);
    } }, shard);
    if (r.outcome === 'written') written++;
  }
  bar.done(`${(done / Math.max((performance.now() - start) / 1000, 1e-3)).toFixed(1)} img/s`);
  const summary = await finalizeRun(outDir, spec, classifier);
  return { written, skipped: spec.shards.length - todo.length, redone: state.broken.length, summary };
}
