/**
 * One shard: explain its images with its method, then write the attributions (.npy), the index lines
 * (.jsonl) and the manifest record. Data files go to a temporary name and are renamed to a name unique
 * to this attempt ("<shard>.<token>.npy"); the shard is committed by creating its record exclusively.
 * So a crash never leaves a half file under a final name, and when two processes compute the same
 * shard (a stalled job taken over while its worker still runs), exactly one commits and the other
 * removes its own files: no shard is lost or written twice.
 */
import * as tf from '@tensorflow/tfjs-core';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { renameSync } from 'node:fs';
import type { Classifier } from '../core/classifier.js';
import { explain, getMethod } from '../core/registry.js';
import { parseTarget } from '../core/target.js';
import { InvalidInputError } from '../core/errors.js';
import { evaluate as evaluateMetric, methodExplainer } from '../metrics/registry.js';
import '../metrics/index.js';
import { encodeNpy } from './npy.js';
import { createExclusive, removeQuietly, sha256, tmpName, writeFlushed } from './files.js';
import { readRecord, recordPath, SHARDS_DIR, verifyRecord, type ShardRecord } from './manifest.js';
import { loadShardImages } from './source.js';
import type { JobSpec, ShardSpec } from './spec.js';

/** One line of the index: one image explained by one method. */
export interface IndexRow {
  id: string;
  /** Position of the image in the run. */
  position: number;
  label: number;
  prediction: number;
  target: number;
  method: string;
  shard: string;
  /** The .npy file (relative to the output folder) and the row in it. */
  file: string;
  row: number;
  /** Method wall time per image (the batch's time divided by its size). */
  timeMs: number;
  /** The method's scalar extras for this image (completeness error, steps, …). */
  extras: Record<string, unknown>;
  /** Score of each `--metrics` metric for this image's attribution. */
  metrics?: Record<string, number>;
}

export interface ShardContext {
  outDir: string;
  spec: Pick<JobSpec, 'dataset' | 'options' | 'target' | 'batch' | 'metrics' | 'metricOptions'>;
  classifier: Classifier;
  /** Time spent loading the model for this shard, recorded in the manifest (queue workers). */
  modelMs?: number;
  /** Called after each explained batch with the number of images in it (progress bars). */
  onImages?: (n: number) => void;
}

export interface ShardOutcome {
  /** 'written': this call committed the shard; 'present': it was already finished (by anyone). */
  outcome: 'written' | 'present';
  record: ShardRecord;
}

export const workerName = (): string => `${hostname()}:${process.pid}`;

function num(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(6)) : v;
}

function small(v: unknown): unknown {
  if (typeof v === 'number') return num(v);
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (Array.isArray(v) && v.length <= 64 && v.every((e) => typeof e === 'number' || typeof e === 'boolean')) return v.map((e) => (typeof e === 'number' ? num(e) : e));
  return undefined;
}

/**
 * The extras that belong to image i of a batch of n: an array or a small tensor with one entry per
 * image (completenessError, scoreDifference, featureCount, …, whether or not the method lists it in
 * perImageExtras) gives image i's entry; scalars are the same for every image; maps and other large
 * values stay out of the index (they are not what an index row is for).
 */
export function imageExtras(extras: Record<string, unknown>, n: number, i: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extras)) {
    let item: unknown;
    if (Array.isArray(v) && v.length === n) item = small(v[i]);
    else if (v instanceof tf.Tensor && v.rank >= 1 && v.shape[0] === n && v.size / n <= 16) {
      const per = v.size / n;
      const vals = Array.from(v.dataSync().subarray(i * per, (i + 1) * per) as ArrayLike<number>);
      item = small(per === 1 ? vals[0] : vals);
    } else item = small(v);
    if (item !== undefined) out[k] = item;
  }
  return out;
}

/**
 * Scores of every `--metrics` metric for this batch's attributions (one per image), or undefined when
 * the job has none. Metrics that explain again (sensitivity, randomization…) rerun the shard's method
 * with the job's options.
 */
async function scoreMetrics(ctx: ShardContext, method: string, x: tf.Tensor4D, attribution: tf.Tensor4D, targets: number[]): Promise<Record<string, number[]> | undefined> {
  const names = ctx.spec.metrics ?? [];
  if (!names.length) return undefined;
  const out: Record<string, number[]> = {};
  const options = ctx.spec.options[method] ?? {};
  for (const metric of names) {
    const r = await evaluateMetric(metric, ctx.classifier, x, attribution, {
      target: targets,
      options: ctx.spec.metricOptions?.[metric] ?? {},
      explain: methodExplainer(method, options),
    });
    out[metric] = r.scores;
  }
  return out;
}

/** Yields to the event loop so timers run between batches (the queue worker's lock renewal). */
const breathe = () => new Promise<void>((r) => setImmediate(r));

