/**
 * `neuron-gradient` (Captum NeuronGradient): ∂A_u/∂x, the input gradient of one unit u of a layer
 * (any named node), instead of a class logit. The unit: a flat index into the layer's per-image
 * activation (row-major h, w, c), [h, w, c] coordinates, or 'max' (each image's most active unit).
 * The target class plays no role. extras.neuron[i] = the flat index explained for image i.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../../core/registry.js';
import { batchSizeFor } from '../../engine/memory.js';
import { concatBatch, chunks, positiveInt } from '../math.js';
import { layerShape4, needsGraph, neuronIndices, neuronMask, resolveLayer, splitAt, type NeuronSpec } from './common.js';

export interface NeuronGradientOptions {
  layer: string | null;
  neuron: NeuronSpec;
  batchSize: number;
}

registerMethod<NeuronGradientOptions>({
  name: 'neuron-gradient',
  family: 'attribution',
  description: 'input gradient of one unit of a layer (Captum NeuronGradient)',
  signed: true,
  perImageExtras: ['neuron'],
  parallel: 'images',
  defaults: { layer: null, neuron: 'max', batchSize: 64 },
  requires: needsGraph,
  async run(classifier, x, _targets, options) {
    const layer = resolveLayer(classifier, options.layer);
    const [h, w, c] = layerShape4(classifier, layer);
    const split = splitAt(classifier, layer);
    const neuron = await neuronIndices(classifier, layer, x, options.neuron, split);
    const parts: tf.Tensor4D[] = [];
    for (const [s, cnt] of chunks(x.shape[0], batchSizeFor(classifier, 'gradient', positiveInt('batchSize', options.batchSize)))) {
      parts.push(tf.tidy(() => {
        const m = neuronMask(neuron.slice(s, s + cnt), h * w * c);
        return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.reshape(split.head(v), [cnt, h * w * c]), m)))(tf.slice(x, s, cnt)) as tf.Tensor4D;
      }));
    }
    const attribution = concatBatch(parts);
    return { attribution, extras: { layer, neuron } };
  },
});
