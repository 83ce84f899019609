/**
 * `prediction-difference` (Zintgraf, Cohen, Adel & Welling 2017, cited in seed 001): the relevance of
 * a window is the weight of evidence the classifier loses when the window is not seen,
 *   WE = log2 odds(p(c|x)) − log2 odds(p(c|x∖w)),  odds(p) = p / (1 − p),
 * where p(c|x∖w) = E_{x̃_w ~ p(x_w | x_surround)} p(c | x with window w replaced by x̃_w) is estimated by
 * `samples` draws from a multivariate Gaussian of the window conditioned on the surrounding patch
 * (window + `padding` pixels on every side), its mean and covariance estimated from all patches of
 * the `reference` images (default: the input batch). Each pixel gets the mean WE over the windows
 * covering it. Probabilities get Zintgraf's Laplace correction (p·N + 1)/(N + K) with N = trainingSize.
 * 'marginal' sampling draws the window from its unconditional Gaussian instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { createRng, gaussian, shuffle } from '../util/random.js';
import { batchSizeFor } from '../engine/memory.js';
import { cholesky, choleskySolve, chunks, finiteNumber, oneOf, pairOption, positiveInt, softmaxRow } from './math.js';
import { windowStarts } from './occlusion.js';
import { defineChunkKernel } from '../engine/pool/kernels.js';
import { mapChunks } from '../engine/pool/map.js';
import { chunkSizeFor, planLanes } from '../engine/pool/plan.js';

export interface PredictionDifferenceOptions {
  windowSize: number;
  /** Width of the surrounding ring the window is conditioned on. */
  padding: number;
  stride: number;
  samples: number;
  sampling: 'conditional' | 'marginal';
  /** Images whose patches give the Gaussian's mean and covariance ([M,H,W,C]); default the input batch. */
  reference: tf.Tensor4D | null;
  /** Largest number of patches used for the statistics. */
  maxPatches: number;
  /** N of the Laplace correction (p·N + 1)/(N + K); 0 disables it. */
  trainingSize: number;
  /** Clip sampled values to the classifier's input range. */
  clip: boolean;
  seed: number;
  batchSize: number;
}

interface PatchStats {
  l: number;
  dim: number;
  mean: Float64Array;
  cov: Float64Array;
}

async function patchStats(images: tf.Tensor4D, l: number, maxPatches: number, seed: number): Promise<PatchStats> {
  const [m, h, w, ch] = images.shape;
  if (h < l || w < l) throw new OptionError(`expected images of at least ${l}×${l} for window + padding; got ${h}×${w}`);
  const data = (await images.data()) as Float32Array;
  const pos: Array<[number, number, number]> = [];
  for (let i = 0; i < m; i++) for (let r = 0; r <= h - l; r++) for (let c = 0; c <= w - l; c++) pos.push([i, r, c]);
  const use = pos.length > maxPatches ? shuffle(pos, createRng(seed)).slice(0, maxPatches) : pos;
  const dim = l * l * ch;
  const mean = new Float64Array(dim);
  const cov = new Float64Array(dim * dim);
  const v = new Float64Array(dim);
  const read = (i: number, r: number, c: number) => {
    for (let a = 0; a < l; a++) for (let b = 0; b < l; b++) for (let k = 0; k < ch; k++) v[(a * l + b) * ch + k] = data[((i * h + r + a) * w + c + b) * ch + k];
  };
  for (const [i, r, c] of use) {
    read(i, r, c);
    for (let d = 0; d < dim; d++) mean[d] += v[d];
  }
  for (let d = 0; d < dim; d++) mean[d] /= use.length;
  for (const [i, r, c] of use) {
    read(i, r, c);
    for (let d = 0; d < dim; d++) v[d] -= mean[d];
    for (let a = 0; a < dim; a++) {
      const va = v[a];
      if (va === 0) continue;
      for (let b = 0; b <= a; b++) cov[a * dim + b] += va * v[b];
    }
  }
  const denom = Math.max(1, use.length - 1);
  let trace = 0;
  for (let a = 0; a < dim; a++) {
    for (let b = 0; b <= a; b++) {
      cov[a * dim + b] /= denom;
      cov[b * dim + a] = cov[a * dim + b];
    }
    trace += cov[a * dim + a];
  }
  // A small ridge keeps constant regions (MNIST borders) invertible.
  const ridge = Math.max(1e-8, 1e-4 * (trace / dim));
  for (let a = 0; a < dim; a++) cov[a * dim + a] += ridge;
  return { l, dim, mean, cov };
}

