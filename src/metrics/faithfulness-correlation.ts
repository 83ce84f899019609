/**
 * Faithfulness correlation (Bhatt et al. 2020): replace random subsets of features by a baseline
 * and correlate (Pearson, over the subsets) the summed attribution of each subset with the drop of
 * the target score it causes. 1: the map predicts every subset's effect; 0: it predicts none.
 * Subsets are drawn from the seed; all N·samples perturbed images go through batched forward passes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMetric } from './registry.js';
import {
  metricRng, patchRelevance, pearson, perturbedScores, replacementImages, scoreOutput, scoresOf,
  REPLACEMENTS, roadOptions, type Replacement,
} from './common.js';
import { oneOf, positiveInt } from '../attribution/math.js';
import { OptionError } from '../core/errors.js';

export interface FaithfulnessCorrelationOptions {
  /** Random subsets per image. */
  samples: number;
  /** Features per subset ('auto': 10 % of the features, at least 1). */
  subsetSize: number | 'auto';
  patchSize: number | 'auto';
  replacement: Replacement;
  baselineValue: number | null;
  blurSigma: number;
  output: 'probability' | 'logit';
  seed: number;
}

registerMetric<FaithfulnessCorrelationOptions>({
  name: 'faithfulness-correlation',
  family: 'faithfulness',
  description: 'Pearson correlation between the attribution of random feature subsets and the score drop when they are removed (Bhatt et al. 2020), seeded',
  higherIsBetter: true,
  reexplains: false,
  defaults: { samples: 100, subsetSize: 'auto', patchSize: 'auto', replacement: 'baseline', baselineValue: null, blurSigma: 3, output: 'probability', seed: 0 },
  async run(ctx, o) {
    const samples = positiveInt('samples', o.samples, 2);
    const output = scoreOutput(o.output);
    const n = ctx.x.shape[0];
    const { features, relevance: rel } = await patchRelevance(ctx.attribution, o.patchSize);
    const f = features.length;
    const size = o.subsetSize === 'auto' ? Math.max(1, Math.round(f / 10)) : positiveInt('subsetSize', o.subsetSize);
    if (size > f) throw new OptionError(`expected option subsetSize ≤ ${f} (the number of features); got ${size}`);
    // Subsets: a seeded partial Fisher–Yates per row.
    const rng = metricRng(o.seed);
    const subsets: Int32Array[] = [];
    const perm = Int32Array.from({ length: f }, (_, i) => i);
    for (let r = 0; r < n * samples; r++) {
      for (let j = 0; j < size; j++) {
        const k = j + Math.floor(rng() * (f - j));
        const t = perm[j];
        perm[j] = perm[k];
        perm[k] = t;
      }
      subsets.push(perm.slice(0, size));
    }
    const replacement = oneOf('replacement', o.replacement, REPLACEMENTS);
    const to = replacementImages(ctx.classifier, ctx.x, replacement, { baselineValue: o.baselineValue, blurSigma: o.blurSigma, seed: o.seed });
    try {
      const base = await scoresOf(ctx.classifier, ctx.x, ctx.targets, output);
      const pert = await perturbedScores(ctx.classifier, ctx.x, to, n * samples, (r) => Math.floor(r / samples), (r, mask) => {
        for (const j of subsets[r]) for (const p of features[j]) mask[p] = 1;
      }, ctx.targets, output, ctx.progress, roadOptions(ctx.classifier, replacement, o.seed));
      const scores = Array.from({ length: n }, (_, i) => {
        const drops = new Float64Array(samples);
        const sums = new Float64Array(samples);
        for (let s = 0; s < samples; s++) {
          drops[s] = base[i] - pert[i * samples + s];
          for (const j of subsets[i * samples + s]) sums[s] += rel[i][j];
        }
        return pearson(sums, drops);
      });
      return { scores, extras: { subsetSize: size, features: f } };
    } finally {
      tf.dispose(to);
    }
  },
});
