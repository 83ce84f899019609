/**
 * Deletion (Petsiuk et al. 2018, RISE): remove pixels from the most relevant on — set them to the
 * baseline — and follow the target probability; the score is the area under that curve over the
 * fraction deleted. A faithful map destroys the evidence first: lower is better.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMetric } from './registry.js';
import { auc, curveScores, featureOrder, meanCurve, patchRelevance, replacementImages, scoreOutput, REPLACEMENTS, roadOptions, type Replacement } from './common.js';
import { oneOf, positiveInt } from '../attribution/math.js';

export interface DeletionOptions {
  patchSize: number | 'auto';
  steps: number;
  /** What deleted pixels become (default: the baseline value). */
  replacement: Replacement;
  baselineValue: number | null;
  blurSigma: number;
  output: 'probability' | 'logit';
  seed: number;
}

registerMetric<DeletionOptions>({
  name: 'deletion',
  family: 'faithfulness',
  description: 'deletion curve: target probability as the most relevant pixels are removed first; area under it (RISE)',
  higherIsBetter: false,
  reexplains: false,
  defaults: { patchSize: 'auto', steps: 100, replacement: 'baseline', baselineValue: null, blurSigma: 3, output: 'probability', seed: 0 },
  async run(ctx, o) {
    const steps = positiveInt('steps', o.steps);
    const output = scoreOutput(o.output);
    const { features, relevance } = await patchRelevance(ctx.attribution, o.patchSize);
    const orders = relevance.map((r) => featureOrder(r, true));
    const replacement = oneOf('replacement', o.replacement, REPLACEMENTS);
    const to = replacementImages(ctx.classifier, ctx.x, replacement, { baselineValue: o.baselineValue, blurSigma: o.blurSigma, seed: o.seed });
    try {
      const y = await curveScores(ctx.classifier, ctx.x, to, orders, features, steps, ctx.targets, output, ctx.progress, roadOptions(ctx.classifier, replacement, o.seed));
      const x = Array.from({ length: steps + 1 }, (_, k) => k / steps);
      return { scores: y.map(auc), curves: [{ name: 'deletion', xLabel: 'fraction deleted', yLabel: `target ${output}`, x, y, mean: meanCurve(y) }] };
    } finally {
      to.dispose();
    }
  },
});
