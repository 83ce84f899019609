/**
 * Shared machinery of the metrics: the attribution on the input grid, per-pixel and per-patch
 * relevance, the replacement images perturbations draw from, target scores in memory-budgeted
 * batches, and the one perturbation engine every faithfulness metric uses — rows `from + m ⊙ (to −
 * from)` built chunk by chunk, so a 100-step curve of N images is ⌈N·101 / batch⌉ forward passes,
 * never 101 sequential calls per image.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import { batchSizeFor } from '../engine/memory.js';
import { gaussianBlur } from '../attribution/math.js';
import { createRng, gaussian, type Rng } from '../util/random.js';

/**
 * An attribution of another shape brought to the input grid [N, H, W, C]: channels summed when the
 * channel count differs, then a bilinear resize (Grad-CAM's convention) and broadcast over the input's
 * channels. Layer attributions and feature-resolution maps thus become input maps; a map already on
 * the grid is returned as is.
 */
export function toInputGrid(a: tf.Tensor4D, shape: number[]): { grid: tf.Tensor4D; resampled: boolean } {
  const [n, h, w, c] = shape;
  if (a.shape[0] !== n) throw new OptionError(`expected an attribution with ${n} maps (one per image); got ${a.shape[0]}`);
  if (a.shape[1] === h && a.shape[2] === w && a.shape[3] === c) return { grid: a, resampled: false };
  const grid = tf.tidy(() => {
    let m: tf.Tensor4D = a.shape[3] === c ? a : (tf.sum(a, 3, true) as tf.Tensor4D);
    if (m.shape[1] !== h || m.shape[2] !== w) m = tf.image.resizeBilinear(m, [h, w], false, true);
    if (m.shape[3] !== c) m = tf.mul(m, tf.fill([1, 1, 1, c], 1 / c)) as tf.Tensor4D;
    return m;
  });
  return { grid, resampled: true };
}

/** Per-pixel relevance (channels summed, sign kept), one Float64Array of H·W per image. */
export async function pixelRelevance(a: tf.Tensor4D): Promise<Float64Array[]> {
  const [n, h, w] = a.shape;
  const s = tf.sum(a, 3);
  const v = (await s.data()) as Float32Array;
  s.dispose();
  return Array.from({ length: n }, (_, i) => Float64Array.from(v.subarray(i * h * w, (i + 1) * h * w)));
}

/** Patches of p×p pixels (the last row/column of patches may be smaller): pixel indices per patch. */
export function patchFeatures(h: number, w: number, p: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let r0 = 0; r0 < h; r0 += p) {
    for (let c0 = 0; c0 < w; c0 += p) {
      const idx: number[] = [];
      for (let r = r0; r < Math.min(h, r0 + p); r++) for (let c = c0; c < Math.min(w, c0 + p); c++) idx.push(r * w + c);
      out.push(Int32Array.from(idx));
    }
  }
  return out;
}

/** Patch size 'auto': single pixels up to 64 pixels per side, else about 1/28 of the side (8 at 224). */
export function resolvePatchSize(v: unknown, h: number, w: number): number {
  if (v === 'auto' || v == null) return Math.max(h, w) <= 64 ? 1 : Math.max(1, Math.round(Math.max(h, w) / 28));
  const p = Number(v);
  if (!Number.isInteger(p) || p < 1 || p > Math.max(h, w)) throw new OptionError(`expected option patchSize to be "auto" or an integer in 1..${Math.max(h, w)}; got ${JSON.stringify(v)}`);
  return p;
}

/** Summed relevance per feature. */
export function featureRelevance(pixels: Float64Array, features: Int32Array[]): Float64Array {
  const out = new Float64Array(features.length);
  features.forEach((f, j) => {
    let s = 0;
    for (let k = 0; k < f.length; k++) s += pixels[f[k]];
    out[j] = s;
  });
  return out;
}

/** The patches of an option's patch size for these images and each image's summed relevance per patch. */
export async function patchRelevance(a: tf.Tensor4D, patchSize: unknown): Promise<{ patchSize: number; features: Int32Array[]; relevance: Float64Array[] }> {
  const [, h, w] = a.shape;
  const size = resolvePatchSize(patchSize, h, w);
  const features = patchFeatures(h, w, size);
  const relevance = (await pixelRelevance(a)).map((p) => featureRelevance(p, features));
  return { patchSize: size, features, relevance };
}

