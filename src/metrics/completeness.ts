/**
 * Completeness / conservation (Sundararajan et al. 2017; Bach et al. 2015): how far the summed
 * attribution is from the score difference it should account for, |Σ A − (f(x) − f(b))|, with the
 * target logit f and a baseline b (constant `baselineValue`; null: f(b) = 0, the conservation of LRP,
 * whose relevance sums to the logit itself). Extras: the relative error (÷ |f(x) − f(b)|). Lower is
 * better; integrated gradients and DeepLIFT satisfy it by construction, gradients do not.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMetric } from './registry.js';
import { scoresOf } from './common.js';

export interface CompletenessOptions {
  /** The baseline's constant value (0: integrated gradients' default black image); null: compare with f(x) alone. */
  baselineValue: number | null;
}

registerMetric<CompletenessOptions>({
  name: 'completeness',
  family: 'conservation',
  description: 'conservation error |Σ A − (f(x) − f(baseline))| of the target logit (Sundararajan et al. 2017)',
  higherIsBetter: false,
  reexplains: false,
  defaults: { baselineValue: 0 },
  async run(ctx, o) {
    const fx = await scoresOf(ctx.classifier, ctx.x, ctx.targets, 'logit');
    let fb: Float64Array = new Float64Array(fx.length);
    if (o.baselineValue !== null) {
      const b = tf.fill(ctx.x.shape, Number(o.baselineValue)) as tf.Tensor4D;
      try {
        fb = await scoresOf(ctx.classifier, b, ctx.targets, 'logit');
      } finally {
        b.dispose();
      }
    }
    const s = tf.sum(ctx.attribution, [1, 2, 3]);
    const sums = (await s.data()) as Float32Array;
    s.dispose();
    const scores = Array.from(sums, (v, i) => Math.abs(v - (fx[i] - fb[i])));
    return { scores, extras: { sum: Array.from(sums), delta: Array.from(fx, (v, i) => v - fb[i]), relative: scores.map((e, i) => e / Math.max(1e-12, Math.abs(fx[i] - fb[i]))) } };
  },
});
