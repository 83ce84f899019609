/**
 * `layer-conductance` (Dhamdhere et al. 2018; Captum LayerConductance): with the n + 1 points
 * x_k = b + α_k (x − b) of `rule` (Captum evaluates steps + 1 points; Gauss–Legendre by default)
 * and A_k = act(x_k), cond = Σ_{k=0}^{n−1} (A_{k+1} − A_k) · ∂y/∂A(x_k): the flow of the output
 * change through each unit of the layer along the input path (left-point gradients, no quadrature
 * weights). Result in the layer's NHWC layout.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../../core/registry.js';
import { targetMask } from '../../core/target.js';
import { batchSizeFor } from '../../engine/memory.js';
import { makeBaseline, type BaselineSpec } from '../integrated-gradients.js';
import { concatBatch, INTEGRATION_RULES, integrationPoints, oneOf, positiveInt, type IntegrationRule } from '../math.js';
import { layerShape4, needsGraph, resolveLayer, splitAt, to4D } from './common.js';

export interface LayerConductanceOptions {
  layer: string | null;
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  steps: number;
  rule: IntegrationRule;
  /** Path points per gradient call, at most (fewer when the memory budget says so). */
  internalBatchSize: number;
}

registerMethod<LayerConductanceOptions>({
  name: 'layer-conductance',
  family: 'attribution',
  description: 'conductance of a layer\'s units along the input path (Captum LayerConductance)',
  signed: true,
  perImageExtras: [],
  parallel: 'images',
  perImageOptions: ['baseline'],
  defaults: { layer: null, baseline: 'zeros', baselineValue: 0, blurSigma: 5, steps: 50, rule: 'gauss-legendre', internalBatchSize: 128 },
  requires: needsGraph,
  async run(classifier, x, targets, options, context) {
    const layer = resolveLayer(classifier, options.layer);
    const shape = layerShape4(classifier, layer);
    const split = splitAt(classifier, layer);
    const rule = oneOf('rule', options.rule, INTEGRATION_RULES);
    const steps = positiveInt('steps', options.steps, 1);
    const { alphas } = integrationPoints(rule, steps + 1);
    const rows = batchSizeFor(classifier, 'gradient', positiveInt('internalBatchSize', options.internalBatchSize));
    const baseline = makeBaseline(classifier, x, options.baseline, options.baselineValue, options.blurSigma);
    const [n, h, w, c] = x.shape;
    const g = Math.min(n, rows);
    // a block of sk gradient points needs sk + 1 activations
    const per = Math.max(1, Math.floor(rows / g) - 1);
    const parts: tf.Tensor4D[] = [];
    const totalChunks = Math.ceil(n / g) * Math.ceil(steps / per);
    let done = 0;
    try {
      for (let i0 = 0; i0 < n; i0 += g) {
        const gi = Math.min(g, n - i0);
        const xs = tf.slice(x, i0, gi);
        const bs = tf.slice(baseline, i0, gi);
        const mask = targetMask(targets.slice(i0, i0 + gi), classifier.numClasses);
        let acc: tf.Tensor | undefined;
        for (let k0 = 0; k0 < steps; k0 += per) {
          const sk = Math.min(per, steps - k0);
          const next = tf.tidy(() => {
            // points k0 … k0 + sk (sk + 1 of them), image-minor
            const al = tf.reshape(tf.tensor1d(alphas.slice(k0, k0 + sk + 1)), [sk + 1, 1, 1, 1, 1]);
            const pts = tf.reshape(tf.add(tf.expandDims(bs, 0), tf.mul(al, tf.expandDims(tf.sub(xs, bs), 0))), [(sk + 1) * gi, h, w, c]) as tf.Tensor4D;
            const act = split.head(pts);
            const inner = act.shape.slice(1);
            const left = tf.slice(act, 0, sk * gi);
            const right = tf.slice(act, gi, sk * gi);
            const xl = split.isCut ? undefined : tf.slice(pts, 0, sk * gi);
            const m = tf.tile(mask, [sk, 1]);
            const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(split.tail(v, xl), m)))(left);
            const summed = tf.sum(tf.reshape(tf.mul(tf.sub(right, left), grad), [sk, gi, ...inner]), 0);
            return acc ? tf.add(acc, summed) : summed;
          });
          acc?.dispose();
          acc = next;
          done++;
          context.progress?.(done / totalChunks, 'layer conductance');
        }
        parts.push(tf.tidy(() => to4D(acc!, shape)));
        tf.dispose([xs, bs, mask, acc!]);
      }
    } catch (e) {
      tf.dispose(parts);
      throw e;
    } finally {
      baseline.dispose();
    }
    const attribution = concatBatch(parts);
    return { attribution, extras: { layer } };
  },
});
