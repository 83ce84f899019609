/**
 * `lime` (Ribeiro et al. 2016, with the changes of seed 002): super-pixels (quickshift, SLIC or a grid,
 * or your own labels), optionally split down to a maximum size (1 = single pixels); samples that switch
 * random super-pixels off (replaced by black / white / mean / inverse (low + high − x) / a custom
 * value); the classifier's outputs for all samples of all images are evaluated in large batches
 * (spread over the worker pool's threads when the call is large enough: engine/pool);
 * samples weighted by the kernel sqrt(exp(−d²/w²)) of their cosine distance d to the unperturbed
 * image; a weighted ridge regression (sklearn Ridge(alpha=1) as in LIME) per class gives one weight
 * per super-pixel. One sampling run explains the top-n classes at once.
 *
 * Attribution: the target's super-pixel weights painted on their pixels (signed, continuous).
 * extras: segments [N,H,W,1] int32, weights (per image, per super-pixel), intercept, score (R²),
 * topClasses (per image), classMaps (per image [n,H,W,C], maps of topClasses), evidenceFor and
 * evidenceAgainst [N,H,W,1] (0/1 masks of the numFeatures strongest super-pixels for and against).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { createRng, type Rng } from '../util/random.js';
import { batchSizeFor } from '../engine/memory.js';
import { chunks, finiteNumber, oneOf, positiveInt, softmaxRow, weightedRidge } from './math.js';
import { defineChunkKernel } from '../engine/pool/kernels.js';
import { mapChunks } from '../engine/pool/map.js';
import { chunkSizeFor, planLanes } from '../engine/pool/plan.js';
import { gridSegmentation, limitSegmentSize, relabel, type Plane, type Segmentation } from './segmentation/common.js';
import { quickshift } from './segmentation/quickshift.js';
import { slic } from './segmentation/slic.js';

export type LimeMask = 'black' | 'white' | 'mean' | 'inverse' | 'custom';

export interface LimeOptions {
  /** 'quickshift' (LIME's), 'slic', 'grid', or labels as a tensor [H,W], [N,H,W] or [N,H,W,1]. */
  segmentation: 'quickshift' | 'slic' | 'grid' | tf.Tensor;
  kernelSize: number;
  maxDist: number;
  ratio: number;
  nSegments: number;
  compactness: number;
  cellSize: number;
  /**
   * Largest super-pixel in pixels; bigger ones are split into tiles (1 = single pixels). null = no
   * limit; 'auto' = ⌈H·W/64⌉ (so even a blank MNIST background gives ~64+ super-pixels).
   */
  maxSegmentSize: number | 'auto' | null;
  /** Largest fraction of super-pixels switched off per sample (1..⌈f·n⌉, uniform); null = LIME's independent coin flips. */
  changeFraction: number | null;
  mask: LimeMask;
  /** Value (or tensor [H,W,C] / [N,H,W,C]) for mask 'custom'. */
  maskValue: number | tf.Tensor;
  samples: number;
  kernelWidth: number;
  ridgeAlpha: number;
  /** Classes explained from the one sampling run (the most likely ones, plus the target). */
  topLabels: number;
  /** Regress on softmax probabilities (LIME) or on logits. */
  output: 'probability' | 'logit';
  /** Super-pixels in the evidence masks. */
  numFeatures: number;
  seed: number;
  /** Perturbed images per forward call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

const LIME_DEFAULTS: LimeOptions = {
  segmentation: 'quickshift', kernelSize: 4, maxDist: 200, ratio: 0.2, nSegments: 50, compactness: 10, cellSize: 4,
  maxSegmentSize: 'auto', changeFraction: null, mask: 'inverse', maskValue: 0, samples: 1000, kernelWidth: 0.25,
  ridgeAlpha: 1, topLabels: 5, output: 'probability', numFeatures: 5, seed: 0, batchSize: 256,
};

/** Segment one image [H,W,C] (float data) with the options' algorithm. */
export function segmentImage(img: Plane, o: Pick<LimeOptions, 'segmentation' | 'kernelSize' | 'maxDist' | 'ratio' | 'nSegments' | 'compactness' | 'cellSize' | 'maxSegmentSize'>, low: number, high: number, seed: number): Segmentation {
  let seg: Segmentation;
  if (o.segmentation === 'quickshift') seg = quickshift(img, { kernelSize: o.kernelSize, maxDist: o.maxDist, ratio: o.ratio, seed, low, high });
  else if (o.segmentation === 'slic') seg = slic(img, { nSegments: o.nSegments, compactness: o.compactness, low, high });
  else if (o.segmentation === 'grid') seg = gridSegmentation(img.height, img.width, positiveInt('cellSize', o.cellSize));
  else throw new OptionError(`expected option segmentation to be quickshift, slic, grid or a label tensor; got ${JSON.stringify(o.segmentation)}`);
  if (o.maxSegmentSize == null) return seg;
  const max = o.maxSegmentSize === 'auto' ? Math.ceil((img.height * img.width) / 64) : positiveInt('maxSegmentSize', o.maxSegmentSize);
  return limitSegmentSize(seg, max);
}

