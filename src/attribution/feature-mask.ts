/**
 * Feature masks and coalition evaluation for the perturbation family (feature-ablation,
 * feature-permutation, shapley-exact, shapley-sampling, kernel-shap).
 *
 * A feature mask groups the pixels of an image into features (the same grouping in every channel, as
 * Captum's masks broadcast over channels): square patches, a grid of near-equal bands, LIME's
 * super-pixels (SLIC, quickshift), or a label map the caller gives. A coalition of features is
 * evaluated as the target logit of x with every pixel outside the coalition taken from a replacement
 * image (the baseline, or another image of the batch for permutation). Rows of many coalitions of
 * many images are built in JS (one keep-mask per row) and evaluated in batches that fit the memory
 * budget, as LIME does.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import { batchSizeFor } from '../engine/memory.js';
import { chunks, positiveInt } from './math.js';
import { relabel, type Segmentation } from './segmentation/common.js';
import { quickshift } from './segmentation/quickshift.js';
import { slic } from './segmentation/slic.js';

/** 'patches' (patchSize), 'grid' (gridSize bands), 'slic' / 'quickshift' super-pixels (nSegments), or labels [H,W] / [N,H,W]. */
export type FeatureMaskSpec = 'patches' | 'grid' | 'slic' | 'quickshift' | tf.Tensor;

export interface FeatureMaskOptions {
  featureMask: FeatureMaskSpec;
  /** 'patches': side of the square patches, or 'auto' = max(4, round(side / 7)) (49 patches on any square image). */
  patchSize: number | [number, number] | 'auto';
  /** 'grid': number of bands [rows, cols] (sizes differ by at most one pixel, larger bands first, as numpy.array_split). */
  gridSize: number | [number, number];
  /** 'slic': number of super-pixels asked for. */
  nSegments: number;
}

export const FEATURE_MASK_DEFAULTS: Omit<FeatureMaskOptions, 'featureMask'> = { patchSize: 'auto', gridSize: [3, 3], nSegments: 50 };

/** Band index of each of `size` positions split into `parts` near-equal bands (numpy.array_split). */
function bands(size: number, parts: number): Int32Array {
  if (parts > size) throw new OptionError(`expected gridSize to be at most the image side (${size}); got ${parts}`);
  const out = new Int32Array(size);
  const base = Math.floor(size / parts);
  const extra = size % parts;
  let p = 0;
  for (let b = 0; b < parts; b++) {
    const len = base + (b < extra ? 1 : 0);
    for (let j = 0; j < len; j++) out[p++] = b;
  }
  return out;
}

function pairOf(name: string, v: unknown): [number, number] {
  const arr = Array.isArray(v) ? v : [v, v];
  if (arr.length !== 2) throw new OptionError(`expected option ${name} to be a number or [rows, cols]; got ${JSON.stringify(v)}`);
  return [positiveInt(name, arr[0]), positiveInt(name, arr[1])];
}

/** Patches of ph × pw pixels: feature = ⌊r/ph⌋ · ⌈W/pw⌉ + ⌊c/pw⌋ (Captum's 4×4 patch mask of the fixtures). */
export function patchMask(h: number, w: number, ph: number, pw: number): Segmentation {
  const labels = new Int32Array(h * w);
  const cols = Math.ceil(w / pw);
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) labels[r * w + c] = Math.floor(r / ph) * cols + Math.floor(c / pw);
  return { labels, count: Math.ceil(h / ph) * cols, height: h, width: w };
}

/** A grid of rows × cols bands: feature = cols · band(r) + band(c). */
export function gridMask(h: number, w: number, rows: number, cols: number): Segmentation {
  const br = bands(h, rows);
  const bc = bands(w, cols);
  const labels = new Int32Array(h * w);
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) labels[r * w + c] = br[r] * cols + bc[c];
  return { labels, count: rows * cols, height: h, width: w };
}

