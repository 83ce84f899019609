/**
 * Neuron consistency (Dong et al.; seed 004).
 *
 * For each unit n of a layer (a channel of a conv layer, scored by its maximum over positions, or
 * a dense unit), take the images that activate it most (top 1 %). p_i = consis(n, c_i) is the
 * fraction of them that contain concept c_i (default concept: the image's true class; a per-image
 * concept table may be given instead). The unit's consistency is
 *   consis(n) = pᵀ A p,  a_ij = exp(−d²(c_i, c_j) / 2σ²)
 * from a concept-distance matrix d. consis_adv(n) is the same over a set of adversarial images,
 * whose concept is that of the image they were made from.
 *
 * Default distances: with a confusion matrix, classes the model confuses are close —
 * d_ij = 2 + 4·(1 − c_ij / max c) for i ≠ j with c_ij the symmetric confusion rate (a range like
 * WordNet hop counts, 2–6), d_ii = 0; without one, A = I (consis = Σ p_i², the purity).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { defaultFeatureLayer } from './adversarial-training.js';
import { pgd } from './pgd.js';

export interface ConsistencyOptions {
  /** Layer (default: the last conv layer, else the last hidden layer). */
  layer?: string;
  /** Fraction of images taken as a unit's top activations (default 0.01, at least 1 image). */
  topFraction?: number;
  /** Per-image concepts for the real images (default: labels). */
  concepts?: ArrayLike<number>;
  /** Per-image concepts for the adversarial images (default: advLabels). */
  advConcepts?: ArrayLike<number>;
  numConcepts?: number;
  /** Concept-distance matrix d (numConcepts²). Overrides `confusion`. */
  distance?: number[][];
  /** Confusion matrix (rows true, columns predicted) to derive distances from. */
  confusion?: number[][];
  /** σ of the concept correlation (default 1). */
  sigma?: number;
  /** Reduce a conv channel over positions with 'max' (default) or 'mean'. */
  reduce?: 'max' | 'mean';
  batchSize?: number;
}

export interface ConsistencyResult {
  layer: string;
  units: number;
  topK: number;
  topKAdv: number;
  consis: number[];
  consisAdv: number[];
  meanConsis: number;
  meanConsisAdv: number;
  /** The concept correlation matrix used. */
  A: number[][];
}

/** Concept correlation a_ij = exp(−d_ij² / 2σ²). */
export function conceptCorrelation(distance: number[][], sigma = 1): number[][] {
  return distance.map((row) => row.map((d) => (Number.isFinite(d) ? Math.exp(-(d * d) / (2 * sigma * sigma)) : 0)));
}

/** The default concept distances from a confusion matrix (see the file comment). */
export function distanceFromConfusion(confusion: number[][]): number[][] {
  const k = confusion.length;
  const rowSum = confusion.map((r) => r.reduce((s, v) => s + v, 0) || 1);
  const rate = (i: number, j: number) => (confusion[i][j] / rowSum[i] + confusion[j][i] / rowSum[j]) / 2;
  let max = 0;
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) if (i !== j) max = Math.max(max, rate(i, j));
  return Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 0 : 2 + 4 * (1 - (max > 0 ? rate(i, j) / max : 0)))));
}

/** Per-image unit scores [N, U] of a layer. */
export async function unitScores(classifier: Classifier, images: tf.Tensor4D, layer: string, reduce: 'max' | 'mean' = 'max', batchSize = 128): Promise<{ scores: Float32Array; units: number }> {
  const n = images.shape[0];
  const parts: Float32Array[] = [];
  let units = 0;
  for (let b = 0; b < n; b += batchSize) {
    const m = Math.min(batchSize, n - b);
    const xb = tf.slice(images, b, m);
    const a = classifier.activations(xb, [layer]).get(layer)!;
    const s = tf.tidy(() => {
      if (a.rank === 4) return reduce === 'max' ? tf.max(a, [1, 2]) : tf.mean(a, [1, 2]);
      return tf.reshape(a, [m, -1]);
    });
    tf.dispose([xb, a]);
    units = s.shape[1]!;
    parts.push((await s.data()) as Float32Array);
    s.dispose();
  }
  const scores = new Float32Array(n * units);
  let o = 0;
  for (const p of parts) {
    scores.set(p, o);
    o += p.length;
  }
  return { scores, units };
}

function unitConsistency(scores: Float32Array, n: number, units: number, concepts: ArrayLike<number>, k: number, topK: number, A: number[][]): number[] {
  const out: number[] = [];
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let u = 0; u < units; u++) {
    idx.sort((a, b) => scores[b * units + u] - scores[a * units + u]);
    const p = new Array(k).fill(0);
    for (let t = 0; t < topK; t++) p[concepts[idx[t]]] += 1 / topK;
    let c = 0;
    for (let i = 0; i < k; i++) {
      if (!p[i]) continue;
      for (let j = 0; j < k; j++) c += p[i] * A[i][j] * p[j];
    }
    out.push(c);
  }
  return out;
}

/**
 * consis(n) on real images and consis_adv(n) on adversarial images for every unit of a layer.
 *
 * @example
 * const adv = await adversarialSet(classifier, images, labels);
 * const r = await neuronConsistency(classifier, images, labels, adv.images, adv.labels, { confusion });
 */
