/**
 * `guided-backprop` (Springenberg et al. 2015; seed 004): backpropagation where every rectifier passes
 * back relu(dy)·1[0 < z < max] — only positive gradients through units in their linear range
 * (Captum GuidedBackprop; max = ∞ for ReLU, 6 for ReLU6, a clipped ReLU's max_value; fused
 * `activation: 'relu'` included).
 * The modified backward is installed through a NodeOverride on the ReLU activation nodes for this
 * call only; no global gradient registry is touched.
 */
import { registerMethod } from '../core/registry.js';
import { batchedGradient, modifiedReluOverride, positiveInt } from './math.js';

registerMethod({
  name: 'guided-backprop',
  family: 'attribution',
  description: 'guided backpropagation: rectifier backward relu(dy)·1[0<z<max] (Springenberg et al. 2015)',
  signed: true,
  defaults: { batchSize: 64 },
  requires: (c) => (c.graph ? undefined : 'needs a layered model (its ReLU nodes are modified)'),
  run(classifier, x, targets, options) {
    const override = modifiedReluOverride('guided');
    return { attribution: batchedGradient(classifier, x, targets, positiveInt('batchSize', options.batchSize), { override }) };
  },
});
