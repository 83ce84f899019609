/** `gradient`: the signed input gradient ∂f_c/∂x of the target logit (Captum Saliency(abs=False)). */
import { registerMethod } from '../core/registry.js';
import { inputGradient } from '../core/scores.js';

registerMethod({
  name: 'gradient',
  family: 'attribution',
  description: 'signed input gradient ∂f_c/∂x of the target logit',
  signed: true,
  defaults: {},
  run(classifier, x, targets) {
    const { grad, scores } = inputGradient(classifier, x, targets);
    scores.dispose();
    return { attribution: grad };
  },
});
