/** Evaluation metrics of explanations: importing this module registers every metric (one file each). */
import './pixel-flipping.js';
import './deletion.js';
import './insertion.js';
import './faithfulness-correlation.js';
import './infidelity.js';
import './max-sensitivity.js';
import './avg-sensitivity.js';
import './randomization.js';
import './random-logit.js';
import './sparseness.js';
import './complexity.js';
import './completeness.js';
import './input-invariance.js';
import './mass-in-region.js';
import './pointing-game.js';

import { evaluate, getMetric, listMetrics } from './registry.js';

/**
 * The metrics as one namespace — `metrics.evaluate(metric, classifier, x, attribution | method, options)` —
 * because the package's top-level `evaluate` is the model-accuracy evaluation (models/evaluate.ts).
 */
export const metrics = { evaluate, list: listMetrics, get: getMetric };
export { evaluate as evaluateMetric };
export {
  registerMetric, getMetric, listMetrics, methodExplainer, metricHigherIsBetter,
  type MetricDefinition, type MetricFamily, type MetricContext, type MetricOutput, type MetricCurve, type MetricEvaluation,
  type EvaluateOptions as MetricEvaluateOptions, type ExplainFunction, type AttributionSource,
} from './registry.js';
export { gini } from './sparseness.js';
export { entropy, effectiveComplexity } from './complexity.js';
export { ssim, hog, normaliseMap, SIMILARITIES, type SimilarityName } from './similarity.js';
export { spearman, pearson, ranks, auc, toInputGrid, REPLACEMENTS, type Replacement } from './common.js';
export { randomizedClassifier, shiftedTwin, weightNodes, type ModelVariant } from './models.js';
export { compareMethods, disposeComparison, methodProfile, COMPARE_TARGET, QUICK_METHOD_OPTIONS, QUICK_METRIC_OPTIONS, type MethodProfile, type MethodRun, type CompareOptions } from './compare.js';