function sampleMasks(m: number, n: number, changeFraction: number | null, rng: Rng): Uint8Array {
  const z = new Uint8Array(m * n).fill(1);
  const maxOff = changeFraction == null ? 0 : Math.max(1, Math.min(n, Math.ceil(changeFraction * n)));
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let s = 1; s < m; s++) {
    const row = s * n;
    if (changeFraction == null) {
      for (let j = 0; j < n; j++) z[row + j] = rng() < 0.5 ? 0 : 1;
    } else {
      const k = 1 + Math.floor(rng() * maxOff);
      // partial Fisher–Yates: the first k of a random permutation are switched off
      for (let j = 0; j < k; j++) {
        const t = j + Math.floor(rng() * (n - j));
        [idx[j], idx[t]] = [idx[t], idx[j]];
        z[row + idx[j]] = 0;
      }
    }
  }
  return z;
}

async function labelsFromTensor(t: tf.Tensor, n: number, h: number, w: number): Promise<Segmentation[]> {
  const ok = (t.rank === 2 && t.shape[0] === h && t.shape[1] === w) || (t.rank >= 3 && (t.shape[0] === n || t.shape[0] === 1) && t.shape[1] === h && t.shape[2] === w && (t.rank === 3 || t.shape[3] === 1));
  if (!ok) throw new OptionError(`expected segmentation labels of shape [${h}, ${w}] or [${n}, ${h}, ${w}(, 1)]; got [${t.shape.join(', ')}]`);
  const data = Array.from(await t.data());
  const per = h * w;
  return Array.from({ length: n }, (_, i) => {
    const off = t.rank === 2 || t.shape[0] === 1 ? 0 : i * per;
    return relabel(data.slice(off, off + per).map((v) => Math.round(v)), h, w);
  });
}

interface LimeShared {
  x: tf.Tensor4D;
  replacement: tf.Tensor4D;
  labels: ArrayLike<number>[];
  counts: number[];
  zs: Uint8Array[];
  samples: number;
}

/** Logits [c·K] of samples s0..s0+c (image-major rows): each image with its switched-off super-pixels replaced. */
const limeLogits = defineChunkKernel<LimeShared, { s0: number; c: number }, Float32Array>('lime/logits', async (classifier, sh, { s0, c }) => {
  const { x, replacement, samples } = sh;
  const [, h, w] = x.shape;
  const keep = new Float32Array(c * h * w);
  const idx = new Int32Array(c);
  for (let j = 0; j < c; j++) {
    const row = s0 + j;
    const i = Math.floor(row / samples);
    const s = row % samples;
    idx[j] = i;
    const labels = sh.labels[i];
    const z = sh.zs[i];
    const off = s * sh.counts[i];
    for (let p = 0; p < h * w; p++) keep[j * h * w + p] = z[off + labels[p]];
  }
  const logits = tf.tidy(() => {
    const m = tf.tensor4d(keep, [c, h, w, 1]);
    const ii = tf.tensor1d(idx, 'int32');
    const xs = tf.gather(x, ii);
    const rs = tf.gather(replacement, ii);
    return classifier.logits(tf.add(rs, tf.mul(m, tf.sub(xs, rs))));
  });
  const lv = (await logits.data()) as Float32Array;
  logits.dispose();
  return lv;
});

export interface LimeImageResult {
  segments: Segmentation;
  classes: number[];
  coef: Float64Array[];
  intercept: number[];
  score: number[];
}

