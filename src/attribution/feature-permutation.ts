/**
 * `feature-permutation` (Captum FeaturePermutation; Breiman's permutation importance per image):
 * for each feature j one seeded permutation π_j of the batch (never the identity), and every pixel of
 * feature j of image i gets f(x_i) − f(x_i with feature j's pixels taken from image π_j(i)). It
 * measures how much an image relies on its own content in that region against what other images put
 * there, so it needs a batch of at least two images and its result depends on the batch.
 */
import { registerMethod } from '../core/registry.js';
import { OptionError } from '../core/errors.js';
import { createRng, shuffle } from '../util/random.js';
import { allBut, coalitionScores, featureMasks, FEATURE_MASK_DEFAULTS, paintFeatures, type CoalitionRow, type FeatureMaskOptions } from './feature-mask.js';
import { batchedScores, positiveInt } from './math.js';

export interface FeaturePermutationOptions extends FeatureMaskOptions {
  seed: number;
  /** Permuted images per forward call, at most (fewer when the memory budget says so). */
  batchSize: number;
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
  description: 'drop of the target logit when each feature is swapped in from another image of the batch (Captum FeaturePermutation), seeded',
  signed: true,
  memory: 'forward',
  defaults: { featureMask: 'patches', ...FEATURE_MASK_DEFAULTS, seed: 0, batchSize: 256 },
  async run(classifier, x, targets, options, context) {
    const n = x.shape[0];
    if (n < 2) throw new OptionError(`feature-permutation permutes features across the batch: expected at least 2 images; got ${n}`);
    const batchSize = positiveInt('batchSize', options.batchSize);
    const masks = await featureMasks(classifier, x, options, Number(options.seed) || 0);
    const rng = createRng(Number(options.seed) || 0);
    const maxF = Math.max(...masks.map((m) => m.count));
    const perms = Array.from({ length: maxF }, () => derangedOrder(n, rng));
    const rows: CoalitionRow[] = [];
    masks.forEach((m, i) => {
      for (let j = 0; j < m.count; j++) rows.push({ image: i, present: allBut(m.count, j), replacement: perms[j][i] });
    });
    const fx = await batchedScores(classifier, x, targets);
    const v = await coalitionScores(classifier, x, x, targets, masks, rows, rows.length, batchSize, (f) => context.progress?.(f, 'feature-permutation'));
    let r = 0;
    const values = masks.map((m, i) => {
      const d = new Float64Array(m.count);
      for (let j = 0; j < m.count; j++) d[j] = fx[i] - v[r++];
      return d;
    });
    return { attribution: paintFeatures(masks, values, x.shape), extras: { featureCount: masks.map((m) => m.count) } };
  },
});
