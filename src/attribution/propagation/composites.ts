/**
 * Composites: which rule each linear layer (Dense, Conv2D, DepthwiseConv2D) gets — by kind, by
 * position (first layer, last layer) or by name. The first matching entry wins, as in Zennit's
 * layer-map composites.
 *
 * Built in (names as accepted by the `lrp` method's `composite` option):
 *   lrp-0                      LRP-0 everywhere
 *   epsilon                    ε everywhere
 *   epsilon-plus               z⁺ for convolutions, ε for dense layers
 *   epsilon-plus-flat          flat for the first layer, then as epsilon-plus (Zennit EpsilonPlusFlat)
 *   epsilon-alpha2-beta1       αβ(2,1) for convolutions, ε for dense layers
 *   epsilon-alpha2-beta1-flat  flat for the first layer, then as epsilon-alpha2-beta1
 *   epsilon-gamma-box          z^B for the first layer, γ for convolutions, ε for dense layers
 *   deep-taylor                z^B for the first layer, z⁺ (bias excluded) everywhere else (seed 002)
 *   alpha2-beta1               z^B for the first layer, αβ(2,1) everywhere else
 */
import type { GraphNode } from '../../core/graph.js';
import { OptionError } from '../../core/errors.js';
import {
  alphaBetaRule, epsilonRule, flatRule, gammaRule, lrp0Rule, signedZPlusRule, zBoxRule, zPlusRule, type Rule, type RuleOptions,
} from './rules.js';

export interface LayerContext {
  node: GraphNode;
  /** 'conv2d' also for depthwise convolutions. */
  kind: 'dense' | 'conv2d';
  /** No other linear layer lies between this one and the input. */
  isFirst: boolean;
  /** No other linear layer lies between this one and the logits. */
  isLast: boolean;
  /**
   * Its output reaches a rectifier (through BatchNorm/identity only), so relevance arrives only on
   * active units (rectifiedLayers). False for MobileNetV2's linear projections, a residual branch's
   * last conv, a projection shortcut, the logit layer.
   */
  rectified: boolean;
  /** Position among the linear layers, in execution order. */
  index: number;
}

export interface Composite {
  name: string;
  description?: string;
  /** The rule of one linear layer; undefined means "the fallback rule" (ε). */
  ruleFor(layer: LayerContext): Rule | undefined;
}

export interface CompositeEntry {
  /** Layer kinds the entry applies to; default all. */
  kinds?: Array<'dense' | 'conv2d'>;
  /** Only the first / only the last linear layer. */
  first?: boolean;
  last?: boolean;
  /** Node or Keras layer names (exact) or a pattern. */
  names?: string[] | RegExp;
  rule: Rule;
}

function matches(e: CompositeEntry, l: LayerContext): boolean {
  if (e.kinds && !e.kinds.includes(l.kind)) return false;
  if (e.first !== undefined && e.first !== l.isFirst) return false;
  if (e.last !== undefined && e.last !== l.isLast) return false;
  if (e.names) {
    const ns = [l.node.name, l.node.layerName];
    if (e.names instanceof RegExp) {
      const re = e.names;
      if (!ns.some((n) => re.test(n))) return false;
    } else if (!ns.some((n) => (e.names as string[]).includes(n))) return false;
  }
  return true;
}

/** A composite from a list of entries; the first entry that matches a layer gives its rule. */
export function defineComposite(name: string, entries: CompositeEntry[], description?: string): Composite {
  return { name, description, ruleFor: (l) => entries.find((e) => matches(e, l))?.rule };
}

/** Same rule for every linear layer. */
export function uniformComposite(rule: Rule): Composite {
  return defineComposite(rule.name, [{ rule }], `${rule.name} for every layer`);
}

/** Rules by layer name first, then the base composite. */
export function withLayerRules(base: Composite, byName: Record<string, Rule>): Composite {
  return {
    name: `${base.name}+names`,
    description: base.description,
    ruleFor: (l) => byName[l.node.name] ?? byName[l.node.layerName] ?? base.ruleFor(l),
  };
}

/**
 * The base composite, except that a hidden layer whose output reaches no rectifier gets another rule
 * wherever the base gives it z⁺. z⁺ places a unit's relevance by its positive contributions, which is
 * right behind a ReLU (relevance arrives only on active units); on an unrectified unit (a linear
 * projection, a residual branch's last conv) relevance arrives on units of either sign, and a unit
 * with R ≠ 0 but no positive contribution has nowhere to send it — it is lost (half of the logit on a
 * bias-free MobileNetV2 at 96²). `replacement`:
 *   'zplus-signed' (default): signedZPlusRule with the base z⁺'s stabiliser and bias setting — z⁺ on
 *                  the active half of z = max(0, z) − max(0, −z); stays in the z⁺ family, conserves;
 *   a Rule:        that rule (e.g. epsilonRule()).
 * The last linear layer (the logits) keeps the base's rule: its relevance is the target logit itself.
 * αβ layers are left alone: αβ already splits both signs and is not meant to conserve.
 */
