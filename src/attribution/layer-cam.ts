/**
 * `layer-cam` (Jiang et al. 2021; tf-keras-vis Layercam): every position of every channel weighted by
 * its own positive gradient, cam = relu(Σ_c relu(∂y/∂A_c) ⊙ A_c), upsampled like grad-cam. Unlike
 * Grad-CAM's channel-wide weights it keeps fine detail, so it also works on early layers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { camLayer, camResult, needsConvGraph, perChunkAtLayer } from './cam.js';
import { oneOf, positiveInt } from './math.js';

export interface LayerCamOptions {
  layer: string | null;
  upsample: 'bilinear' | 'nearest';
  batchSize: number;
}

registerMethod<LayerCamOptions>({
  name: 'layer-cam',
  family: 'attribution',
  description: 'Layer-CAM: activations weighted by their own positive gradients, any conv layer (Jiang et al. 2021)',
  signed: true,
  perImageExtras: ['raw'],
  parallel: 'images',
  defaults: { layer: null, upsample: 'bilinear', batchSize: 64 },
  requires: needsConvGraph,
  run(classifier, x, targets, options) {
    const layer = camLayer(classifier, options.layer);
    const upsample = oneOf('upsample', options.upsample, ['bilinear', 'nearest'] as const);
    const raw = perChunkAtLayer(classifier, x, targets, layer, positiveInt('batchSize', options.batchSize), true, (a, g) =>
      tf.relu(tf.sum(tf.mul(tf.relu(g!), a), 3, true)) as tf.Tensor4D,
    );
    return camResult(raw, x, layer, upsample);
  },
});
