/**
 * `grad-cam-plus-plus` (Chattopadhay et al. 2018), as tf-keras-vis' GradcamPlusPlus: with g = ∂y/∂A
 * at the layer, α = g² / (2g² + g³ · Σ_{h,w} A) (1 in the denominator where g = 0), α normalised to
 * sum 1 over each channel's positions, w_c = Σ_{h,w} α · relu(g), cam = relu(Σ_c w_c A_c), upsampled
 * like grad-cam. tf-keras-vis multiplies every derivative by exp(y); α is unchanged by it and the
 * weights only by that positive per-image factor (which its normalize_cam removes), so it is left
 * out here and the map has Grad-CAM's scale: where ∂y/∂A is spatially constant and ≥ 0 (a global
 * average pooling head with non-negative weights), Grad-CAM++ equals Grad-CAM.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { camLayer, camResult, needsConvGraph, perChunkAtLayer } from './cam.js';
import { oneOf, positiveInt } from './math.js';

export interface GradCamPlusPlusOptions {
  /** Node name of a spatial layer; null: Grad-CAM's default (the last feature map every path passes through). */
  layer: string | null;
  upsample: 'bilinear' | 'nearest';
  batchSize: number;
}

registerMethod<GradCamPlusPlusOptions>({
  name: 'grad-cam-plus-plus',
  family: 'attribution',
  description: 'Grad-CAM++: positive gradients weighted by second/third-order terms (tf-keras-vis GradcamPlusPlus)',
  signed: true,
  perImageExtras: ['raw'],
  parallel: 'images',
  defaults: { layer: null, upsample: 'bilinear', batchSize: 64 },
  requires: needsConvGraph,
  run(classifier, x, targets, options) {
    const layer = camLayer(classifier, options.layer);
    const upsample = oneOf('upsample', options.upsample, ['bilinear', 'nearest'] as const);
    const raw = perChunkAtLayer(classifier, x, targets, layer, positiveInt('batchSize', options.batchSize), true, (a, g) => {
      const g2 = tf.square(g!);
      const g3 = tf.mul(g2, g!);
      const sumA = tf.sum(a, [1, 2], true);
      const denom = tf.add(tf.add(tf.mul(g2, 2), tf.mul(g3, sumA)), tf.cast(tf.equal(g2, 0), 'float32'));
      const alpha = tf.div(g2, denom);
      const norm = tf.sum(alpha, [1, 2], true);
      const alphaN = tf.div(alpha, tf.add(norm, tf.cast(tf.equal(norm, 0), 'float32')));
      const w = tf.sum(tf.mul(alphaN, tf.relu(g!)), [1, 2], true);
      return tf.relu(tf.sum(tf.mul(w, a), 3, true)) as tf.Tensor4D;
    });
    return camResult(raw, x, layer, upsample);
  },
});
