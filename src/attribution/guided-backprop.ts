/**
 * `guided-backprop` (Springenberg et al. 2015; seed 004): backpropagation where every ReLU passes
 * back relu(dy)·1[z > 0] — only positive gradients through active units (Captum GuidedBackprop).
 * The modified backward is installed through a NodeOverride on the ReLU activation nodes for this
 * call only; no global gradient registry is touched.
 */
import { registerMethod } from '../core/registry.js';
import { batchedGradient, modifiedReluOverride, positiveInt } from './math.js';

registerMethod({
  name: 'guided-backprop',
  family: 'attribution',
  description: 'guided backpropagation: ReLU backward relu(dy)·1[z>0] (Springenberg et al. 2015)',
  signed: true,
  defaults: { batchSize: 64 },
  requires: (c) => (c.graph ? undefined : 'needs a layered model (its ReLU nodes are modified)'),
  run(classifier, x, targets, options) {
    const override = modifiedReluOverride('guided');
    return { attribution: batchedGradient(classifier, x, targets, positiveInt('batchSize', options.batchSize), { override }) };
  },
});
