/**
 * `deconvnet` (Zeiler & Fergus 2014; seed 004): backpropagation where every rectifier (ReLU,
 * ReLU6, clipped ReLU, fused `activation: 'relu'`) passes back relu(dy), ignoring both forward masks
 * (Captum Deconvolution). Scoped to the call via a NodeOverride.
 */
import { registerMethod } from '../core/registry.js';
import { batchedGradient, modifiedReluOverride, positiveInt } from './math.js';

registerMethod({
  name: 'deconvnet',
  family: 'attribution',
  description: 'deconvnet: rectifier backward relu(dy), forward masks ignored (Zeiler & Fergus 2014)',
  signed: true,
  defaults: { batchSize: 64 },
  requires: (c) => (c.graph ? undefined : 'needs a layered model (its ReLU nodes are modified)'),
  run(classifier, x, targets, options) {
    const override = modifiedReluOverride('deconvnet');
    return { attribution: batchedGradient(classifier, x, targets, positiveInt('batchSize', options.batchSize), { override }) };
  },
});