export async function neuronConsistency(
  classifier: Classifier, images: tf.Tensor4D, labels: ArrayLike<number>, advImages: tf.Tensor4D, advLabels: ArrayLike<number>,
  opts: ConsistencyOptions = {},
): Promise<ConsistencyResult> {
  const layer = opts.layer ?? defaultFeatureLayer(classifier);
  const concepts = opts.concepts ?? labels;
  const advConcepts = opts.advConcepts ?? advLabels;
  const n = images.shape[0];
  const na = advImages.shape[0];
  if (concepts.length !== n || advConcepts.length !== na) throw new OptionError(`expected one concept per image (${n} real, ${na} adversarial); got ${concepts.length} and ${advConcepts.length}`);
  let k = opts.numConcepts ?? 0;
  for (let i = 0; i < n; i++) k = Math.max(k, concepts[i] + 1);
  for (let i = 0; i < na; i++) k = Math.max(k, advConcepts[i] + 1);
  let A: number[][];
  if (opts.distance) {
    if (opts.distance.length !== k) throw new OptionError(`expected a ${k}×${k} concept distance matrix; got ${opts.distance.length} rows`);
    A = conceptCorrelation(opts.distance, opts.sigma ?? 1);
  } else if (opts.confusion) {
    if (opts.confusion.length !== k) throw new OptionError(`expected a ${k}×${k} confusion matrix; got ${opts.confusion.length} rows`);
    A = conceptCorrelation(distanceFromConfusion(opts.confusion), opts.sigma ?? 1);
  } else {
    A = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 1 : 0)));
  }
  const frac = opts.topFraction ?? 0.01;
  const topK = Math.max(1, Math.round(frac * n));
  const topKAdv = Math.max(1, Math.round(frac * na));
  const real = await unitScores(classifier, images, layer, opts.reduce, opts.batchSize);
  const adv = await unitScores(classifier, advImages, layer, opts.reduce, opts.batchSize);
  const consis = unitConsistency(real.scores, n, real.units, concepts, k, topK, A);
  const consisAdv = unitConsistency(adv.scores, na, adv.units, advConcepts, k, topKAdv, A);
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
  return { layer, units: real.units, topK, topKAdv, consis, consisAdv, meanConsis: mean(consis), meanConsisAdv: mean(consisAdv), A };
}

/**
 * Seed 004's adversarial set: for each image, targeted attacks towards its `perImage` least likely
 * classes (iterative FGSM / PGD without random start). Labels are the source images' labels.
 */
export async function adversarialSet(
  classifier: Classifier, images: tf.Tensor4D, labels: ArrayLike<number>,
  opts: { perImage?: number; epsilon?: number; steps?: number; stepSize?: number; batchSize?: number } = {},
): Promise<{ images: tf.Tensor4D; labels: Int32Array; targets: Int32Array }> {
  const per = opts.perImage ?? 3;
  const n = images.shape[0];
  const bs = opts.batchSize ?? 128;
  const parts: tf.Tensor4D[] = [];
  const outLabels: number[] = [];
  const outTargets: number[] = [];
  for (let b = 0; b < n; b += bs) {
    const m = Math.min(bs, n - b);
    const x = tf.slice(images, b, m);
    const lg = classifier.logits(x);
    const l = (await lg.array()) as number[][];
    lg.dispose();
    const order = l.map((row) => row.map((v, j) => [v, j]).sort((a, c) => a[0] - c[0]).map((p) => p[1]));
    for (let t = 0; t < per; t++) {
      const tg = order.map((o) => o[t]);
      parts.push(await pgd(classifier, x, tg, { targeted: true, randomStart: false, epsilon: opts.epsilon ?? 0.3, steps: opts.steps ?? 10, stepSize: opts.stepSize ?? 0.05 }));
      for (let i = 0; i < m; i++) {
        outLabels.push(labels[b + i]);
        outTargets.push(tg[i]);
      }
    }
    x.dispose();
  }
  const imagesOut = tf.concat(parts, 0) as tf.Tensor4D;
  tf.dispose(parts);
  return { images: imagesOut, labels: Int32Array.from(outLabels), targets: Int32Array.from(outTargets) };
}

/** Histograms of consis and consis_adv as PNGs (render module). */
export async function consistencyHistograms(r: ConsistencyResult, title = ''): Promise<{ consis: Buffer; consisAdv: Buffer }> {
  const { plotHistogram } = await import('../render/plots.js');
  const hi = Math.max(...r.consis, ...r.consisAdv, 1e-6);
  const range: [number, number] = [0, hi];
  return {
    consis: await plotHistogram(r.consis, { title: `${title} consis(n), mean ${r.meanConsis.toFixed(4)}`.trim(), xLabel: 'consis(n)', yLabel: 'units', bins: 20, range }),
    consisAdv: await plotHistogram(r.consisAdv, { title: `${title} consis_adv(n), mean ${r.meanConsisAdv.toFixed(4)}`.trim(), xLabel: 'consis_adv(n)', yLabel: 'units', bins: 20, range }),
  };
}
