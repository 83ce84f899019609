/**
 * `gradient-shap` (Lundberg & Lee 2017; Captum GradientShap): expected gradients. Sample s draws a
 * baseline b_s from a distribution, a point α_s on the path and (stdev > 0) Gaussian noise ε_s, and
 * contributes (x̃ − b_s) · ∇f(b_s + α_s (x̃ − b_s)) with x̃ = x + ε_s (Captum's exact expression with
 * multiply_by_inputs); the attribution is the mean over the samples.
 *
 * Seeded and batch-independent: sample s uses the same baseline, α and noise field for every image
 * (drawn from the seed), so an image's map does not depend on the batch it came in.
 * `draw: 'stratified'` replaces the random draws by a grid — samples/K samples per baseline with
 * midpoint α = (j + ½)/(samples/K) — a deterministic, lower-variance estimate of the same expectation
 * (with 32 samples and 8 baselines it is the conformance reference `gradient_shap_fixed`).
 *
 * extras: baselineIndex[s] and alpha[s] of each sample.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import { batchSizeFor } from '../engine/memory.js';
import { createRng, nextSeed } from '../util/random.js';
import { baselineDistribution, type BaselineDistributionSpec } from './baselines.js';
import { chunks, finiteNumber, oneOf, positiveInt } from './math.js';

export interface GradientShapOptions {
  /** The baseline distribution: a tensor [K,H,W,C], or 'uniform' (numBaselines seeded uniform images in the input range). */
  baselines: BaselineDistributionSpec;
  numBaselines: number;
  samples: number;
  /** Standard deviation of the Gaussian noise added to the input per sample (Captum stdevs), in input units. */
  stdev: number;
  /** 'random' (Captum: uniform baseline and α per sample) or 'stratified' (every baseline, midpoint α grid). */
  draw: 'random' | 'stratified';
  seed: number;
  /** Gradient rows (image × sample) per call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

/** Baseline index and α of every sample. */
export function gradientShapDraws(samples: number, k: number, draw: 'random' | 'stratified', seed: number): { baselineIndex: number[]; alpha: number[] } {
  if (draw === 'stratified') {
    if (samples % k !== 0) throw new OptionError(`expected option samples to be a multiple of the number of baselines (${k}) for draw "stratified"; got ${samples}`);
    const per = samples / k;
    return {
      baselineIndex: Array.from({ length: samples }, (_, s) => Math.floor(s / per)),
      alpha: Array.from({ length: samples }, (_, s) => ((s % per) + 0.5) / per),
    };
  }
  const rng = createRng(seed);
  const baselineIndex: number[] = [];
  const alpha: number[] = [];
  for (let s = 0; s < samples; s++) {
    baselineIndex.push(Math.min(k - 1, Math.floor(rng() * k)));
    alpha.push(rng());
  }
  return { baselineIndex, alpha };
}

registerMethod<GradientShapOptions>({
  name: 'gradient-shap',
  family: 'attribution',
  description: 'expected gradients over a baseline distribution with noise (Captum GradientShap), seeded',
  signed: true,
  defaults: { baselines: 'uniform', numBaselines: 8, samples: 32, stdev: 0, draw: 'random', seed: 0, batchSize: 128 },
  perImageExtras: [],
  async run(classifier, x, targets, options, context) {
    const samples = positiveInt('samples', options.samples);
    const stdev = finiteNumber('stdev', options.stdev, 0);
    const draw = oneOf('draw', options.draw, ['random', 'stratified'] as const);
    const seed = Number(options.seed) || 0;
    const dist = baselineDistribution(classifier, options.baselines, options.numBaselines, seed);
    const k = dist.shape[0];
    const { baselineIndex, alpha } = (() => {
      try {
        return gradientShapDraws(samples, k, draw, seed);
      } catch (e) {
        dist.dispose();
        throw e;
      }
    })();
    // noise seeds from a generator of their own, so the draws above do not depend on stdev
    const noiseRng = createRng((seed ^ 0x5bd1e995) >>> 0);
    const noiseSeeds = Array.from({ length: samples }, () => nextSeed(noiseRng));
    const [n, h, w, c] = x.shape;
    const rows = batchSizeFor(classifier, 'gradient', positiveInt('batchSize', options.batchSize), { shape: [h, w, c] });
    const g = Math.min(n, rows);
    const perCall = Math.max(1, Math.floor(rows / g));
    const groups: tf.Tensor4D[] = [];
    const total = Math.ceil(n / g) * Math.ceil(samples / perCall);
    let done = 0;
    try {
      for (let i0 = 0; i0 < n; i0 += g) {
        const gi = Math.min(g, n - i0);
        let acc: tf.Tensor4D | undefined;
        for (const [s0, sk] of chunks(samples, perCall)) {
          const next = tf.tidy(() => {
            const xi = tf.expandDims(tf.slice(x, i0, gi), 0); // [1,gi,H,W,C]
            const idx = tf.tensor1d(baselineIndex.slice(s0, s0 + sk), 'int32');
            const b = tf.expandDims(tf.gather(dist, idx), 1); // [sk,1,H,W,C]
            const a = tf.reshape(tf.tensor1d(alpha.slice(s0, s0 + sk)), [sk, 1, 1, 1, 1]);
            let xn: tf.Tensor = xi;
            if (stdev > 0) {
              const noise = tf.stack(noiseSeeds.slice(s0, s0 + sk).map((sd) => tf.randomNormal([h, w, c], 0, stdev, 'float32', sd)));
              xn = tf.add(xi, tf.expandDims(noise, 1)); // [sk,gi,H,W,C]
            }
            const diff = tf.sub(xn, b); // [sk,gi,H,W,C]
            const pts = tf.reshape(tf.add(b, tf.mul(a, diff)), [sk * gi, h, w, c]);
            const mask = tf.tile(targetMask(targets.slice(i0, i0 + gi), classifier.numClasses), [sk, 1]);
            const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(classifier.logits(v), mask)))(pts);
            const contrib = tf.sum(tf.mul(tf.reshape(grad, [sk, gi, h, w, c]), diff), 0) as tf.Tensor4D;
            return acc ? (tf.add(acc, contrib) as tf.Tensor4D) : contrib;
          });
          acc?.dispose();
          acc = next;
          done++;
          context.progress?.(done / total, 'gradient-shap');
        }
        groups.push(acc!);
      }
    } catch (e) {
      tf.dispose(groups);
      throw e;
    } finally {
      dist.dispose();
    }
    const sum = groups.length === 1 ? groups[0] : tf.concat(groups, 0);
    if (groups.length > 1) tf.dispose(groups);
    const attribution = tf.tidy(() => tf.div(sum, samples) as tf.Tensor4D);
    sum.dispose();
    return { attribution, extras: { baselineIndex, alpha } };
  },
});
