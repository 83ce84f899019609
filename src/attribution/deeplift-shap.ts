/**
 * `deeplift-shap` (Lundberg & Lee 2017; Captum DeepLiftShap): DeepLIFT of x against every baseline
 * b_1…b_K of a distribution, averaged: attr = (1/K) Σ_k (x − b_k) · m(x, b_k). Rules and options of
 * `deeplift` (Rescale, Captum's max-pool rule, ReLU6 rescaled). Every (image, baseline) pair is one
 * DeepLIFT pair in the concatenated [x; b] batch, evaluated in chunks that fit the memory budget.
 *
 * extras: completenessError[i] = Σ attr_i − (1/K) Σ_k (f(x_i) − f(b_k)) (exact for summation-to-delta
 * networks under the 'rescale' max-pool rule), scoreDifference[i] = (1/K) Σ_k (f(x_i) − f(b_k)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { baselineDistribution, type BaselineDistributionSpec } from './baselines.js';
import { deepLiftMultipliers, deepLiftRunOptions, needsGraph, type DeepLiftMaxPoolRule, type DeepLiftNonlinearRule } from './deeplift.js';
import { concatBatch, chunks } from './math.js';

export interface DeepLiftShapOptions {
  /** The baseline distribution: a tensor [K,H,W,C], or 'uniform' (numBaselines seeded uniform images in the input range). */
  baselines: BaselineDistributionSpec;
  numBaselines: number;
  seed: number;
  /** Nonlinearities: 'rescale' or 'reveal-cancel' (as deeplift). */
  rule: DeepLiftNonlinearRule;
  maxPoolRule: DeepLiftMaxPoolRule;
  eps: number;
  /** (image, baseline) pairs per call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

registerMethod<DeepLiftShapOptions>({
  name: 'deeplift-shap',
  family: 'attribution',
  description: 'DeepLIFT averaged over a baseline distribution (Captum DeepLiftShap)',
  signed: true,
  defaults: { baselines: 'uniform', numBaselines: 8, seed: 0, rule: 'rescale', maxPoolRule: 'rescale', eps: 1e-10, batchSize: 64 },
  requires: needsGraph,
  perImageExtras: ['completenessError', 'scoreDifference'],
  parallel: 'images',
  async run(classifier, x, targets, options, context) {
    const run = deepLiftRunOptions(options);
    const dist = baselineDistribution(classifier, options.baselines, options.numBaselines, options.seed);
    const k = dist.shape[0];
    const n = x.shape[0];
    // images per group: their K pairs are built at once (the pairs' evaluation is chunked again inside)
    const groups = chunks(n, Math.max(1, Math.floor(Math.max(run.batchSize, k) / k)));
    const parts: tf.Tensor4D[] = [];
    const completenessError: number[] = [];
    const scoreDifference: number[] = [];
    try {
      for (const [gi, [s, c]] of groups.entries()) {
        const [xe, be] = tf.tidy(() => {
          const xs = tf.slice(x, s, c);
          // row i·K + j = (image i, baseline j)
          const [, h, w, ch] = x.shape;
          const xe = tf.reshape(tf.tile(tf.expandDims(xs, 1), [1, k, 1, 1, 1]), [c * k, h, w, ch]) as tf.Tensor4D;
          const be = tf.tile(dist, [c, 1, 1, 1]) as tf.Tensor4D;
          return [xe, be];
        });
        const te = targets.slice(s, s + c).flatMap((t) => new Array(k).fill(t));
        const r = await deepLiftMultipliers(classifier, xe, be, te, {
          ...run,
          progress: context.progress ? (f) => context.progress!((gi + f) / groups.length, 'deeplift-shap') : undefined,
        });
        const attr = tf.tidy(() => {
          const contrib = tf.mul(tf.sub(xe, be), r.multipliers);
          return tf.mean(tf.reshape(contrib, [c, k, ...x.shape.slice(1)]), 1) as tf.Tensor4D;
        });
        tf.dispose([xe, be, r.multipliers]);
        parts.push(attr);
        const sums = tf.sum(attr, [1, 2, 3]);
        const total = (await sums.data()) as Float32Array;
        sums.dispose();
        for (let i = 0; i < c; i++) {
          let d = 0;
          for (let j = 0; j < k; j++) d += r.fx[i * k + j] - r.fb[i * k + j];
          d /= k;
          scoreDifference.push(d);
          completenessError.push(total[i] - d);
        }
      }
    } catch (e) {
      tf.dispose(parts);
      throw e;
    } finally {
      dist.dispose();
    }
    const attribution = concatBatch(parts);
    return { attribution, extras: { completenessError, scoreDifference } };
  },
});