/** Feature indices from most to least relevant (descending, ties by index) — or the reverse order. */
export function featureOrder(rel: Float64Array, descending = true): Int32Array {
  const idx = Array.from({ length: rel.length }, (_, i) => i);
  idx.sort((a, b) => (descending ? rel[b] - rel[a] : rel[a] - rel[b]) || a - b);
  return Int32Array.from(idx);
}

export type Replacement = 'baseline' | 'blur' | 'uniform' | 'inverse' | 'mean' | 'road';
export const REPLACEMENTS: readonly Replacement[] = ['baseline', 'blur', 'uniform', 'inverse', 'mean', 'road'];
/** Replacements that do not depend on which pixels are removed (insertion's starting canvas). */
export const FIXED_REPLACEMENTS: readonly Replacement[] = ['baseline', 'blur', 'uniform', 'inverse', 'mean'];

/**
 * ROAD's noisy linear imputation (Rong et al. 2022, "remove and debias"): every removed pixel takes
 * the weighted mean of its 8 neighbours (1/6 direct, 1/12 diagonal) — the linear system ROAD solves —
 * plus seeded Gaussian noise, so the removed region carries no shape of the mask the model could read.
 * Solved approximately, batched: a normalised-convolution fill from the kept pixels (Gaussian, σ =
 * side/16), then `iterations` Jacobi steps of the neighbour-mean system. Noise is drawn per row from
 * `seed` + row index, so results do not depend on how rows are batched.
 */
export interface RoadImputation {
  iterations: number;
  /** Standard deviation of the noise, in input units. */
  noiseStd: number;
  seed: number;
}

function roadImpute(xr: tf.Tensor4D, m: tf.Tensor4D, firstRow: number, o: RoadImputation): tf.Tensor4D {
  const [c, h, w, ch] = xr.shape;
  const known = tf.sub(1, m) as tf.Tensor4D;
  const sigma = Math.max(1, Math.max(h, w) / 16);
  const fill = tf.div(gaussianBlur(tf.mul(xr, known) as tf.Tensor4D, sigma), tf.maximum(gaussianBlur(known, sigma), 1e-6));
  const keep = tf.mul(known, xr);
  let v = tf.add(keep, tf.mul(m, fill)) as tf.Tensor4D;
  const k = [1 / 12, 1 / 6, 1 / 12, 1 / 6, 0, 1 / 6, 1 / 12, 1 / 6, 1 / 12];
  const kernel = tf.tile(tf.reshape(tf.tensor1d(k), [3, 3, 1, 1]), [1, 1, ch, 1]) as tf.Tensor4D;
  const wsum = tf.depthwiseConv2d(tf.ones([1, h, w, ch]) as tf.Tensor4D, kernel, 1, 'same');
  for (let i = 0; i < o.iterations; i++) v = tf.add(keep, tf.mul(m, tf.div(tf.depthwiseConv2d(v, kernel, 1, 'same'), wsum))) as tf.Tensor4D;
  if (o.noiseStd > 0) {
    const noise = tf.stack(Array.from({ length: c }, (_, r) => tf.randomNormal([h, w, ch], 0, o.noiseStd, 'float32', o.seed + firstRow + r)));
    v = tf.add(v, tf.mul(m, noise)) as tf.Tensor4D;
  }
  return v;
}

/**
 * What perturbed pixels are set to: a constant (`baselineValue`, default the domain's low end),
 * the Gaussian-blurred image, seeded uniform noise over the domain, the inverse (low + high − x), or
 * the image's mean per channel. The caller owns the result.
 */
export function replacementImages(classifier: Classifier, x: tf.Tensor4D, how: Replacement, opts: { baselineValue?: number | null; blurSigma?: number; seed?: number }): tf.Tensor4D {
  const { low, high } = classifier.domain;
  switch (how) {
    case 'baseline':
      return tf.fill(x.shape, opts.baselineValue ?? low) as tf.Tensor4D;
    case 'blur':
      return gaussianBlur(x, opts.blurSigma ?? Math.max(1, x.shape[1] / 28 * 3));
    case 'uniform':
      return tf.randomUniform(x.shape, low, high, 'float32', opts.seed ?? 0) as tf.Tensor4D;
    case 'inverse':
      return tf.tidy(() => tf.sub(low + high, x) as tf.Tensor4D);
    case 'mean':
      return tf.tidy(() => tf.mul(tf.mean(x, [1, 2], true), tf.onesLike(x)) as tf.Tensor4D);
    case 'road':
      // the removed pixels are imputed per row (perturbedScores' `road`); the replacement itself is x
      return tf.clone(x);
    default:
      throw new OptionError(`expected a replacement (${REPLACEMENTS.join(', ')}); got ${JSON.stringify(how)}`);
  }
}

