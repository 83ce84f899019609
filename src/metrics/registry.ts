/**
 * The metric registry: stable names → evaluation metrics of explanations (Quantus' shape: a metric
 * is configured by options, never subclassed). `evaluate(metric, classifier, x, attribution, opts)`
 * wraps every metric the same way — input validation, target resolution, the attribution brought to
 * the input grid, a re-explanation function for metrics that must run the method again (robustness,
 * randomization, random logit, input invariance), memory budget and timing — so the CLI, the report
 * and the benchmarks reach every metric with every method alike.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { explain, getMethod } from '../core/registry.js';
import { disposeExplanation } from '../core/explanation.js';
import { OptionError, UnknownMethodError } from '../core/errors.js';
import { resolveTargets, type TargetSpec } from '../core/target.js';
import { withMemoryBudget, batchedLogits } from '../engine/memory.js';
import { guardBackend } from '../engine/recovery.js';
import { toInputGrid } from './common.js';

export type MetricFamily = 'faithfulness' | 'robustness' | 'randomization' | 'complexity' | 'conservation' | 'invariance' | 'localisation';

/** Recomputes an explanation (same method and options) for another classifier, inputs or targets. The result is the caller's. */
export type ExplainFunction = (classifier: Classifier, x: tf.Tensor4D, targets: number[]) => Promise<tf.Tensor4D> | tf.Tensor4D;

/** A user's attribution tensor, a registered method name, or a function that explains. */
export type AttributionSource = tf.Tensor4D | string | ExplainFunction;

/** One curve per image (pixel flipping, deletion, insertion, randomization per layer). */
export interface MetricCurve {
  name: string;
  xLabel: string;
  yLabel: string;
  /** Abscissae shared by every image (fraction perturbed, layer index…). */
  x: number[];
  /** Names of the abscissae where they are not numbers (randomization: layer names). */
  labels?: string[];
  /** Per image, one value per abscissa. */
  y: number[][];
  /** Mean over images. */
  mean: number[];
}

export interface MetricOutput {
  /** One score per image. */
  scores: number[];
  curves?: MetricCurve[];
  /** Further figures (per image arrays or scalars). */
  extras?: Record<string, unknown>;
}

export interface MetricContext {
  classifier: Classifier;
  /** The images [N, H, W, C]. */
  x: tf.Tensor4D;
  /** Explained class per image. */
  targets: number[];
  /** The attribution on the input grid [N, H, W, C] (owned by evaluate). */
  attribution: tf.Tensor4D;
  /** Whether `explain` can recompute explanations (a method name or function was given). */
  canExplain: boolean;
  /** Recompute the explanation (input grid, the caller's tensor); throws OptionError when only a tensor was given. */
  explain: ExplainFunction;
  progress?: (fraction: number, label?: string) => void;
}

export interface MetricDefinition<O extends object = Record<string, unknown>> {
  name: string;
  family: MetricFamily;
  /** One line for `glasswing metrics`. */
  description: string;
  /** Whether a higher score means a better explanation (may depend on the options, e.g. MoRF vs LeRF). */
  higherIsBetter: boolean | ((options: O) => boolean);
  /** Whether the metric runs the explanation method again (needs a method name or an explain function). */
  reexplains: boolean;
  /** Whether the metric needs the layers of the model (randomization). */
  needsLayers?: boolean;
  defaults: O;
  run(ctx: MetricContext, options: O): Promise<MetricOutput>;
}

const metrics = new Map<string, MetricDefinition<any>>();

export function registerMetric<O extends object>(def: MetricDefinition<O>): void {
  if (metrics.has(def.name)) throw new Error(`metric "${def.name}" is already registered`);
  metrics.set(def.name, def);
}

export function getMetric(name: string): MetricDefinition<any> {
  const m = metrics.get(name);
  if (!m) throw new UnknownMethodError(`expected one of the registered metrics (${[...metrics.keys()].sort().join(', ')}); got "${name}"`);
  return m;
}

const FAMILY_ORDER: MetricFamily[] = ['faithfulness', 'robustness', 'randomization', 'complexity', 'conservation', 'invariance', 'localisation'];

export function listMetrics(): MetricDefinition<any>[] {
  return [...metrics.values()].sort((a, b) => FAMILY_ORDER.indexOf(a.family) - FAMILY_ORDER.indexOf(b.family));
}

/** Whether a higher score is better for this metric with these options (defaults merged). */
export function metricHigherIsBetter(name: string, options: Record<string, unknown> = {}): boolean {
  const def = getMetric(name);
  const o = { ...def.defaults, ...options };
  return typeof def.higherIsBetter === 'function' ? def.higherIsBetter(o) : def.higherIsBetter;
}

export interface EvaluateOptions {
  /** Class to explain per image (default: the prediction). */
  target?: TargetSpec;
  /** Metric options, merged over the metric's defaults (seed, steps, patch size…). */
  options?: Record<string, unknown>;
  /** Options of the method, when `attribution` is a method name. */
  methodOptions?: Record<string, unknown>;
  /** With an attribution tensor: how to recompute explanations for the metrics that must. */
  explain?: ExplainFunction;
  /** Memory budget of this call (bytes or '512MB'); internal batches are sized to fit it. */
  memoryBudget?: number | string;
  progress?: (fraction: number, label?: string) => void;
}