interface Conditional {
  inner: number[];
  outer: number[];
  /** gain [|inner| × |outer|]: conditional mean = μ_i + gain (o − μ_o) */
  gain: Float64Array;
  /** Cholesky factor of the conditional covariance. */
  chol: Float64Array;
}

function conditional(stats: PatchStats, inner: number[], outer: number[]): Conditional {
  const { dim, cov } = stats;
  const ni = inner.length;
  const no = outer.length;
  const sub = (rows: number[], cols: number[]) => {
    const out = new Float64Array(rows.length * cols.length);
    rows.forEach((r, i) => cols.forEach((c, j) => (out[i * cols.length + j] = cov[r * dim + c])));
    return out;
  };
  const sii = sub(inner, inner);
  if (no === 0) return { inner, outer, gain: new Float64Array(0), chol: cholesky(sii, ni) };
  const soo = sub(outer, outer);
  const soi = sub(outer, inner); // [no × ni]
  const lo = cholesky(soo, no);
  // X = Σoo⁻¹ Σoi  (columns solved one by one), gain = Xᵀ
  const gain = new Float64Array(ni * no);
  const col = new Float64Array(no);
  for (let j = 0; j < ni; j++) {
    for (let r = 0; r < no; r++) col[r] = soi[r * ni + j];
    const xcol = choleskySolve(lo, no, col);
    for (let r = 0; r < no; r++) gain[j * no + r] = xcol[r];
  }
  const cond = new Float64Array(ni * ni);
  for (let a = 0; a < ni; a++) {
    for (let b = 0; b < ni; b++) {
      let s = sii[a * ni + b];
      for (let r = 0; r < no; r++) s -= gain[a * no + r] * soi[r * ni + b];
      cond[a * ni + b] = s;
    }
  }
  for (let a = 0; a < ni; a++) for (let b = 0; b < a; b++) cond[a * ni + b] = cond[b * ni + a] = 0.5 * (cond[a * ni + b] + cond[b * ni + a]);
  return { inner, outer, gain, chol: cholesky(cond, ni) };
}

/** Logits [count·K] of `count` images given as flat NHWC data. */
const sampledLogits = defineChunkKernel<{ shape: [number, number, number] }, { images: Float32Array; count: number }, Float32Array>(
  'prediction-difference/logits',
  async (classifier, { shape }, { images, count }) => {
    const logits = tf.tidy(() => classifier.logits(tf.tensor4d(images, [count, ...shape])));
    const lv = (await logits.data()) as Float32Array;
    logits.dispose();
    return lv;
  },
);

/** Logits of x, flat, in batches of at most `batchSize` images. */
async function logitsOf(classifier: Classifier, x: tf.Tensor4D, batchSize: number): Promise<Float32Array> {
  const n = x.shape[0];
  const k = classifier.numClasses;
  const out = new Float32Array(n * k);
  for (const [s0, c] of chunks(n, batchSize)) {
    const t = tf.tidy(() => classifier.logits(tf.slice(x, s0, c)));
    out.set((await t.data()) as Float32Array, s0 * k);
    t.dispose();
  }
  return out;
}