export type ScoreOutput = 'probability' | 'logit';

/** Target score of logits: the logit or the softmax probability of the target class. */
function targetScores(logits: tf.Tensor2D, targets: number[], output: ScoreOutput): tf.Tensor1D {
  return tf.tidy(() => {
    const v = output === 'probability' ? tf.softmax(logits) : logits;
    return tf.sum(tf.mul(v, targetMask(targets, logits.shape[1])), 1) as tf.Tensor1D;
  });
}

/** Target scores of x (one per row), in batches that fit the memory budget. */
export async function scoresOf(classifier: Classifier, x: tf.Tensor4D, targets: number[], output: ScoreOutput): Promise<Float64Array> {
  const n = x.shape[0];
  const out = new Float64Array(n);
  const bs = batchSizeFor(classifier, 'forward', 256, { shape: x.shape.slice(1) });
  for (let s = 0; s < n; s += bs) {
    const c = Math.min(bs, n - s);
    const t = tf.tidy(() => targetScores(classifier.logits(c === n ? x : tf.slice(x, s, c)), targets.slice(s, s + c), output));
    out.set((await t.data()) as Float32Array, s);
    t.dispose();
  }
  return out;
}

/**
 * The perturbation engine. Row r belongs to image `imageOf(r)`; its pixels `pixelsOf(r)` are taken
 * from `to`, the rest from `from` (row = from + m ⊙ (to − from), m broadcast over channels). Rows are
 * built and scored in chunks of the memory budget's forward batch: one forward pass per chunk.
 * Returns the target score of every row.
 */
export async function perturbedScores(
  classifier: Classifier,
  from: tf.Tensor4D,
  to: tf.Tensor4D,
  rows: number,
  imageOf: (row: number) => number,
  pixelsOf: (row: number, mask: Float32Array) => void,
  targets: number[],
  output: ScoreOutput,
  progress?: (fraction: number) => void,
  road?: RoadImputation,
): Promise<Float64Array> {
  const [, h, w] = from.shape;
  const out = new Float64Array(rows);
  const bs = batchSizeFor(classifier, 'forward', 256, { shape: from.shape.slice(1) });
  for (let s = 0; s < rows; s += bs) {
    const c = Math.min(bs, rows - s);
    const mask = new Float32Array(c * h * w);
    const idx = new Int32Array(c);
    const ts: number[] = [];
    for (let r = 0; r < c; r++) {
      idx[r] = imageOf(s + r);
      ts.push(targets[idx[r]]);
      pixelsOf(s + r, mask.subarray(r * h * w, (r + 1) * h * w));
    }
    const t = tf.tidy(() => {
      const ii = tf.tensor1d(idx, 'int32');
      const a = tf.gather(from, ii);
      const b = tf.gather(to, ii);
      const m = tf.tensor4d(mask, [c, h, w, 1]);
      let xr = tf.add(a, tf.mul(m, tf.sub(b, a))) as tf.Tensor4D;
      if (road) xr = roadImpute(xr, m, s, road);
      return targetScores(classifier.logits(xr), ts, output);
    });
    out.set((await t.data()) as Float32Array, s);
    t.dispose();
    progress?.((s + c) / rows);
  }
  return out;
}

/** Number of features perturbed at step k of `steps` (0 … all). */
export function countAtStep(k: number, steps: number, features: number): number {
  return Math.round((k * features) / steps);
}

/**
 * Scores along a perturbation curve: per image, features are perturbed in `orders[i]` order, step
 * k = 0…steps perturbing the first countAtStep(k) of them. Returns per image steps + 1 scores.
 */
