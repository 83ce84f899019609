/** Option parsing shared by the `lrp` and `deep-taylor` methods. */
import { OptionError } from '../../core/errors.js';
import type { Classifier } from '../../core/classifier.js';
import { compositeByName, rectifierAware, uniformComposite, withLayerRules, type Composite } from './composites.js';
import { epsilonRule, ruleByName, type Rule, type RuleOptions } from './rules.js';
import type { ExplicitPadding, MaxPoolMode, PropagationConfig, PropagationResult } from './propagate.js';

/** What the z⁺ layers of a composite become where their output reaches no rectifier (rectifierAware). */
export type UnrectifiedMode = 'zplus-signed' | 'epsilon' | 'as-composite';

export interface CommonPropagationOptions {
  epsilon: number;
  gamma: number;
  alpha: number;
  beta: number;
  stabilizer: number;
  /** Include biases in the rules' denominators (undefined: each rule's default). */
  bias: boolean | undefined;
  maxPool: MaxPoolMode;
  outputRelevance: 'logit' | 'one';
  canonize: boolean;
  /** z^B bounds in the first layer's input space; default from the classifier's domain and transform. */
  low: number | undefined;
  high: number | undefined;
  /** Rules by layer name, over the composite: { conv1: 'zb', fc2: 'epsilon' }. */
  layerRules: Record<string, string> | undefined;
  /**
   * Hidden layers whose output reaches no rectifier, where the composite says z⁺: 'zplus-signed'
   * (default; z⁺ on the active half of the unit, conserves), 'epsilon' (ε), or 'as-composite' (z⁺,
   * as Zennit applies its composites). See rectifierAware.
   */
  unrectified: UnrectifiedMode;
  /**
   * 'implicit' (default): an explicit ZeroPadding2D's border is the next layer's own zero padding for
   * flat, w² and z^B (no relevance, not counted — the map does not depend on how the padding is
   * written); 'input': the border counts as input and its relevance is lost (Zennit on the graph as written).
   */
  explicitPadding: ExplicitPadding;
}

export const COMMON_DEFAULTS: CommonPropagationOptions = {
  epsilon: 1e-6,
  gamma: 0.25,
  alpha: 2,
  beta: 1,
  stabilizer: 1e-6,
  bias: undefined,
  maxPool: 'winner',
  outputRelevance: 'logit',
  canonize: true,
  low: undefined,
  high: undefined,
  layerRules: undefined,
  unrectified: 'zplus-signed',
  explicitPadding: 'implicit',
};

export function ruleOptions(o: CommonPropagationOptions): RuleOptions {
  for (const k of ['epsilon', 'gamma', 'alpha', 'beta', 'stabilizer'] as const) {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k]) || o[k] < 0) {
      throw new OptionError(`expected option ${k} to be a finite number ≥ 0; got ${String(o[k])}`);
    }
  }
  return { epsilon: o.epsilon, gamma: o.gamma, alpha: o.alpha, beta: o.beta, stabilizer: o.stabilizer, bias: o.bias };
}

export function resolveComposite(spec: string | Composite | Rule | undefined, rule: string | Rule | undefined, o: CommonPropagationOptions): Composite {
  const ro = ruleOptions(o);
  let c: Composite;
  if (rule !== undefined && rule !== null && rule !== '') {
    c = uniformComposite(typeof rule === 'string' ? ruleByName(rule, ro) : rule);
  } else if (typeof spec === 'string') {
    c = withUnrectified(compositeByName(spec, ro), o);
  } else if (spec && 'ruleFor' in spec) {
    c = withUnrectified(spec, o);
  } else if (spec && 'reduce' in spec) {
    c = uniformComposite(spec);
  } else {
    throw new OptionError('expected option composite (a name or a Composite) or option rule; got neither');
  }
  if (o.layerRules) {
    const byName: Record<string, Rule> = {};
    for (const [k, v] of Object.entries(o.layerRules)) byName[k] = ruleByName(v, ro);
    c = withLayerRules(c, byName);
  }
  return c;
}

/**
 * The composite made rectifier-aware per option unrectified (ε with the options' epsilon and bias).
 * A single `rule` is taken literally and never passes through here.
 */
export function withUnrectified(c: Composite, o: CommonPropagationOptions): Composite {
  switch (o.unrectified) {
    case 'zplus-signed': return rectifierAware(c, 'zplus-signed');
    case 'epsilon': return rectifierAware(c, epsilonRule(o.epsilon, { bias: o.bias }));
    case 'as-composite': return c;
    default:
      throw new OptionError(`expected option unrectified "zplus-signed", "epsilon" or "as-composite"; got "${String(o.unrectified)}"`);
  }
}

export function propagationConfig(composite: Composite, o: CommonPropagationOptions): PropagationConfig {
  if (o.maxPool !== 'winner' && o.maxPool !== 'proportional') {
    throw new OptionError(`expected option maxPool "winner" or "proportional"; got "${String(o.maxPool)}"`);
  }
  if (o.outputRelevance !== 'logit' && o.outputRelevance !== 'one') {
    throw new OptionError(`expected option outputRelevance "logit" or "one"; got "${String(o.outputRelevance)}"`);
  }
  if ((o.low === undefined) !== (o.high === undefined) || (o.low !== undefined && !(o.low! < o.high!))) {
    throw new OptionError(`expected options low < high given together; got low=${String(o.low)}, high=${String(o.high)}`);
  }
  if (o.explicitPadding !== 'input' && o.explicitPadding !== 'implicit') {
    throw new OptionError(`expected option explicitPadding "input" or "implicit"; got "${String(o.explicitPadding)}"`);
  }
  return {
    composite,
    maxPool: o.maxPool,
    outputRelevance: o.outputRelevance,
    canonize: o.canonize,
    stabilizer: o.stabilizer,
    bounds: o.low !== undefined ? { low: o.low, high: o.high! } : undefined,
    explicitPadding: o.explicitPadding,
  };
}

export function requiresGraph(c: Classifier): string | undefined {
  return c.graph ? undefined : 'it needs a layered model (Classifier.fromModel), not a plain function';
}

/** Extras every propagation Explanation carries. */
export function propagationExtras(r: PropagationResult): Record<string, unknown> {
  return {
    conservationError: r.conservationError,
    relevanceSum: r.total,
    outputRelevance: r.start,
    rules: r.rules,
    foldedBatchNorms: r.folded,
  };
}
