/**
 * `guided-grad-cam` (Selvaraju et al. 2017; seed 004): guided backpropagation multiplied element-wise
 * by the upsampled Grad-CAM map (Captum GuidedGradCam, which upsamples with 'nearest' by default;
 * here bilinear by default like `grad-cam`, 'nearest' as an option).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { batchedGradient, modifiedReluOverride, oneOf, positiveInt } from './math.js';
import { gradCam, type GradCamOptions } from './grad-cam.js';

registerMethod<GradCamOptions>({
  name: 'guided-grad-cam',
  family: 'attribution',
  description: 'guided Grad-CAM: guided backprop × upsampled Grad-CAM (Selvaraju et al. 2017)',
  signed: true,
  defaults: { layer: null, relu: true, upsample: 'bilinear', batchSize: 64 },
  requires: (c) => (c.graph ? undefined : 'needs a layered model with a convolution layer'),
  run(classifier, x, targets, options) {
    const upsample = oneOf('upsample', options.upsample, ['bilinear', 'nearest'] as const);
    const batchSize = positiveInt('batchSize', options.batchSize);
    const { raw, map, layer } = gradCam(classifier, x, targets, { layer: options.layer, relu: options.relu, upsample, batchSize });
    const guided = batchedGradient(classifier, x, targets, batchSize, { override: modifiedReluOverride('guided') });
    const attribution = tf.mul(guided, map) as tf.Tensor4D;
    tf.dispose([guided, map]);
    return { attribution, extras: { raw, layer } };
  },
});
