/**
 * Pixel flipping / region perturbation (Bach et al. 2015; Samek et al. 2017): perturb the image
 * patch by patch in the order of the attribution — most relevant first (MoRF) or least relevant
 * first (LeRF) — and follow the target score. The score is the AOPC, the area over the perturbation
 * curve: mean over steps of f(x) − f(x_k). A faithful map makes the MoRF curve fall fast (high AOPC)
 * and the LeRF curve stay flat (low AOPC); order 'both' scores the area between the two curves
 * (LeRF − MoRF, higher is better; Schulz et al. 2020).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMetric } from './registry.js';
import {
  curveScores, featureOrder, meanCurve, patchRelevance, replacementImages, scoreOutput,
  REPLACEMENTS, roadOptions, type Replacement,
} from './common.js';
import { oneOf, positiveInt } from '../attribution/math.js';

export interface PixelFlippingOptions {
  /** 'morf' (most relevant first), 'lerf' (least relevant first) or 'both' (score: LeRF − MoRF area). */
  order: 'morf' | 'lerf' | 'both';
  /** Side of the square patches perturbed together ('auto': 1 up to 64 px, about side/28 above). */
  patchSize: number | 'auto';
  /** Points of the curve after the unperturbed one (all patches are perturbed at the last). */
  steps: number;
  /** What perturbed pixels become: baseline value, blur, uniform noise, inverse (low + high − x), image mean, or 'road' (ROAD's noisy linear imputation from the kept pixels). */
  replacement: Replacement;
  /** The constant for replacement 'baseline' (null: the domain's low end). */
  baselineValue: number | null;
  blurSigma: number;
  /** Score read from the model: softmax probability or logit of the target. */
  output: 'probability' | 'logit';
  seed: number;
}

const ORDERS = ['morf', 'lerf', 'both'] as const;

registerMetric<PixelFlippingOptions>({
  name: 'pixel-flipping',
  family: 'faithfulness',
  description: 'region perturbation in attribution order (MoRF / LeRF, patch size, baseline/blur/uniform/inverse/mean/ROAD imputation); curve and AOPC',
  higherIsBetter: (o) => o.order !== 'lerf',
  reexplains: false,
  defaults: { order: 'morf', patchSize: 'auto', steps: 100, replacement: 'baseline', baselineValue: null, blurSigma: 3, output: 'probability', seed: 0 },
  async run(ctx, o) {
    const order = oneOf('order', o.order, ORDERS);
    const replacement = oneOf('replacement', o.replacement, REPLACEMENTS);
    const steps = positiveInt('steps', o.steps);
    const output = scoreOutput(o.output);
    const { patchSize, features, relevance: rel } = await patchRelevance(ctx.attribution, o.patchSize);
    const to = replacementImages(ctx.classifier, ctx.x, replacement, { baselineValue: o.baselineValue, blurSigma: o.blurSigma, seed: o.seed });
    const road = roadOptions(ctx.classifier, replacement, o.seed);
    const xs = Array.from({ length: steps + 1 }, (_, k) => k / steps);
    try {
      const run = async (desc: boolean, part: [number, number]) =>
        curveScores(ctx.classifier, ctx.x, to, rel.map((r) => featureOrder(r, desc)), features, steps, ctx.targets, output,
          ctx.progress ? (f) => ctx.progress!(part[0] + f * (part[1] - part[0])) : undefined, road);
      const aopc = (y: number[]) => y.reduce((a, v) => a + (y[0] - v), 0) / y.length;
      const curves = [];
      let morf: number[][] | undefined;
      let lerf: number[][] | undefined;
      if (order !== 'lerf') {
        morf = await run(true, [0, order === 'both' ? 0.5 : 1]);
        curves.push({ name: 'MoRF', xLabel: 'fraction perturbed', yLabel: `target ${output}`, x: xs, y: morf, mean: meanCurve(morf) });
      }
      if (order !== 'morf') {
        lerf = await run(false, [order === 'both' ? 0.5 : 0, 1]);
        curves.push({ name: 'LeRF', xLabel: 'fraction perturbed', yLabel: `target ${output}`, x: xs, y: lerf, mean: meanCurve(lerf) });
      }
      const extras: Record<string, unknown> = { patchSize, features: features.length };
      if (morf) extras.aopcMorf = morf.map(aopc);
      if (lerf) extras.aopcLerf = lerf.map(aopc);
      const scores = order === 'morf' ? morf!.map(aopc) : order === 'lerf' ? lerf!.map(aopc) : morf!.map((m, i) => aopc(m) - aopc(lerf![i]));
      return { scores, curves, extras };
    } finally {
      tf.dispose(to);
    }
  },
});