export async function curveScores(
  classifier: Classifier, from: tf.Tensor4D, to: tf.Tensor4D, orders: Int32Array[], features: Int32Array[], steps: number,
  targets: number[], output: ScoreOutput, progress?: (f: number) => void, road?: RoadImputation,
): Promise<number[][]> {
  const n = orders.length;
  const per = steps + 1;
  const scores = await perturbedScores(classifier, from, to, n * per, (r) => Math.floor(r / per), (r, mask) => {
    const i = Math.floor(r / per);
    const k = r % per;
    const m = countAtStep(k, steps, features.length);
    for (let j = 0; j < m; j++) {
      const f = features[orders[i][j]];
      for (let q = 0; q < f.length; q++) mask[f[q]] = 1;
    }
  }, targets, output, progress, road);
  return Array.from({ length: n }, (_, i) => Array.from(scores.subarray(i * per, (i + 1) * per)));
}

/** Area under a curve sampled at equal steps on [0, 1] (trapezoid rule). */
export function auc(y: number[]): number {
  if (y.length < 2) return y[0] ?? NaN;
  let s = 0;
  for (let k = 1; k < y.length; k++) s += (y[k] + y[k - 1]) / 2;
  return s / (y.length - 1);
}

export function meanCurve(ys: number[][]): number[] {
  if (ys.length === 0) return [];
  return ys[0].map((_, k) => ys.reduce((a, y) => a + y[k], 0) / ys.length);
}

export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa === 0 || sbb === 0) return saa === 0 && sbb === 0 ? 1 : 0;
  return sab / Math.sqrt(saa * sbb);
}

/** Ranks with ties averaged (1-based), as scipy.stats.rankdata. */
export function ranks(v: ArrayLike<number>): Float64Array {
  const idx = Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[a] - v[b]);
  const r = new Float64Array(v.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]] === v[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return pearson(ranks(a), ranks(b));
}

/** Seeded generator for a metric (the same seed gives the same perturbations). */
export function metricRng(seed: unknown): Rng {
  const s = Number(seed);
  if (!Number.isInteger(s)) throw new OptionError(`expected option seed to be an integer; got ${JSON.stringify(seed)}`);
  return createRng(s);
}

export { gaussian };

export function clampToDomain(classifier: Classifier, x: tf.Tensor): tf.Tensor4D {
  return tf.clipByValue(x, classifier.domain.low, classifier.domain.high) as tf.Tensor4D;
}

/** Output option check. */
export function scoreOutput(v: unknown): ScoreOutput {
  if (v !== 'probability' && v !== 'logit') throw new OptionError(`expected option output to be "probability" or "logit"; got ${JSON.stringify(v)}`);
  return v;
}

/** Re-explain rows in chunks (at most `batch` images per explain call): the method's own work stays bounded. */
export async function explainInChunks(
  explainFn: (c: Classifier, x: tf.Tensor4D, t: number[]) => Promise<tf.Tensor4D>,
  classifier: Classifier, x: tf.Tensor4D, targets: number[], batch: number,
): Promise<tf.Tensor4D> {
  const n = x.shape[0];
  if (n <= batch) return explainFn(classifier, x, targets);
  const parts: tf.Tensor4D[] = [];
  try {
    for (let s = 0; s < n; s += batch) {
      const c = Math.min(batch, n - s);
      const xs = tf.slice(x, s, c);
      try {
        parts.push(await explainFn(classifier, xs, targets.slice(s, s + c)));
      } finally {
        xs.dispose();
      }
    }
    return tf.concat(parts, 0);
  } finally {
    tf.dispose(parts);
  }
}

/** Per-image L2 norms of a batch [N, ...] as numbers. */
export async function rowNorms(t: tf.Tensor): Promise<Float64Array> {
  const n = t.shape[0];
  const s = tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.reshape(t, [n, -1])), 1)));
  const v = Float64Array.from((await s.data()) as Float32Array);
  s.dispose();
  return v;
}

/** The ROAD imputation settings of a metric's options, when its replacement is 'road'. */
export function roadOptions(classifier: Classifier, replacement: Replacement, seed: number): RoadImputation | undefined {
  if (replacement !== 'road') return undefined;
  const [h, w] = classifier.inputShape;
  return { iterations: Math.max(8, Math.round(Math.max(h, w) / 4)), noiseStd: 0.01 * (classifier.domain.high - classifier.domain.low), seed };
}
