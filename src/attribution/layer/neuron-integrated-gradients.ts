/**
 * `neuron-integrated-gradients` (Captum NeuronIntegratedGradients): integrated gradients of one unit
 * u of a layer with respect to the input: (x − x̄) · Σ_k s_k ∂A_u/∂x(x̄ + α_k (x − x̄)), with the
 * integration rules of `integrated-gradients` (Gauss–Legendre by default). The unit as in
 * `neuron-gradient` (flat index, [h, w, c] or 'max'). extras: neuron[i], and
 * completenessError[i] = Σ attr_i − (A_u(x_i) − A_u(x̄_i)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../../core/registry.js';
import { batchSizeFor } from '../../engine/memory.js';
import { makeBaseline, type BaselineSpec } from '../integrated-gradients.js';
import { concatBatch, INTEGRATION_RULES, integrationPoints, oneOf, positiveInt, type IntegrationRule } from '../math.js';
import { layerShape4, needsGraph, neuronIndices, neuronMask, resolveLayer, splitAt, type NeuronSpec } from './common.js';

export interface NeuronIntegratedGradientsOptions {
  layer: string | null;
  neuron: NeuronSpec;
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  steps: number;
  rule: IntegrationRule;
  internalBatchSize: number;
}

registerMethod<NeuronIntegratedGradientsOptions>({
  name: 'neuron-integrated-gradients',
  family: 'attribution',
  description: 'integrated gradients of one unit of a layer w.r.t. the input (Captum NeuronIntegratedGradients)',
  signed: true,
  perImageExtras: ['neuron', 'completenessError'],
  parallel: 'images',
  perImageOptions: ['baseline'],
  defaults: { layer: null, neuron: 'max', baseline: 'zeros', baselineValue: 0, blurSigma: 5, steps: 50, rule: 'gauss-legendre', internalBatchSize: 128 },
  requires: needsGraph,
  async run(classifier, x, _targets, options, context) {
    const layer = resolveLayer(classifier, options.layer);
    const [h, w, c] = layerShape4(classifier, layer);
    const size = h * w * c;
    const split = splitAt(classifier, layer);
    const neuron = await neuronIndices(classifier, layer, x, options.neuron, split);
    const rule = oneOf('rule', options.rule, INTEGRATION_RULES);
    const { alphas, weights } = integrationPoints(rule, positiveInt('steps', options.steps, 2));
    const rows = batchSizeFor(classifier, 'gradient', positiveInt('internalBatchSize', options.internalBatchSize));
    const baseline = makeBaseline(classifier, x, options.baseline, options.baselineValue, options.blurSigma);
    const [n, H, W, C] = x.shape;
    const g = Math.min(n, rows);
    const per = Math.max(1, Math.floor(rows / g));
    const parts: tf.Tensor4D[] = [];
    const completenessError: number[] = [];
    const totalChunks = Math.ceil(n / g) * Math.ceil(alphas.length / per);
    let done = 0;
    try {
      for (let i0 = 0; i0 < n; i0 += g) {
        const gi = Math.min(g, n - i0);
        const xs = tf.slice(x, i0, gi);
        const bs = tf.slice(baseline, i0, gi);
        const mask = neuronMask(neuron.slice(i0, i0 + gi), size);
        let acc: tf.Tensor | undefined;
        for (let k0 = 0; k0 < alphas.length; k0 += per) {
          const sk = Math.min(per, alphas.length - k0);
          const next = tf.tidy(() => {
            const al = tf.reshape(tf.tensor1d(alphas.slice(k0, k0 + sk)), [sk, 1, 1, 1, 1]);
            const pts = tf.reshape(tf.add(tf.expandDims(bs, 0), tf.mul(al, tf.expandDims(tf.sub(xs, bs), 0))), [sk * gi, H, W, C]);
            const m = tf.tile(mask, [sk, 1]);
            const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.reshape(split.head(v), [sk * gi, size]), m)))(pts);
            const wt = tf.reshape(tf.tensor1d(weights.slice(k0, k0 + sk)), [sk, 1, 1, 1, 1]);
            const summed = tf.sum(tf.mul(tf.reshape(grad, [sk, gi, H, W, C]), wt), 0);
            return acc ? tf.add(acc, summed) : summed;
          });
          acc?.dispose();
          acc = next;
          done++;
          context.progress?.(done / totalChunks, 'neuron integrated gradients');
        }
        const [attr, err] = tf.tidy(() => {
          const attr = tf.mul(tf.sub(xs, bs), acc!) as tf.Tensor4D;
          const unit = (v: tf.Tensor4D) => tf.sum(tf.mul(tf.reshape(split.head(v), [gi, size]), mask), 1);
          return [attr, tf.sub(tf.sum(attr, [1, 2, 3]), tf.sub(unit(xs), unit(bs)))];
        });
        completenessError.push(...((await err.data()) as Float32Array));
        tf.dispose([xs, bs, mask, acc!, err]);
        parts.push(attr as tf.Tensor4D);
      }
    } catch (e) {
      tf.dispose(parts);
      throw e;
    } finally {
      baseline.dispose();
    }
    const attribution = concatBatch(parts);
    return { attribution, extras: { layer, neuron, completenessError } };
  },
});