/** Fit LIME for every image of x. Returns per image the segmentation and one surrogate per class. */
export async function limeFit(classifier: Classifier, x: tf.Tensor4D, targets: number[], o: LimeOptions, progress?: (f: number, label?: string) => void): Promise<LimeImageResult[]> {
  const [n, h, w, ch] = x.shape;
  const { low, high } = classifier.domain;
  const samples = positiveInt('samples', o.samples, 2);
  const mask = oneOf('mask', o.mask, ['black', 'white', 'mean', 'inverse', 'custom'] as const);
  const output = oneOf('output', o.output, ['probability', 'logit'] as const);
  const kernelWidth = finiteNumber('kernelWidth', o.kernelWidth, 1e-12);
  const ridgeAlpha = finiteNumber('ridgeAlpha', o.ridgeAlpha, 0);
  const topLabels = Math.min(classifier.numClasses, positiveInt('topLabels', o.topLabels));
  const batchSize = batchSizeFor(classifier, 'forward', positiveInt('batchSize', o.batchSize));
  if (o.changeFraction != null) {
    const f = finiteNumber('changeFraction', o.changeFraction, 0);
    if (f <= 0 || f > 1) throw new OptionError(`expected option changeFraction in (0, 1] or null; got ${f}`);
  }
  const xData = (await x.data()) as Float32Array;
  const per = h * w * ch;
  const rng = createRng(Number(o.seed) || 0);
  const segs: Segmentation[] = o.segmentation instanceof tf.Tensor
    ? await labelsFromTensor(o.segmentation, n, h, w)
    : Array.from({ length: n }, (_, i) => segmentImage({ height: h, width: w, channels: ch, data: Float64Array.from(xData.subarray(i * per, (i + 1) * per)) }, o, low, high, Number(o.seed) || 0));
  const zs = segs.map((s) => sampleMasks(samples, s.count, o.changeFraction, rng));
  // Replacement image per input.
  let replacement: tf.Tensor4D;
  if (mask === 'black') replacement = tf.fill(x.shape, low) as tf.Tensor4D;
  else if (mask === 'white') replacement = tf.fill(x.shape, high) as tf.Tensor4D;
  else if (mask === 'inverse') replacement = tf.tidy(() => tf.sub(low + high, x) as tf.Tensor4D);
  else if (mask === 'custom') {
    const v = o.maskValue;
    if (v instanceof tf.Tensor) {
      const ok = (v.rank === 3 && v.shape.join() === [h, w, ch].join()) || (v.rank === 4 && (v.shape[0] === 1 || v.shape[0] === n) && v.shape.slice(1).join() === [h, w, ch].join());
      if (!ok) throw new OptionError(`expected maskValue of shape [${h}, ${w}, ${ch}] or [${n}, ${h}, ${w}, ${ch}]; got [${v.shape.join(', ')}]`);
      replacement = tf.tidy(() => tf.add(tf.zerosLike(x), v) as tf.Tensor4D);
    } else replacement = tf.fill(x.shape, finiteNumber('maskValue', v)) as tf.Tensor4D;
  } else {
    // mean: every super-pixel replaced by its own mean colour (LIME's hide_color=None)
    const out = new Float32Array(n * per);
    segs.forEach((s, i) => {
      const sum = new Float64Array(s.count * ch);
      const cnt = new Float64Array(s.count);
      for (let p = 0; p < h * w; p++) {
        cnt[s.labels[p]]++;
        for (let k = 0; k < ch; k++) sum[s.labels[p] * ch + k] += xData[i * per + p * ch + k];
      }
      for (let p = 0; p < h * w; p++) for (let k = 0; k < ch; k++) out[i * per + p * ch + k] = sum[s.labels[p] * ch + k] / cnt[s.labels[p]];
    });
    replacement = tf.tensor4d(out, x.shape);
  }
  // Evaluate all samples of all images in chunks.
  const k = classifier.numClasses;
  const outputs = segs.map(() => new Float64Array(samples * k));
  const total = n * samples;
  const plan = await planLanes(classifier, total, 'forward');
  const all = chunks(total, chunkSizeFor(total, batchSize, plan.lanes));
  try {
    await mapChunks(classifier, limeLogits, {
      lanes: plan,
      shared: { x, replacement, labels: segs.map((sg) => sg.labels), counts: segs.map((sg) => sg.count), zs, samples },
      count: all.length,
      payload: (i) => ({ s0: all[i][0], c: all[i][1] }),
      onResult: (ci, lv) => {
        const [s0, c] = all[ci];
        for (let j = 0; j < c; j++) {
          const row = s0 + j;
          const i = Math.floor(row / samples);
          const s = row % samples;
          const vals = output === 'probability' ? softmaxRow(lv.subarray(j * k, (j + 1) * k)) : lv.subarray(j * k, (j + 1) * k);
          for (let q = 0; q < k; q++) outputs[i][s * k + q] = vals[q];
        }
      },
      progress: progress ? (f) => progress(f, 'lime') : undefined,
    });
  } finally {
    replacement.dispose();
  }
  // Surrogates.
  return segs.map((seg, i) => {
    const z = zs[i];
    const nf = seg.count;
    const weights = new Float64Array(samples);
    for (let s = 0; s < samples; s++) {
      let on = 0;
      for (let j = 0; j < nf; j++) on += z[s * nf + j];
      const d = on === 0 ? 1 : 1 - on / (Math.sqrt(on) * Math.sqrt(nf));
      weights[s] = Math.sqrt(Math.exp(-(d * d) / (kernelWidth * kernelWidth)));
    }
    const first = outputs[i].subarray(0, k);
    const order = Array.from({ length: k }, (_, q) => q).sort((a, b) => first[b] - first[a] || a - b);
    const classes = order.slice(0, topLabels);
    if (!classes.includes(targets[i])) classes.push(targets[i]);
    const ys = classes.map((cl) => {
      const y = new Float64Array(samples);
      for (let s = 0; s < samples; s++) y[s] = outputs[i][s * k + cl];
      return y;
    });
    const fits = weightedRidge(z, samples, nf, ys, weights, ridgeAlpha);
    return { segments: seg, classes, coef: fits.map((f) => f.coef), intercept: fits.map((f) => f.intercept), score: fits.map((f) => f.score) };
  });
}

