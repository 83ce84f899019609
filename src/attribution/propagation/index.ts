/**
 * Relevance propagation: LRP rules and composites, canonizers, Deep Taylor and VisualBackProp.
 * Importing this module registers the methods `lrp`, `deep-taylor` and `visual-backprop`.
 */
import './lrp.js';
import './deep-taylor.js';
import './visual-backprop.js';
import './references.js';

export {
  type Rule, type RuleContext, type RuleOptions, type InputModifier, type ParamModifier, type Params,
  epsilonRule, lrp0Rule, zPlusRule, signedZPlusRule, alphaBetaRule, gammaRule, zBoxRule, wSquareRule, flatRule, ruleByName, applyRule,
  stabilize, usesConstantInputs, RULE_NAMES, type RuleName,
} from './rules.js';
export {
  type Composite, type CompositeEntry, type LayerContext, defineComposite, uniformComposite, withLayerRules, rectifierAware, compositeByName, COMPOSITE_NAMES,
} from './composites.js';
export { canonize, batchNormAffine, type CanonizeResult } from './canonize.js';
export { propagate, assignRules, unrectifiedConvolutions, rectifiedLayers, type ExplicitPadding, multiplyGates, PASS_ACTIVATIONS, type PropagationConfig, type PropagationResult, type MaxPoolMode } from './propagate.js';
export { linearOpOf, convTranspose, type LinearOp } from './linear.js';
export { visualBackProp } from './visual-backprop.js';
export { clearWeightCache, weightCacheSize } from './weight-cache.js';
export type { LrpOptions } from './lrp.js';
export type { UnrectifiedMode } from './options.js';
export type { DeepTaylorOptions } from './deep-taylor.js';
