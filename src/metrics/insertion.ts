/**
 * Insertion (Petsiuk et al. 2018, RISE): start from a blurred copy of the image (no evidence, still
 * natural-looking) and put the original pixels back from the most relevant on; the score is the area
 * under the target probability curve over the fraction inserted. Higher is better.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMetric } from './registry.js';
import { auc, curveScores, featureOrder, meanCurve, patchRelevance, replacementImages, scoreOutput, FIXED_REPLACEMENTS, type Replacement } from './common.js';
import { oneOf, positiveInt } from '../attribution/math.js';

export interface InsertionOptions {
  patchSize: number | 'auto';
  steps: number;
  /** The starting canvas (default: the blurred image). */
  start: Replacement;
  baselineValue: number | null;
  /** Blur of the starting canvas, in pixels (RISE uses a strong blur). */
  blurSigma: number;
  output: 'probability' | 'logit';
  seed: number;
}

registerMetric<InsertionOptions>({
  name: 'insertion',
  family: 'faithfulness',
  description: 'insertion curve: target probability as the most relevant pixels are restored first onto a blurred canvas; area under it (RISE)',
  higherIsBetter: true,
  reexplains: false,
  defaults: { patchSize: 'auto', steps: 100, start: 'blur', baselineValue: null, blurSigma: 5, output: 'probability', seed: 0 },
  async run(ctx, o) {
    const steps = positiveInt('steps', o.steps);
    const output = scoreOutput(o.output);
    const { features, relevance } = await patchRelevance(ctx.attribution, o.patchSize);
    const orders = relevance.map((r) => featureOrder(r, true));
    const from = replacementImages(ctx.classifier, ctx.x, oneOf('start', o.start, FIXED_REPLACEMENTS), { baselineValue: o.baselineValue, blurSigma: o.blurSigma, seed: o.seed });
    try {
      const y = await curveScores(ctx.classifier, from, ctx.x, orders, features, steps, ctx.targets, output, ctx.progress);
      const x = Array.from({ length: steps + 1 }, (_, k) => k / steps);
      return { scores: y.map(auc), curves: [{ name: 'insertion', xLabel: 'fraction inserted', yLabel: `target ${output}`, x, y, mean: meanCurve(y) }] };
    } finally {
      from.dispose();
    }
  },
});
