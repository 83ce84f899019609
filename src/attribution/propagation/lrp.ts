/**
 * `lrp`: layer-wise relevance propagation (seed 003 §4.3) with a rule for every layer (`rule`) or a
 * composite that assigns rules per layer (`composite`, default 'epsilon-plus-flat'). By default the
 * composite is made rectifier-aware (`unrectified: 'zplus-signed'`) and an explicit ZeroPadding2D in
 * front of a flat / w² / z^B layer is treated as that layer's padding (`explicitPadding: 'implicit'`),
 * so the z⁺ composites conserve on MobileNetV2/ResNet-style graphs; `'as-composite'` and `'input'`
 * reproduce Zennit on the graph as written (docs/propagation.md, Composites).
 */
import { registerMethod } from '../../core/registry.js';
import type { Composite } from './composites.js';
import type { Rule } from './rules.js';
import { propagate } from './propagate.js';
import { COMMON_DEFAULTS, propagationConfig, propagationExtras, requiresGraph, resolveComposite, type CommonPropagationOptions } from './options.js';

export interface LrpOptions extends CommonPropagationOptions {
  /** One rule for every linear layer: lrp-0, epsilon, gamma, alpha-beta, zplus, zb, w2, flat. Overrides composite. */
  rule: string | Rule | undefined;
  /** Built-in composite name or a Composite; default 'epsilon-plus-flat'. */
  composite: string | Composite;
}

registerMethod<LrpOptions>({
  name: 'lrp',
  family: 'propagation',
  description: 'layer-wise relevance propagation: rules (lrp-0, ε, γ, αβ, z⁺, z^B, w², flat) per layer via a composite',
  signed: true,
  defaults: { ...COMMON_DEFAULTS, rule: undefined, composite: 'epsilon-plus-flat' },
  requires: requiresGraph,
  perImageExtras: ['conservationError', 'relevanceSum', 'outputRelevance'],
  parallel: 'images',
  run(classifier, x, targets, options) {
    const composite = resolveComposite(options.composite, options.rule, options);
    const r = propagate(classifier, x, targets, propagationConfig(composite, options));
    return { attribution: r.relevance, extras: { ...propagationExtras(r), composite: composite.name } };
  },
});
