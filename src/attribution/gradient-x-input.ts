/** `gradient-x-input`: x ⊙ ∂f_c/∂x, the simple Taylor decomposition (seed 003 Eq. 4.6). */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { inputGradient } from '../core/scores.js';

registerMethod({
  name: 'gradient-x-input',
  family: 'attribution',
  description: 'input times gradient x ⊙ ∂f_c/∂x (simple Taylor decomposition, seed 003 Eq. 4.6)',
  signed: true,
  defaults: {},
  run(classifier, x, targets) {
    const { grad, scores } = inputGradient(classifier, x, targets);
    scores.dispose();
    const attribution = tf.mul(x, grad) as tf.Tensor4D;
    grad.dispose();
    return { attribution };
  },
});
