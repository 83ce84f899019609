/**
 * `layer-gradient-x-activation` (Captum LayerGradientXActivation): A · ∂y/∂A at a layer, in the
 * layer's own NHWC layout. The network is split at the layer; paths bypassing it are computed from x
 * and held constant, so ∂y/∂A is the derivative through the layer's output only.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../../core/registry.js';
import { targetMask } from '../../core/target.js';
import { batchSizeFor } from '../../engine/memory.js';
import { concatBatch, chunks, positiveInt } from '../math.js';
import { layerShape4, needsGraph, resolveLayer, splitAt, to4D } from './common.js';

export interface LayerGradientXActivationOptions {
  /** Node name (classifier.layers()); null: the last feature map every path passes through (Grad-CAM's default). */
  layer: string | null;
  batchSize: number;
}

registerMethod<LayerGradientXActivationOptions>({
  name: 'layer-gradient-x-activation',
  family: 'attribution',
  description: 'activation × gradient of the target logit at a layer, in the layer\'s layout (Captum LayerGradientXActivation)',
  signed: true,
  perImageExtras: [],
  parallel: 'images',
  defaults: { layer: null, batchSize: 64 },
  requires: needsGraph,
  run(classifier, x, targets, options) {
    const layer = resolveLayer(classifier, options.layer);
    const shape = layerShape4(classifier, layer);
    const split = splitAt(classifier, layer);
    const parts: tf.Tensor4D[] = [];
    for (const [s, c] of chunks(x.shape[0], batchSizeFor(classifier, 'gradient', positiveInt('batchSize', options.batchSize)))) {
      parts.push(tf.tidy(() => {
        const xs = tf.slice(x, s, c);
        const a = split.head(xs);
        const mask = targetMask(targets.slice(s, s + c), classifier.numClasses);
        const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(split.tail(v, split.isCut ? undefined : xs), mask)))(a);
        return to4D(tf.mul(a, g), shape);
      }));
    }
    const attribution = concatBatch(parts);
    return { attribution, extras: { layer } };
  },
});