/** Runs one shard unless it is already finished; see the file comment for how it commits. */
export async function runShard(ctx: ShardContext, shard: ShardSpec): Promise<ShardOutcome> {
  const existing = readRecord(ctx.outDir, shard);
  if (existing) {
    if (!verifyRecord(ctx.outDir, existing)) return { outcome: 'present', record: existing };
    // A record whose files are gone or changed: the shard is redone (the record is the commit point).
    removeQuietly(recordPath(ctx.outDir, shard));
  }
  getMethod(shard.method); // an unknown method fails before any loading
  const { classifier } = ctx;
  const t0 = performance.now();
  const src = await loadShardImages(ctx.spec.dataset, shard, classifier.inputShape, [classifier.domain.low, classifier.domain.high]);
  const loadMs = performance.now() - t0;
  const n = shard.end - shard.start;
  // Most methods map onto the input's shape; layer methods onto their layer's: the first batch decides.
  let mapShape: number[] | undefined;
  let values = new Float32Array(0);
  const token = randomBytes(4).toString('hex');
  const rel = `${SHARDS_DIR}/${shard.method}/${shard.id}.${token}`;
  const rows: IndexRow[] = [];
  const target = parseTarget(ctx.spec.target);
  let explainMs = 0;
  let metricMs = 0;
  try {
    for (let s = 0; s < n; s += ctx.spec.batch) {
      const b = Math.min(ctx.spec.batch, n - s);
      const xb = tf.slice(src.images, [s, 0, 0, 0], [b, -1, -1, -1]) as tf.Tensor4D;
      const t1 = performance.now();
      try {
        const e = await explain(shard.method, classifier, xb, { target, options: ctx.spec.options[shard.method] ?? {} });
        try {
          const data = (await e.attribution.data()) as Float32Array;
          explainMs += performance.now() - t1;
          const shapeHere = e.attribution.shape.slice(1);
          if (!mapShape) {
            mapShape = shapeHere;
            values = new Float32Array(n * (data.length / b));
          } else if (shapeHere.join() !== mapShape.join()) {
            throw new InvalidInputError(`method "${shard.method}" gave maps of shape [${shapeHere.join(', ')}] in one batch and [${mapShape.join(', ')}] in another`);
          }
          values.set(data, s * (data.length / b));
          const t2 = performance.now();
          const scores = await scoreMetrics(ctx, shard.method, xb, e.attribution, e.target);
          metricMs += performance.now() - t2;
          for (let i = 0; i < b; i++) {
            const logits = e.logits[i];
            rows.push({
              id: src.ids[s + i],
              position: shard.start + s + i,
              label: src.labels[s + i],
              prediction: logits.indexOf(Math.max(...logits)),
              target: e.target[i],
              method: shard.method,
              shard: shard.id,
              file: `${rel}.npy`,
              row: s + i,
              timeMs: num(e.timeMs / b),
              extras: imageExtras(e.extras, b, i),
              ...(scores ? { metrics: Object.fromEntries(Object.entries(scores).map(([k, v]) => [k, num(v[i])])) } : {}),
            });
          }
        } finally {
          e.dispose();
        }
      } finally {
        xb.dispose();
      }
      ctx.onImages?.(b);
      await breathe();
    }
  } finally {
    src.images.dispose();
  }

  const t3 = performance.now();
  const shape = [n, ...(mapShape ?? classifier.inputShape)];
  const npyBytes = encodeNpy(values, shape);
  const indexText = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const npyPath = join(ctx.outDir, `${rel}.npy`);
  const indexPath = join(ctx.outDir, `${rel}.jsonl`);
  for (const [path, data] of [[npyPath, npyBytes], [indexPath, indexText]] as const) {
    const tmp = tmpName(path);
    writeFlushed(tmp, data);
    renameSync(tmp, path);
  }
  const record: ShardRecord = {
    shard: shard.id,
    method: shard.method,
    start: shard.start,
    end: shard.end,
    rows: n,
    npy: { file: `${rel}.npy`, sha256: sha256(npyBytes), bytes: npyBytes.length, shape },
    index: { file: `${rel}.jsonl`, sha256: sha256(indexText), bytes: Buffer.byteLength(indexText) },
    worker: workerName(),
    modelMs: num(ctx.modelMs ?? 0),
    loadMs: num(loadMs),
    explainMs: num(explainMs),
    metricMs: num(metricMs),
    writeMs: 0,
    finishedAt: '',
  };
  record.writeMs = num(performance.now() - t3);
  record.finishedAt = new Date().toISOString();
  if (createExclusive(recordPath(ctx.outDir, shard), JSON.stringify(record) + '\n')) return { outcome: 'written', record };
  // Another process committed this shard first: keep its files, drop ours.
  removeQuietly(npyPath);
  removeQuietly(indexPath);
  return { outcome: 'present', record: readRecord(ctx.outDir, shard)! };
}