export function rectifierAware(base: Composite, replacement: 'zplus-signed' | Rule = 'zplus-signed'): Composite {
  const label = replacement === 'zplus-signed' ? replacement : replacement.name;
  return {
    name: `${base.name}/unrectified-${label}`,
    description: `${base.description ?? base.name}; ${label} where z⁺ meets an unrectified hidden layer`,
    ruleFor: (l) => {
      const r = base.ruleFor(l);
      if (!r || l.rectified || l.isLast || r.name !== 'zplus') return r;
      if (replacement !== 'zplus-signed') return replacement;
      return signedZPlusRule({ stabilizer: r.params.stabilizer as number | undefined, bias: r.params.bias as boolean | undefined });
    },
  };
}

export const COMPOSITE_NAMES = [
  'lrp-0', 'epsilon', 'epsilon-plus', 'epsilon-plus-flat', 'epsilon-alpha2-beta1', 'epsilon-alpha2-beta1-flat',
  'epsilon-gamma-box', 'deep-taylor', 'alpha2-beta1',
] as const;

/** A built-in composite by name, its rules made with these parameters. */
export function compositeByName(name: string, opts: RuleOptions = {}): Composite {
  const st = { stabilizer: opts.stabilizer, bias: opts.bias };
  const eps = () => epsilonRule(opts.epsilon ?? 1e-6, { bias: opts.bias });
  const conv: Array<'conv2d'> = ['conv2d'];
  const dense: Array<'dense'> = ['dense'];
  switch (name) {
    case 'lrp-0':
      return defineComposite(name, [{ rule: lrp0Rule({ bias: opts.bias }) }], 'LRP-0 for every layer');
    case 'epsilon':
      return defineComposite(name, [{ rule: eps() }], 'ε for every layer');
    case 'epsilon-plus':
      return defineComposite(name, [{ kinds: conv, rule: zPlusRule(st) }, { kinds: dense, rule: eps() }], 'z⁺ for convolutions, ε for dense layers');
    case 'epsilon-plus-flat':
      return defineComposite(
        name,
        [{ first: true, rule: flatRule(st) }, { kinds: conv, rule: zPlusRule(st) }, { kinds: dense, rule: eps() }],
        'flat first layer, z⁺ for convolutions, ε for dense layers (Zennit EpsilonPlusFlat)',
      );
    case 'epsilon-alpha2-beta1':
      return defineComposite(name, [{ kinds: conv, rule: alphaBetaRule(2, 1, st) }, { kinds: dense, rule: eps() }], 'αβ(2,1) for convolutions, ε for dense layers');
    case 'epsilon-alpha2-beta1-flat':
      return defineComposite(
        name,
        [{ first: true, rule: flatRule(st) }, { kinds: conv, rule: alphaBetaRule(2, 1, st) }, { kinds: dense, rule: eps() }],
        'flat first layer, αβ(2,1) for convolutions, ε for dense layers',
      );
    case 'epsilon-gamma-box':
      return defineComposite(
        name,
        [{ first: true, rule: zBoxRule(st) }, { kinds: conv, rule: gammaRule(opts.gamma ?? 0.25, st) }, { kinds: dense, rule: eps() }],
        'z^B first layer, γ for convolutions, ε for dense layers (Zennit EpsilonGammaBox)',
      );
    case 'deep-taylor':
      return defineComposite(
        name,
        [{ first: true, rule: zBoxRule(st) }, { rule: zPlusRule({ stabilizer: opts.stabilizer, bias: opts.bias ?? false }) }],
        'Deep Taylor (seed 002): z^B for the first layer, z⁺ everywhere else',
      );
    case 'alpha2-beta1':
      return defineComposite(
        name,
        [{ first: true, rule: zBoxRule(st) }, { rule: alphaBetaRule(opts.alpha ?? 2, opts.beta ?? 1, st) }],
        'z^B for the first layer, αβ(2,1) everywhere else',
      );
    default:
      throw new OptionError(`expected a composite name (${COMPOSITE_NAMES.join(', ')}); got "${name}"`);
  }
}
