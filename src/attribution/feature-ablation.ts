/**
 * `feature-ablation` (Captum FeatureAblation): every pixel of feature j gets f(x) − f(x with feature j
 * replaced by the baseline), for the features of a mask (square patches by default, a band grid,
 * super-pixels, or a label map). One forward pass per feature, batched across features and images.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { makeBaseline, type BaselineSpec } from './integrated-gradients.js';
import { allBut, coalitionScores, featureMasks, FEATURE_MASK_DEFAULTS, paintFeatures, type CoalitionRow, type FeatureMaskOptions } from './feature-mask.js';
import { batchedScores, positiveInt } from './math.js';

export interface FeatureAblationOptions extends FeatureMaskOptions {
  /** What a removed feature becomes: 'zeros', 'constant' (baselineValue), 'blurred' (blurSigma) or a tensor. */
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  /** Ablated images per forward call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

registerMethod<FeatureAblationOptions>({
  name: 'feature-ablation',
  family: 'attribution',
  description: 'drop of the target logit when each feature (patch, band, super-pixel, given mask) is replaced by a baseline (Captum FeatureAblation)',
  signed: true,
  memory: 'forward',
  perImageExtras: ['featureCount'],
  parallel: 'images',
  defaults: { featureMask: 'patches', ...FEATURE_MASK_DEFAULTS, baseline: 'zeros', baselineValue: 0, blurSigma: 5, batchSize: 256 },
  async run(classifier, x, targets, options, context) {
    const batchSize = positiveInt('batchSize', options.batchSize);
    const masks = await featureMasks(classifier, x, options);
    const baseline = makeBaseline(classifier, x, options.baseline, options.baselineValue, options.blurSigma);
    try {
      const rows: CoalitionRow[] = [];
      masks.forEach((m, i) => {
        for (let j = 0; j < m.count; j++) rows.push({ image: i, present: allBut(m.count, j) });
      });
      const fx = await batchedScores(classifier, x, targets);
      const v = await coalitionScores(classifier, x, baseline, targets, masks, rows, rows.length, batchSize, (f) => context.progress?.(f, 'feature-ablation'));
      let r = 0;
      const values = masks.map((m, i) => {
        const d = new Float64Array(m.count);
        for (let j = 0; j < m.count; j++) d[j] = fx[i] - v[r++];
        return d;
      });
      return { attribution: paintFeatures(masks, values, x.shape), extras: { featureCount: masks.map((m) => m.count) } };
    } finally {
      baseline.dispose();
    }
  },
});
