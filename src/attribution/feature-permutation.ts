/**
 * `feature-permutation` (Captum FeaturePermutation; Breiman's permutation importance per image):
 * for each feature j one seeded permutation π_j of the batch (never the identity), and every pixel of
 * feature j of image i gets f(x_i) − f(x_i with feature j's pixels taken from image π_j(i)). It
 * measures how much an image relies on its own content in that region against what other images put
 * there, so its result depends on the batch. A single image (where a batch permutation is the
 * identity, and Captum refuses) has each feature's pixels shuffled among themselves instead (seeded):
 * the feature keeps its values but loses its arrangement.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import type { Segmentation } from './segmentation/common.js';
import { createRng, shuffle } from '../util/random.js';
import { allBut, coalitionScores, featureMasks, FEATURE_MASK_DEFAULTS, paintFeatures, type CoalitionRow, type FeatureMaskOptions } from './feature-mask.js';
import { batchedScores, positiveInt } from './math.js';

export interface FeaturePermutationOptions extends FeatureMaskOptions {
  seed: number;
  /** Permuted images per forward call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

/** One image [1,H,W,C] with the pixels of every feature shuffled among themselves (all channels of a pixel move together). */
export function shuffleWithinFeatures(x: tf.Tensor4D, mask: Segmentation, rng: () => number): tf.Tensor4D {
  const [, h, w, c] = x.shape;
  const src = x.dataSync();
  const out = new Float32Array(src.length);
  const members: number[][] = Array.from({ length: mask.count }, () => []);
  for (let p = 0; p < h * w; p++) members[mask.labels[p]].push(p);
  for (const pixels of members) {
    const to = shuffle(pixels.slice(), rng);
    pixels.forEach((p, k) => {
      for (let ch = 0; ch < c; ch++) out[to[k] * c + ch] = src[p * c + ch];
    });
  }
  return tf.tensor4d(out, [1, h, w, c]);
}

/** A seeded permutation of 0..n−1 that is not the identity (n ≥ 2). */
export function derangedOrder(n: number, rng: () => number): number[] {
  for (;;) {
    const p = shuffle(Array.from({ length: n }, (_, i) => i), rng);
    if (p.some((v, i) => v !== i)) return p;
  }
}

registerMethod<FeaturePermutationOptions>({
  name: 'feature-permutation',
  family: 'attribution',
  description: 'drop of the target logit when each feature is swapped in from another image of the batch (Captum FeaturePermutation; one image: shuffled within the feature), seeded',
  signed: true,
  memory: 'forward',
  defaults: { featureMask: 'patches', ...FEATURE_MASK_DEFAULTS, seed: 0, batchSize: 256 },
  async run(classifier, x, targets, options, context) {
    const n = x.shape[0];
    const batchSize = positiveInt('batchSize', options.batchSize);
    const masks = await featureMasks(classifier, x, options, Number(options.seed) || 0);
    const rng = createRng(Number(options.seed) || 0);
    const maxF = Math.max(...masks.map((m) => m.count));
    const single = n === 1;
    const perms = single ? [] : Array.from({ length: maxF }, () => derangedOrder(n, rng));
    const rows: CoalitionRow[] = [];
    masks.forEach((m, i) => {
      for (let j = 0; j < m.count; j++) rows.push({ image: i, present: allBut(m.count, j), replacement: single ? 0 : perms[j][i] });
    });
    const fx = await batchedScores(classifier, x, targets);
    const replacements = single ? shuffleWithinFeatures(x, masks[0], rng) : x;
    let v: Float64Array;
    try {
      v = await coalitionScores(classifier, x, replacements, targets, masks, rows, rows.length, batchSize, (f) => context.progress?.(f, 'feature-permutation'));
    } finally {
      if (replacements !== x) replacements.dispose();
    }
    let r = 0;
    const values = masks.map((m, i) => {
      const d = new Float64Array(m.count);
      for (let j = 0; j < m.count; j++) d[j] = fx[i] - v[r++];
      return d;
    });
    return { attribution: paintFeatures(masks, values, x.shape), extras: { featureCount: masks.map((m) => m.count) } };
  },
});