registerMethod<PredictionDifferenceOptions>({
  name: 'prediction-difference',
  memory: 'forward',
  parallel: 'chunks',
  family: 'attribution',
  description: 'prediction difference analysis: weight of evidence (log2 odds) lost when a window is conditionally resampled (Zintgraf et al. 2017)',
  signed: true,
  defaults: { windowSize: 4, padding: 2, stride: 1, samples: 10, sampling: 'conditional', reference: null, maxPatches: 20000, trainingSize: 60000, clip: true, seed: 0, batchSize: 250 },
  async run(classifier: Classifier, x, targets, options, context) {
    const [n, h, w, ch] = x.shape;
    const [win] = pairOption('windowSize', options.windowSize);
    const pad = positiveInt('padding', options.padding, 0);
    const [stride] = pairOption('stride', options.stride);
    const samples = positiveInt('samples', options.samples);
    const sampling = oneOf('sampling', options.sampling, ['conditional', 'marginal'] as const);
    const batchSize = batchSizeFor(classifier, 'forward', positiveInt('batchSize', options.batchSize));
    const trainingSize = finiteNumber('trainingSize', options.trainingSize, 0);
    const seed = Number(options.seed) || 0;
    const ref = options.reference ?? x;
    if (!(ref instanceof tf.Tensor) || ref.rank !== 4 || ref.shape[3] !== ch) {
      throw new OptionError(`expected option reference to be images [M, H, W, ${ch}]; got ${ref instanceof tf.Tensor ? `[${ref.shape.join(', ')}]` : typeof ref}`);
    }
    const l = win + 2 * pad;
    const stats = await patchStats(ref, l, positiveInt('maxPatches', options.maxPatches), seed);
    const rows = windowStarts(h, win, stride);
    const cols = windowStarts(w, win, stride);
    const positions: Array<[number, number]> = [];
    for (const r of rows) for (const c of cols) positions.push([r, c]);
    const P = positions.length;
    // Conditionals per clipping pattern of the surrounding patch.
    const cache = new Map<string, Conditional>();
    const innerIdx: number[] = [];
    for (let a = pad; a < pad + win; a++) for (let b = pad; b < pad + win; b++) for (let k = 0; k < ch; k++) innerIdx.push((a * l + b) * ch + k);
    const condFor = (r0: number, c0: number): Conditional => {
      const top = r0 - pad;
      const left = c0 - pad;
      const key = sampling === 'marginal' ? 'm' : [Math.max(0, -top), Math.max(0, top + l - h), Math.max(0, -left), Math.max(0, left + l - w)].join(',');
      let cnd = cache.get(key);
      if (!cnd) {
        const outer: number[] = [];
        if (sampling === 'conditional') {
          for (let a = 0; a < l; a++) {
            for (let b = 0; b < l; b++) {
              const inside = top + a >= 0 && top + a < h && left + b >= 0 && left + b < w;
              const isInner = a >= pad && a < pad + win && b >= pad && b < pad + win;
              if (inside && !isInner) for (let k = 0; k < ch; k++) outer.push((a * l + b) * ch + k);
            }
          }
        }
        cnd = conditional(stats, innerIdx, outer);
        cache.set(key, cnd);
      }
      return cnd;
    };
    const xData = (await x.data()) as Float32Array;
    const per = h * w * ch;
    const { low, high } = classifier.domain;
    const rng = createRng(seed + 1);
    const K = classifier.numClasses;
    // p(c|x)
    const baseL = await logitsOf(classifier, x, batchSize);
    const correct = (p: number) => (trainingSize > 0 ? (p * trainingSize + 1) / (trainingSize + K) : Math.min(1 - 1e-7, Math.max(1e-7, p)));
    const log2odds = (p: number) => Math.log2(p / (1 - p));
    const baseWE = Array.from({ length: n }, (_, i) => log2odds(correct(softmaxRow(baseL.subarray(i * K, (i + 1) * K))[targets[i]])));
    const probSum = Array.from({ length: n }, () => new Float64Array(P));
    const total = n * P * samples;
    const ni = innerIdx.length;
    // Rows are (image, window, sample) in that order and are drawn in row order, so the random
    // stream — and the result — does not depend on where the batches split.
    const plan = await planLanes(classifier, total, 'forward');
    const all = chunks(total, chunkSizeFor(total, batchSize, plan.lanes));
    const eps = new Float64Array(ni);
    let muFor = -1;
    let cnd: Conditional | undefined;
    const mu = new Float64Array(ni);
    // Chunks are made in chunk order (the pool calls payload(i) for increasing i), so the random
    // stream is drawn in row order whatever the number of threads.
    await mapChunks(classifier, sampledLogits, {
      lanes: plan,
      shared: { shape: [h, w, ch] },
      count: all.length,
      payload: (ci) => {
        const [s0, c] = all[ci];
        const buf = new Float32Array(c * per);
        for (let j = 0; j < c; j++) {
          const row = s0 + j;
          const i = Math.floor(row / (P * samples));
          const pi = Math.floor(row / samples) % P;
          const [r0, c0] = positions[pi];
          const img = xData.subarray(i * per, (i + 1) * per);
          const group = Math.floor(row / samples);
          if (group !== muFor) {
            // conditional mean of the window given its surrounding
            muFor = group;
            cnd = condFor(r0, c0);
            const no = cnd.outer.length;
            const dev = new Float64Array(no);
            cnd.outer.forEach((d, q) => {
              const a = Math.floor(d / ch / l);
              const b = Math.floor(d / ch) % l;
              const k = d % ch;
              dev[q] = img[((r0 - pad + a) * w + (c0 - pad + b)) * ch + k] - stats.mean[d];
            });
            for (let a = 0; a < ni; a++) {
              let s = stats.mean[innerIdx[a]];
              for (let q = 0; q < no; q++) s += cnd.gain[a * no + q] * dev[q];
              mu[a] = s;
            }
          }
          const out = buf.subarray(j * per, (j + 1) * per);
          out.set(img);
          for (let a = 0; a < ni; a++) eps[a] = gaussian(rng);
          for (let a = 0; a < ni; a++) {
            let v = mu[a];
            for (let b = 0; b <= a; b++) v += cnd!.chol[a * ni + b] * eps[b];
            if (options.clip) v = Math.min(high, Math.max(low, v));
            const d = innerIdx[a];
            const pa = Math.floor(d / ch / l) - pad;
            const pb = (Math.floor(d / ch) % l) - pad;
            out[((r0 + pa) * w + (c0 + pb)) * ch + (d % ch)] = v;
          }
        }
        return { images: buf, count: c };
      },
      onResult: (ci, lv) => {
        const [s0, c] = all[ci];
        for (let j = 0; j < c; j++) {
          const row = s0 + j;
          const i = Math.floor(row / (P * samples));
          const pi = Math.floor(row / samples) % P;
          probSum[i][pi] += softmaxRow(lv.subarray(j * K, (j + 1) * K))[targets[i]];
        }
      },
      progress: context.progress ? (f) => context.progress!(f, 'prediction difference') : undefined,
    });
    const att = new Float32Array(n * per);
    const count = new Float64Array(h * w);
    for (const [r0, c0] of positions) for (let r = r0; r < r0 + win; r++) for (let c = c0; c < c0 + win; c++) count[r * w + c]++;
    for (let i = 0; i < n; i++) {
      const acc = new Float64Array(h * w);
      positions.forEach(([r0, c0], pi) => {
        const we = baseWE[i] - log2odds(correct(probSum[i][pi] / samples));
        for (let r = r0; r < r0 + win; r++) for (let c = c0; c < c0 + win; c++) acc[r * w + c] += we;
      });
      for (let q = 0; q < h * w; q++) for (let k = 0; k < ch; k++) att[i * per + q * ch + k] = count[q] > 0 ? acc[q] / count[q] : 0;
    }
    return { attribution: tf.tensor4d(att, [n, h, w, ch]), extras: { windows: P, sampling } };
  },
});
