/**
 * `guided-grad-cam` (Selvaraju et al. 2017; seed 004): guided backpropagation multiplied element-wise
 * by the upsampled Grad-CAM map (Captum GuidedGradCam, which upsamples with 'nearest' by default;
 * here bilinear by default like `grad-cam`, 'nearest' as an option).
 * One forward pass serves both parts: the guided pass captures the layer's activation, from which
 * Grad-CAM runs only the tail (the rectifier override changes backward passes, never values), instead
 * of a second forward pass through the head.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { targetMask } from '../core/target.js';
import { batchSizeFor } from '../engine/memory.js';
import { chunks, concatBatch, modifiedReluOverride, oneOf, positiveInt } from './math.js';
import { camFromActivation, camLayer, upsampleCam, type GradCamOptions } from './grad-cam.js';

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
    const { layer, split } = camLayer(classifier, options.layer);
    const override = modifiedReluOverride('guided');
    const [n, H, W] = x.shape;
    const guided: tf.Tensor4D[] = [];
    const raws: tf.Tensor4D[] = [];
    for (const [s, c] of chunks(n, batchSizeFor(classifier, 'gradient', batchSize, { shape: x.shape.slice(1) }))) {
      const xs = c === n ? x : (tf.slice(x, [s, 0, 0, 0], [c, -1, -1, -1]) as tf.Tensor4D);
      const mask = targetMask(targets.slice(s, s + c), classifier.numClasses);
      let activation: tf.Tensor4D | undefined;
      guided.push(
        tf.tidy(() =>
          tf.grad((v: tf.Tensor) => {
            const { logits, captured } = classifier.forward(v, { override, capture: [layer] });
            activation = tf.keep(captured.get(layer) as tf.Tensor4D);
            return tf.sum(tf.mul(logits, mask));
          })(xs) as tf.Tensor4D,
        ),
      );
      raws.push(camFromActivation(split, activation!, xs, mask, options.relu !== false));
      tf.dispose([activation!, mask]);
      if (xs !== x) xs.dispose();
    }
    const raw = concatBatch(raws);
    const g = concatBatch(guided);
    const attribution = tf.tidy(() => tf.mul(g, upsampleCam(raw, [H, W], upsample)) as tf.Tensor4D);
    g.dispose();
    return { attribution, extras: { raw, layer } };
  },
});
