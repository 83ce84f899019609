/** `sensitivity`: sensitivity analysis (∂f_c/∂x)², seed 003 Eq. 4.1 (Montavon et al.). */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { batchedGradient, positiveInt } from './math.js';

registerMethod({
  name: 'sensitivity',
  family: 'attribution',
  description: 'sensitivity analysis (∂f_c/∂x)² (seed 003 Eq. 4.1)',
  signed: false,
  defaults: { batchSize: 64 },
  run(classifier, x, targets, options) {
    const grad = batchedGradient(classifier, x, targets, positiveInt('batchSize', options.batchSize));
    const attribution = tf.square(grad) as tf.Tensor4D;
    grad.dispose();
    return { attribution };
  },
});