/** The feature mask of every image of x. */
export async function featureMasks(classifier: Classifier, x: tf.Tensor4D, o: FeatureMaskOptions, seed = 0): Promise<Segmentation[]> {
  const [n, h, w, ch] = x.shape;
  const spec = o.featureMask;
  if (spec instanceof tf.Tensor) {
    const t = spec;
    const ok = (t.rank === 2 && t.shape[0] === h && t.shape[1] === w) || (t.rank >= 3 && (t.shape[0] === n || t.shape[0] === 1) && t.shape[1] === h && t.shape[2] === w && (t.rank === 3 || (t.rank === 4 && t.shape[3] === 1)));
    if (!ok) throw new OptionError(`expected featureMask labels of shape [${h}, ${w}] or [${n}, ${h}, ${w}(, 1)]; got [${t.shape.join(', ')}]`);
    const data = await t.data();
    const per = h * w;
    return Array.from({ length: n }, (_, i) => {
      const off = t.rank === 2 || t.shape[0] === 1 ? 0 : i * per;
      return relabel(Array.from(data.subarray(off, off + per), (v) => Math.round(v)), h, w);
    });
  }
  if (spec === 'patches') {
    const [ph, pw] = o.patchSize === 'auto' ? [Math.max(4, Math.round(h / 7)), Math.max(4, Math.round(w / 7))] : pairOf('patchSize', o.patchSize);
    const m = patchMask(h, w, ph, pw);
    return Array.from({ length: n }, () => m);
  }
  if (spec === 'grid') {
    const [rows, cols] = pairOf('gridSize', o.gridSize);
    const m = gridMask(h, w, rows, cols);
    return Array.from({ length: n }, () => m);
  }
  if (spec === 'slic' || spec === 'quickshift') {
    const { low, high } = classifier.domain;
    const xData = (await x.data()) as Float32Array;
    const per = h * w * ch;
    return Array.from({ length: n }, (_, i) => {
      const img = { height: h, width: w, channels: ch, data: Float64Array.from(xData.subarray(i * per, (i + 1) * per)) };
      return spec === 'slic' ? slic(img, { nSegments: positiveInt('nSegments', o.nSegments), low, high }) : quickshift(img, { seed, low, high });
    });
  }
  throw new OptionError(`expected option featureMask to be patches, grid, slic, quickshift or a label tensor; got ${JSON.stringify(spec)}`);
}

/** One coalition row: image index, which features are present (1: from x, 0: from the replacement), and which replacement image. */
export interface CoalitionRow {
  image: number;
  present: Uint8Array;
  /** Row of `replacements` for the absent features (default: the image's own row). */
  replacement?: number;
}

/**
 * Target logits of many coalitions, as float64, in row order. `replacements` [M,H,W,C] holds the
 * images absent features are taken from. Rows are evaluated `batchSize` at a time (fewer when the
 * memory budget says so); building a row's keep-mask costs O(H·W).
 */
export async function coalitionScores(
  classifier: Classifier,
  x: tf.Tensor4D,
  replacements: tf.Tensor4D,
  targets: number[],
  masks: Segmentation[],
  rows: CoalitionRow[] | ((start: number, count: number) => CoalitionRow[]),
  total: number,
  batchSize: number,
  progress?: (f: number) => void,
): Promise<Float64Array> {
  const [, h, w] = x.shape;
  const out = new Float64Array(total);
  const bs = batchSizeFor(classifier, 'forward', batchSize, { shape: x.shape.slice(1) });
  const all = chunks(total, bs);
  for (const [k, [s0, c]] of all.entries()) {
    const block = typeof rows === 'function' ? rows(s0, c) : rows.slice(s0, s0 + c);
    const keep = new Float32Array(c * h * w);
    const img = new Int32Array(c);
    const rep = new Int32Array(c);
    const tg: number[] = [];
    block.forEach((row, j) => {
      const labels = masks[row.image].labels;
      img[j] = row.image;
      rep[j] = row.replacement ?? row.image;
      tg.push(targets[row.image]);
      const off = j * h * w;
      for (let p = 0; p < h * w; p++) keep[off + p] = row.present[labels[p]];
    });
    const scores = tf.tidy(() => {
      const m = tf.tensor4d(keep, [c, h, w, 1]);
      const xs = tf.gather(x, tf.tensor1d(img, 'int32'));
      const rs = tf.gather(replacements, tf.tensor1d(rep, 'int32'));
      const logits = classifier.logits(tf.add(rs, tf.mul(m, tf.sub(xs, rs))));
      return tf.sum(tf.mul(logits, targetMask(tg, classifier.numClasses)), 1);
    });
    const v = (await scores.data()) as Float32Array;
    scores.dispose();
    for (let j = 0; j < c; j++) out[s0 + j] = v[j];
    progress?.((k + 1) / all.length);
  }
  return out;
}

/** Per-feature values painted on the pixels of every channel: [N,H,W,C]. */
export function paintFeatures(masks: Segmentation[], values: ArrayLike<number>[], shape: [number, number, number, number]): tf.Tensor4D {
  const [n, h, w, ch] = shape;
  const out = new Float32Array(n * h * w * ch);
  for (let i = 0; i < n; i++) {
    const labels = masks[i].labels;
    const v = values[i];
    const off = i * h * w * ch;
    for (let p = 0; p < h * w; p++) {
      const val = v[labels[p]];
      for (let k = 0; k < ch; k++) out[off + p * ch + k] = val;
    }
  }
  return tf.tensor4d(out, shape);
}

/** A row with every feature present except `off` (−1: all present). */
export function allBut(count: number, off: number): Uint8Array {
  const z = new Uint8Array(count).fill(1);
  if (off >= 0) z[off] = 0;
  return z;
}