/** Paint per-super-pixel values on the pixels: [H*W*C] floats. */
function paint(seg: Segmentation, values: ArrayLike<number>, ch: number): Float32Array {
  const out = new Float32Array(seg.labels.length * ch);
  for (let p = 0; p < seg.labels.length; p++) for (let k = 0; k < ch; k++) out[p * ch + k] = values[seg.labels[p]];
  return out;
}

registerMethod<LimeOptions>({
  name: 'lime',
  memory: 'forward',
  parallel: 'chunks',
  family: 'attribution',
  description: 'LIME: weighted ridge surrogate over random super-pixel deletions (seed 002 variant: max super-pixel size, change fraction, inverse mask)',
  signed: true,
  defaults: LIME_DEFAULTS,
  async run(classifier, x, targets, options, context) {
    const [n, h, w, ch] = x.shape;
    const fits = await limeFit(classifier, x, targets, options, context.progress);
    const numFeatures = positiveInt('numFeatures', options.numFeatures);
    const att = new Float32Array(n * h * w * ch);
    const segData = new Int32Array(n * h * w);
    const forMask = new Float32Array(n * h * w);
    const againstMask = new Float32Array(n * h * w);
    const classMaps: tf.Tensor4D[] = [];
    fits.forEach((f, i) => {
      const ti = f.classes.indexOf(targets[i]);
      const coef = f.coef[ti];
      att.set(paint(f.segments, coef, ch), i * h * w * ch);
      segData.set(f.segments.labels, i * h * w);
      const strongest = Array.from(coef, (v, j) => [Math.abs(v), j] as const).sort((a, b) => b[0] - a[0]).slice(0, numFeatures).map(([, j]) => j);
      const fo = new Float64Array(f.segments.count);
      const ag = new Float64Array(f.segments.count);
      for (const j of strongest) {
        if (coef[j] > 0) fo[j] = 1;
        else if (coef[j] < 0) ag[j] = 1;
      }
      forMask.set(paint(f.segments, fo, 1), i * h * w);
      againstMask.set(paint(f.segments, ag, 1), i * h * w);
      const maps = new Float32Array(f.classes.length * h * w * ch);
      f.classes.forEach((_, q) => maps.set(paint(f.segments, f.coef[q], ch), q * h * w * ch));
      classMaps.push(tf.tensor4d(maps, [f.classes.length, h, w, ch]));
    });
    return {
      attribution: tf.tensor4d(att, [n, h, w, ch]),
      extras: {
        segments: tf.tensor4d(segData, [n, h, w, 1], 'int32'),
        segmentCount: fits.map((f) => f.segments.count),
        weights: fits.map((f, i) => Array.from(f.coef[f.classes.indexOf(targets[i])])),
        intercept: fits.map((f, i) => f.intercept[f.classes.indexOf(targets[i])]),
        score: fits.map((f, i) => f.score[f.classes.indexOf(targets[i])]),
        topClasses: fits.map((f) => f.classes),
        classMaps,
        evidenceFor: tf.tensor4d(forMask, [n, h, w, 1]),
        evidenceAgainst: tf.tensor4d(againstMask, [n, h, w, 1]),
      },
    };
  },
});