export interface MetricEvaluation {
  metric: string;
  /** The method's name, when one was given. */
  method?: string;
  /** One score per image. */
  scores: number[];
  /** Mean of the finite scores. */
  mean: number;
  higherIsBetter: boolean;
  target: number[];
  curves: MetricCurve[];
  extras: Record<string, unknown>;
  /** Options the metric ran with, defaults filled in. */
  options: Record<string, unknown>;
  /** Wall time of the metric (and of the explanations it ran), ms, whole batch. */
  timeMs: number;
  /** Whether the attribution had another shape and was brought to the input grid (layer methods, CAMs at feature resolution). */
  resampled: boolean;
}

/**
 * An ExplainFunction that runs a registered method with fixed options. It returns the method's own
 * map (evaluate brings it to the input grid and notes when it had to); the rest of the Explanation
 * (extras) is released.
 */
export function methodExplainer(method: string, methodOptions: Record<string, unknown> = {}): ExplainFunction {
  getMethod(method);
  return async (classifier, x, targets) => {
    const e = await explain(method, classifier, x, { target: targets, options: methodOptions, skipRangeCheck: true });
    disposeExplanation({ attribution: undefined as unknown as tf.Tensor4D, extras: e.extras });
    return e.attribution;
  };
}

/**
 * Evaluate an explanation with a registered metric.
 *
 * `attribution` is a method name (the method runs here with `methodOptions`), a function that
 * explains, or an attribution tensor (NHWC; any spatial size or channel count — it is brought to the
 * input grid). Metrics that run the explanation again need a method name or a function (pass
 * `explain` alongside a tensor).
 *
 * @example
 * const r = await evaluate('deletion', classifier, images, 'gradient-x-input');
 * console.log(r.scores, r.curves[0].mean);
 */
export async function evaluate(metric: string, classifier: Classifier, x: tf.Tensor4D, attribution: AttributionSource, opts: EvaluateOptions = {}): Promise<MetricEvaluation> {
  const def = getMetric(metric);
  const options = { ...def.defaults, ...(opts.options ?? {}) } as Record<string, unknown>;
  for (const key of Object.keys(opts.options ?? {})) {
    if (!(key in def.defaults)) {
      throw new OptionError(`expected an option of metric "${metric}" (${Object.keys(def.defaults).join(', ') || 'none'}); got unknown option "${key}"`);
    }
  }
  return withMemoryBudget(opts.memoryBudget, () => guardBackend(`metric "${metric}"`, [classifier], async () => {
    classifier.validateInput(x);
    if (def.needsLayers && !classifier.graph) {
      throw new OptionError(`metric "${metric}" needs the layers of the model; classifier "${classifier.name}" wraps a plain function`);
    }
    const start = performance.now();
    const n = x.shape[0];
    const logits = batchedLogits(classifier, x);
    const flat = (await logits.data()) as Float32Array;
    logits.dispose();
    const targets = resolveTargets(opts.target ?? 'predicted', flat, n, classifier.numClasses, classifier.classNames);

    let method: string | undefined;
    let explainer: ExplainFunction | undefined = opts.explain;
    if (typeof attribution === 'string') {
      method = attribution;
      explainer = methodExplainer(attribution, opts.methodOptions);
    } else if (typeof attribution === 'function') {
      explainer = attribution;
    } else if (!(attribution instanceof tf.Tensor)) {
      throw new OptionError(`expected an attribution tensor, a method name or an explain function; got ${typeof attribution}`);
    }
    if (def.reexplains && !explainer) {
      throw new OptionError(`metric "${metric}" runs the explanation again: pass a method name, an explain function, or an attribution tensor with options.explain`);
    }
    let ownAttribution: tf.Tensor4D;
    if (attribution instanceof tf.Tensor) {
      if (attribution.rank !== 4 || attribution.shape[0] !== n) {
        throw new OptionError(`expected an attribution [${n}, H, W, C] (one map per image); got shape [${attribution.shape.join(', ')}]`);
      }
      ownAttribution = attribution;
    } else {
      ownAttribution = await explainer!(classifier, x, targets);
    }
    const { grid, resampled } = toInputGrid(ownAttribution, x.shape);
    if (ownAttribution !== attribution && grid !== ownAttribution) ownAttribution.dispose();
    const ctx: MetricContext = {
      classifier, x, targets, attribution: grid, canExplain: Boolean(explainer),
      explain: async (c, xs, ts) => {
        if (!explainer) throw new OptionError(`metric "${metric}" runs the explanation again: pass a method name or an explain function`);
        const a = await explainer(c, xs, ts);
        const r = toInputGrid(a, xs.shape);
        if (r.grid !== a) a.dispose();
        return r.grid;
      },
      progress: opts.progress,
    };
    try {
      const out = await def.run(ctx, options);
      const finite = out.scores.filter(Number.isFinite);
      return {
        metric, method, scores: out.scores, mean: finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : NaN,
        higherIsBetter: typeof def.higherIsBetter === 'function' ? def.higherIsBetter(options as never) : def.higherIsBetter,
        target: targets, curves: out.curves ?? [], extras: out.extras ?? {}, options, timeMs: performance.now() - start, resampled,
      };
    } finally {
      if (grid !== attribution) grid.dispose();
    }
  }));
}
