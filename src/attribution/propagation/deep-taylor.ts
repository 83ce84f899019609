/**
 * `deep-taylor` (seed 002): relevance set to the target output, redistributed with the z⁺ rule
 * through every hidden layer and with the z^B rule at the bounded input — bounds taken from the
 * classifier's input domain after its own offset/scale/inversion (firstLayerBounds). Biases are left
 * out of the z⁺ denominators as in the seed, so Σ relevance = the target logit.
 * Works on MLPs and CNNs (max pooling routes relevance to the window's winner).
 *
 * Deep Taylor assumes rectified hidden units. A hidden layer with no rectifier after it (MobileNetV2's
 * linear projections, a residual branch's last conv) is outside that assumption; Glasswing reads such a
 * unit as z = max(0, z) − max(0, −z), two rectified units of which one is active, and applies z⁺ to the
 * active one (rule zplus-signed, option unrectified; 'as-composite' keeps plain z⁺). The bias-free z
 * rule (the Taylor root along x for a linear unit) would conserve too, but explodes where Σ x·w ≈ 0 and
 * a bias keeps the unit active (|R| up to 1e8 on a MobileNetV2-shaped model with its BatchNorm shifts).
 * An explicit ZeroPadding2D before the z^B layer is that layer's own padding (option explicitPadding).
 */
import { registerMethod } from '../../core/registry.js';
import { OptionError } from '../../core/errors.js';
import { defineComposite, withLayerRules } from './composites.js';
import { ruleByName, zPlusRule } from './rules.js';
import { propagate } from './propagate.js';
import { COMMON_DEFAULTS, propagationConfig, propagationExtras, requiresGraph, ruleOptions, withUnrectified, type CommonPropagationOptions } from './options.js';

export interface DeepTaylorOptions extends CommonPropagationOptions {
  /** Rule of the first layer: 'zb' (bounded input, default), 'w2' (unbounded input), 'zplus' or 'flat'. */
  firstRule: string;
}

registerMethod<DeepTaylorOptions>({
  name: 'deep-taylor',
  family: 'propagation',
  description: 'Deep Taylor decomposition (seed 002): z⁺ rule in hidden layers, z^B at the bounded input',
  signed: true,
  defaults: { ...COMMON_DEFAULTS, bias: false, firstRule: 'zb' },
  requires: requiresGraph,
  perImageExtras: ['conservationError', 'relevanceSum', 'outputRelevance'],
  parallel: 'images',
  run(classifier, x, targets, options) {
    if (!['zb', 'w2', 'zplus', 'flat'].includes(options.firstRule)) {
      throw new OptionError(`expected option firstRule zb, w2, zplus or flat; got "${options.firstRule}"`);
    }
    const ro = ruleOptions(options);
    let composite = withUnrectified(defineComposite('deep-taylor', [
      { first: true, rule: ruleByName(options.firstRule, ro) },
      { rule: zPlusRule({ stabilizer: options.stabilizer, bias: options.bias ?? false }) },
    ]), options);
    if (options.layerRules) {
      composite = withLayerRules(composite, Object.fromEntries(Object.entries(options.layerRules).map(([k, v]) => [k, ruleByName(v, ro)])));
    }
    const r = propagate(classifier, x, targets, propagationConfig(composite, options));
    return { attribution: r.relevance, extras: propagationExtras(r) };
  },
});
