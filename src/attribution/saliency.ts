/**
 * `saliency`: |∂f_c/∂x| (Simonyan et al. 2014; Captum Saliency with abs=True). With
 * channels 'max' (default) the map is the maximum over colour channels, repeated on every channel so
 * the attribution keeps the input's shape; 'keep' returns |∂f_c/∂x| per channel (Captum's output).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { batchedGradient, oneOf, positiveInt } from './math.js';

registerMethod({
  name: 'saliency',
  family: 'attribution',
  description: 'absolute input gradient |∂f_c/∂x|, max over channels (Simonyan et al. 2014)',
  signed: false,
  defaults: { channels: 'max' as 'max' | 'keep', batchSize: 64 },
  run(classifier, x, targets, options) {
    const channels = oneOf('channels', options.channels, ['max', 'keep'] as const);
    const grad = batchedGradient(classifier, x, targets, positiveInt('batchSize', options.batchSize));
    const attribution = tf.tidy(() => {
      const a = tf.abs(grad);
      if (channels === 'keep' || x.shape[3] === 1) return a as tf.Tensor4D;
      return tf.mul(tf.max(a, 3, true), tf.ones([1, 1, 1, x.shape[3]])) as tf.Tensor4D;
    });
    grad.dispose();
    return { attribution };
  },
});
