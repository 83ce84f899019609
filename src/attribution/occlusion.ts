/**
 * `occlusion` (Zeiler & Fergus 2014; Captum Occlusion semantics): slide a window (all channels) over
 * the image with a stride, replace it with a baseline value, and record the drop of the target logit
 * d_p = f(x) − f(x with window p replaced). Each pixel gets the mean of d_p over the windows that
 * cover it (0 where no window does). All windows of all images are evaluated in large batches,
 * spread over the worker pool's threads when the call is large enough (engine/pool).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import { batchSizeFor } from '../engine/memory.js';
import { batchedScores, chunks, finiteNumber, pairOption, positiveInt } from './math.js';
import { defineChunkKernel } from '../engine/pool/kernels.js';
import { mapChunks } from '../engine/pool/map.js';
import { chunkSizeFor, planLanes } from '../engine/pool/plan.js';

export interface OcclusionOptions {
  /**
   * Window size: a number, [height, width], or 'auto' (default): max(4, round(side / 7)) — 4 on a
   * 28×28 digit, 32 on a 224×224 photo, so the number of windows does not grow with the image.
   */
  window: number | [number, number] | 'auto';
  /** Step between windows: a number, [height, width], or 'auto' (default): half the window, rounded up. */
  stride: number | [number, number] | 'auto';
  /** Value written into the window: a number, or 'low' / 'high' for the classifier's input range. */
  baseline: number | 'low' | 'high';
  /** Occluded images per forward call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

/** Top-left corners of the window positions along one axis (Captum: floor((size − window)/stride) + 1 positions). */
export function windowStarts(size: number, window: number, stride: number): number[] {
  if (window > size) throw new OptionError(`expected a window no larger than the image (${size}); got ${window}`);
  const n = Math.floor((size - window) / stride) + 1;
  return Array.from({ length: n }, (_, i) => i * stride);
}

interface OcclusionShared {
  x: tf.Tensor4D;
  targets: number[];
  positions: Array<[number, number]>;
  win: [number, number];
  baseline: number;
}

/** Target logits of rows s..s+c of the (image, window position) list, each image with its window replaced. */
const occludedScores = defineChunkKernel<OcclusionShared, { s: number; c: number }, Float32Array>('occlusion/scores', async (classifier, sh, { s, c }) => {
  const { x, targets, positions, win, baseline } = sh;
  const [, h, w] = x.shape;
  const p = positions.length;
  const keep = new Float32Array(c * h * w).fill(1);
  const imgIdx = new Int32Array(c);
  const tg: number[] = [];
  for (let j = 0; j < c; j++) {
    const row = s + j;
    const i = Math.floor(row / p);
    const [r0, c0] = positions[row % p];
    imgIdx[j] = i;
    tg.push(targets[i]);
    for (let rr = r0; rr < r0 + win[0]; rr++) keep.fill(0, j * h * w + rr * w + c0, j * h * w + rr * w + c0 + win[1]);
  }
  const y = tf.tidy(() => {
    const m = tf.tensor4d(keep, [c, h, w, 1]);
    const xs = tf.gather(x, tf.tensor1d(imgIdx, 'int32'));
    const occluded = baseline === 0 ? tf.mul(xs, m) : tf.add(tf.mul(xs, m), tf.mul(tf.sub(1, m), baseline));
    return tf.sum(tf.mul(classifier.logits(occluded), targetMask(tg, classifier.numClasses)), 1);
  });
  const yv = (await y.data()) as Float32Array;
  y.dispose();
  return yv;
});

/**
 * Target-logit drops for every window position: returns d [N][P] and the positions. Generic enough
 * for prediction difference analysis-style loops: `fill(rowImageIndex, position, buffer)` is not
 * needed here because the window is constant.
 */
export async function occlusionDrops(
  classifier: Classifier,
  x: tf.Tensor4D,
  targets: number[],
  win: [number, number],
  stride: [number, number],
  baseline: number,
  batchSize: number,
  progress?: (f: number, label?: string) => void,
): Promise<{ drops: Float64Array[]; positions: Array<[number, number]> }> {
  const [n, h, w] = x.shape;
  const rows = windowStarts(h, win[0], stride[0]);
  const cols = windowStarts(w, win[1], stride[1]);
  const positions: Array<[number, number]> = [];
  for (const r of rows) for (const c of cols) positions.push([r, c]);
  const p = positions.length;
  const base = await batchedScores(classifier, x, targets);
  const drops = Array.from({ length: n }, () => new Float64Array(p));
  const total = n * p;
  const plan = await planLanes(classifier, total, 'forward');
  const allChunks = chunks(total, chunkSizeFor(total, batchSizeFor(classifier, 'forward', batchSize), plan.lanes));
  await mapChunks(classifier, occludedScores, {
    lanes: plan,
    shared: { x, targets, positions, win, baseline },
    count: allChunks.length,
    payload: (k) => ({ s: allChunks[k][0], c: allChunks[k][1] }),
    onResult: (k, yv) => {
      const [s, c] = allChunks[k];
      for (let j = 0; j < c; j++) {
        const row = s + j;
        const i = Math.floor(row / p);
        drops[i][row % p] = base[i] - yv[j];
      }
    },
    progress: progress ? (f) => progress(f, 'occlusion') : undefined,
  });
  return { drops, positions };
}

registerMethod<OcclusionOptions>({
  name: 'occlusion',
  memory: 'forward',
  parallel: 'chunks',
  family: 'attribution',
  description: 'occlusion: mean drop of the target logit over the sliding windows covering each pixel (Captum semantics)',
  signed: true,
  defaults: { window: 'auto', stride: 'auto', baseline: 0, batchSize: 256 },
  async run(classifier, x, targets, options, context) {
    const auto = (side: number) => Math.max(4, Math.round(side / 7));
    const win: [number, number] = options.window === 'auto' ? [Math.min(x.shape[1], auto(x.shape[1])), Math.min(x.shape[2], auto(x.shape[2]))] : pairOption('window', options.window);
    const stride: [number, number] = options.stride === 'auto' ? [Math.ceil(win[0] / 2), Math.ceil(win[1] / 2)] : pairOption('stride', options.stride);
    const baseline = options.baseline === 'low' ? classifier.domain.low : options.baseline === 'high' ? classifier.domain.high : finiteNumber('baseline', options.baseline);
    const batchSize = positiveInt('batchSize', options.batchSize);
    const [n, h, w, ch] = x.shape;
    const { drops, positions } = await occlusionDrops(classifier, x, targets, win, stride, baseline, batchSize, context.progress);
    const out = new Float32Array(n * h * w * ch);
    const count = new Float64Array(h * w);
    for (const [r0, c0] of positions) {
      for (let r = r0; r < r0 + win[0]; r++) for (let c = c0; c < c0 + win[1]; c++) count[r * w + c]++;
    }
    for (let i = 0; i < n; i++) {
      const acc = new Float64Array(h * w);
      positions.forEach(([r0, c0], pi) => {
        const d = drops[i][pi];
        for (let r = r0; r < r0 + win[0]; r++) for (let c = c0; c < c0 + win[1]; c++) acc[r * w + c] += d;
      });
      for (let q = 0; q < h * w; q++) {
        const v = count[q] > 0 ? acc[q] / count[q] : 0;
        for (let k = 0; k < ch; k++) out[(i * h * w + q) * ch + k] = v;
      }
    }
    return { attribution: tf.tensor4d(out, [n, h, w, ch]), extras: { windows: positions.length } };
  },
});
