/**
 * `layer-integrated-gradients` (Captum LayerIntegratedGradients): integrated gradients in a layer's
 * activation space. With A = act(x) and A⁰ = act(baseline), attr = (A − A⁰) · Σ_k s_k ∂y/∂A evaluated
 * at A⁰ + α_k (A − A⁰) fed through the rest of the network (points and weights of `rule`, Captum's
 * conventions; Gauss–Legendre by default). Paths that bypass the layer see x, as in Captum (whose
 * hook replaces the layer's output while the model runs on x). Result in the layer's NHWC layout.
 * extras.completenessError[i] = Σ attr_i − (y(A) − y(A⁰)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../../core/registry.js';
import { targetMask } from '../../core/target.js';
import { batchSizeFor } from '../../engine/memory.js';
import { makeBaseline, type BaselineSpec } from '../integrated-gradients.js';
import { concatBatch, INTEGRATION_RULES, integrationPoints, oneOf, positiveInt, type IntegrationRule } from '../math.js';
import { layerShape4, needsGraph, resolveLayer, splitAt, to4D } from './common.js';

export interface LayerIntegratedGradientsOptions {
  layer: string | null;
  /** Baseline of the input (its activation is the path's start): 'zeros', 'constant', 'blurred' or a tensor. */
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  steps: number;
  rule: IntegrationRule;
  /** Path points per gradient call, at most (fewer when the memory budget says so). */
  internalBatchSize: number;
}

registerMethod<LayerIntegratedGradientsOptions>({
  name: 'layer-integrated-gradients',
  family: 'attribution',
  description: 'integrated gradients along the straight path in a layer\'s activation space (Captum LayerIntegratedGradients)',
  signed: true,
  perImageExtras: ['completenessError'],
  parallel: 'images',
  perImageOptions: ['baseline'],
  defaults: { layer: null, baseline: 'zeros', baselineValue: 0, blurSigma: 5, steps: 50, rule: 'gauss-legendre', internalBatchSize: 128 },
  requires: needsGraph,
  async run(classifier, x, targets, options, context) {
    const layer = resolveLayer(classifier, options.layer);
    const shape = layerShape4(classifier, layer);
    const split = splitAt(classifier, layer);
    const rule = oneOf('rule', options.rule, INTEGRATION_RULES);
    const { alphas, weights } = integrationPoints(rule, positiveInt('steps', options.steps, 2));
    const rows = batchSizeFor(classifier, 'gradient', positiveInt('internalBatchSize', options.internalBatchSize));
    const baseline = makeBaseline(classifier, x, options.baseline, options.baselineValue, options.blurSigma);
    const n = x.shape[0];
    const g = Math.min(n, rows);
    const per = Math.max(1, Math.floor(rows / g));
    const parts: tf.Tensor4D[] = [];
    const completenessError: number[] = [];
    const totalChunks = Math.ceil(n / g) * Math.ceil(alphas.length / per);
    let done = 0;
    try {
      for (let i0 = 0; i0 < n; i0 += g) {
        const gi = Math.min(g, n - i0);
        const [xs, a, a0] = tf.tidy(() => {
          const xs = tf.slice(x, i0, gi);
          return [xs, split.head(xs), split.head(tf.slice(baseline, i0, gi))];
        });
        const mask = targetMask(targets.slice(i0, i0 + gi), classifier.numClasses);
        let acc: tf.Tensor | undefined;
        for (let k0 = 0; k0 < alphas.length; k0 += per) {
          const sk = Math.min(per, alphas.length - k0);
          const next = tf.tidy(() => {
            const al = tf.reshape(tf.tensor1d(alphas.slice(k0, k0 + sk)), [sk, 1, ...new Array(a.rank - 1).fill(1)]);
            const pts = tf.reshape(tf.add(tf.expandDims(a0, 0), tf.mul(al, tf.expandDims(tf.sub(a, a0), 0))), [sk * gi, ...a.shape.slice(1)]);
            const xr = split.isCut ? undefined : tf.tile(xs, [sk, 1, 1, 1]);
            const m = tf.tile(mask, [sk, 1]);
            const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(split.tail(v, xr), m)))(pts);
            const w = tf.reshape(tf.tensor1d(weights.slice(k0, k0 + sk)), [sk, 1, ...new Array(a.rank - 1).fill(1)]);
            const summed = tf.sum(tf.mul(tf.reshape(grad, [sk, ...a.shape]), w), 0);
            return acc ? tf.add(acc, summed) : summed;
          });
          acc?.dispose();
          acc = next;
          done++;
          context.progress?.(done / totalChunks, 'layer integrated gradients');
        }
        const [attr, err] = tf.tidy(() => {
          const attr = to4D(tf.mul(tf.sub(a, a0), acc!), shape);
          const xr = split.isCut ? undefined : xs;
          const dy = tf.sum(tf.mul(tf.sub(split.tail(a, xr), split.tail(a0, xr)), mask), 1);
          return [attr, tf.sub(tf.sum(attr, [1, 2, 3]), dy)];
        });
        completenessError.push(...((await err.data()) as Float32Array));
        tf.dispose([xs, a, a0, mask, acc!, err]);
        parts.push(attr as tf.Tensor4D);
      }
    } catch (e) {
      tf.dispose(parts);
      throw e;
    } finally {
      baseline.dispose();
    }
    const attribution = concatBatch(parts);
    return { attribution, extras: { layer, completenessError } };
  },
});
