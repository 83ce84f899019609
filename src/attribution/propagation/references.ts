/**
 * Conformance entries for the Zennit LRP reference maps (FORMAT.md §4): every Conv2D and Dense
 * layer gets the same rule, relevance starts at onehot · logit, ReLUs pass, max pooling routes to
 * the first maximum.
 */
import { registerReference, methodMap, type ReferenceFn } from '../../conformance/references.js';

const entries: Array<[string, ReferenceFn]> = [
  ['lrp_epsilon', (ctx) => methodMap(ctx, 'lrp', { rule: 'epsilon', epsilon: 1e-6 })],
  ['lrp_zplus', (ctx) => methodMap(ctx, 'lrp', { rule: 'zplus', stabilizer: 1e-6 })],
  ['lrp_alpha2beta1', (ctx) => methodMap(ctx, 'lrp', { rule: 'alpha-beta', alpha: 2, beta: 1, stabilizer: 1e-6 })],
];

function register(): void {
  for (const [name, fn] of entries) registerReference(name, fn);
}

try {
  register();
} catch (e) {
  // Import cycle (conformance/references → attribution → here) with the registry not yet
  // initialised: register once the module graph has finished evaluating.
  if (!(e instanceof ReferenceError)) throw e;
  queueMicrotask(register);
}
