/**
 * Methods × metrics on one classifier and one batch: what `glasswing report`, `glasswing metrics
 * run` and the metrics benchmark share. Each method is explained once (timed, its peak memory
 * measured), then every metric runs on it; metrics that run the method again are skipped for
 * methods whose own cost would make them take more than `maxReexplainMs`, so one slow method does
 * not hold a whole report hostage. One failure (a method that cannot run on this model) is recorded
 * and the comparison goes on.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { explain, getMethod, listMethods, type MethodDefinition } from '../core/registry.js';
import { measurePeakAsync } from '../engine/memory.js';
import { getMetric, listMetrics, evaluate, methodExplainer, type MetricEvaluation } from './registry.js';
import { toInputGrid } from './common.js';
import { weightNodes } from './models.js';

/** Smaller options for slow methods in quick runs (and in the report's metric re-explanations). */
export const QUICK_METHOD_OPTIONS: Record<string, Record<string, unknown>> = {
  'integrated-gradients': { steps: 16 }, 'layer-integrated-gradients': { steps: 16 }, 'layer-conductance': { steps: 16 }, 'neuron-integrated-gradients': { steps: 16 },
  smoothgrad: { samples: 8 }, 'gradient-shap': { samples: 8 }, 'deeplift-shap': { numBaselines: 4 },
  lime: { samples: 150 }, 'kernel-shap': { samples: 150 }, 'shapley-sampling': { samples: 4 }, 'prediction-difference': { samples: 2, stride: 2 },
  'score-cam': { maxChannels: 8 }, pgd: { steps: 10 }, geosal: { maxComparisons: 3 }, 'geosal-signed': { maxComparisons: 3 },
  cdeepex: { outerSteps: 30 }, xgems: { outerSteps: 30 }, lse: { maxSteps: 100 }, lae: { maxSteps: 100 }, contrast: { weightStep: 0.05 },
};

/** Smaller metric options for quick runs (fewer curve steps and samples). */
export const QUICK_METRIC_OPTIONS: Record<string, Record<string, unknown>> = {
  'pixel-flipping': { steps: 20 }, deletion: { steps: 20 }, insertion: { steps: 20 }, 'faithfulness-correlation': { samples: 20 },
  infidelity: { samples: 16 }, 'max-sensitivity': { samples: 3 }, 'avg-sensitivity': { samples: 3 },
};

/** Seed 002's Table 1 columns for a registered method (the measured ones filled by compareMethods). */
export interface MethodProfile {
  method: string;
  family: string;
  description: string;
  signed: boolean;
  /** 'black box' (inputs and outputs only), 'gradient' (autodiff through any differentiable model), 'white box' (needs the layers). */
  access: 'black box' | 'gradient' | 'white box';
  /** Which networks it runs on. */
  layers: string;
  /** Additive (relevance of the input for the class) or comparative (difference to another class / example). */
  explanation: 'additive' | 'comparative' | 'additive or comparative';
  /** What one image costs, in passes of the network (seed 002's "scaling" row): the cost grows with these and with network size. */
  scaling: string;
  msPerImage?: number;
  peakBytes?: number;
  error?: string;
  /** Set when every map of the batch is all zeros: the metrics are then degenerate (a zero map is "perfectly robust and simple"). */
  zeroMap?: boolean;
}

/**
 * The class explained per method: the prediction, except for the latent searches (LSE/LAE toward the
 * predicted class of a correctly classified image stop at step 0 with an empty map), which explain the
 * runner-up — as the demo does.
 */
export const COMPARE_TARGET: Record<string, 'predicted' | 'second'> = { lse: 'second', lae: 'second' };

/** Passes of the network per image, by method (default by access: one backward pass, or one forward pass per perturbation). */
const SCALING: Record<string, string> = {
  gradient: '1 forward + 1 backward', 'gradient-x-input': '1 forward + 1 backward', saliency: '1 forward + 1 backward', sensitivity: '1 forward + 1 backward',
  'guided-backprop': '1 forward + 1 backward', deconvnet: '1 forward + 1 backward', 'grad-cam': '1 forward + 1 backward (to the layer)',
  'guided-grad-cam': '2 forward + 2 backward', 'grad-cam-plus-plus': '1 forward + 1 backward', 'layer-cam': '1 forward + 1 backward', 'eigen-cam': '1 forward + SVD of the layer',
  'score-cam': '1 forward per channel of the layer (maxChannels)', 'integrated-gradients': 'steps × (forward + backward)', 'layer-integrated-gradients': 'steps × (forward + backward)',
  'layer-conductance': 'steps × (forward + backward)', 'neuron-integrated-gradients': 'steps × (forward + backward)', smoothgrad: 'samples × (forward + backward)',
  'gradient-shap': 'samples × (forward + backward)', deeplift: '2 forward + 1 modified backward', 'deeplift-shap': 'baselines × (2 forward + 1 backward)',
  lrp: '1 forward + 1 modified backward', 'deep-taylor': '1 forward + 1 modified backward', 'visual-backprop': '1 forward + deconvolutions',
  occlusion: '1 forward per window position', 'feature-ablation': '1 forward per feature', 'feature-permutation': '1 forward per feature',
  lime: 'samples forward + a ridge fit', 'kernel-shap': 'samples forward + a weighted fit', 'shapley-exact': '2^features forward', 'shapley-sampling': 'samples × features forward',
  'prediction-difference': 'windows × samples forward', 'neuron-gradient': '1 forward + 1 backward (from the layer)', 'layer-gradient-x-activation': '1 forward + 1 backward (to the layer)',
  deepfool: 'iterations × candidates × (forward + backward)', geosal: 'comparisons × iterations × (forward + backward)', 'geosal-signed': 'comparisons × iterations × (forward + backward)',
  'weight-saliency': 'one local linear form (1 backward per class)', fgsm: '1 forward + 1 backward', pgd: 'steps × (forward + backward)',
  lse: 'steps × (generator + classifier, forward + backward)', lae: 'steps × (generator + classifier, forward + backward)',
  cdeepex: 'outer × inner steps × (generator + classifier, forward + backward)', xgems: 'outer × inner steps × (generator + classifier, forward + backward)',
  contrast: 'the inner method twice + 1 forward per weight of the sweep',
};

const COMPARATIVE = new Set(['contrast', 'cdeepex', 'xgems', 'lse', 'lae', 'deepfool', 'geosal', 'geosal-signed', 'fgsm', 'pgd', 'weight-saliency']);

/** Static Table-1 facts of a method, read from its registration (what it requires of a classifier, its memory kind, its family). */
export function methodProfile(def: MethodDefinition<any>): MethodProfile {
  // Ask the method about a classifier without layers: a reason means it needs them (white box).
  let probe: string | undefined;
  try {
    probe = def.requires?.({ graph: undefined, model: undefined, name: 'function', inputShape: [28, 28, 1], numClasses: 10 } as unknown as Classifier);
  } catch (e) {
    probe = `it needs the layers of the model (${(e as Error).message.split('\n')[0]})`;
  }
  // The contrastive sweep wraps another method (default: gradient) and needs what that one needs.
  if (def.name === 'contrast') {
    return { method: def.name, family: def.family, description: def.description, signed: def.signed, access: 'gradient', layers: 'as its inner method (default gradient: any differentiable model)', explanation: 'comparative', scaling: SCALING.contrast };
  }
  const access = probe !== undefined ? 'white box' : def.memory === 'forward' || def.memory === 'none' ? 'black box' : 'gradient';
  const layers = access === 'white box' ? `layered models: ${probe!.replace(/^(it )?needs? /, '')}` : access === 'black box' ? 'any model (inputs and outputs)' : 'any differentiable model';
  const explanation = def.name === 'lime' ? 'additive or comparative' : COMPARATIVE.has(def.name) || def.family === 'counterfactual' ? 'comparative' : 'additive';
  const scaling = SCALING[def.name] ?? (access === 'black box' ? '1 forward per perturbation' : '1 forward + 1 backward');
  return { method: def.name, family: def.family, description: def.description, signed: def.signed, access, layers, explanation, scaling };
}

export interface CompareOptions {
  methods?: string[];
  metrics?: string[];
  /** Reduced method and metric options. */
  quick?: boolean;
  /** Per-method options (merged over the quick ones). */
  methodOptions?: Record<string, Record<string, unknown>>;
  /** Per-metric options (merged over the quick ones). */
  metricOptions?: Record<string, Record<string, unknown>>;
  /** Skip re-explaining metrics when the method alone would take longer than this for them (ms, whole batch). */
  maxReexplainMs?: number;
  progress?: (label: string) => void;
}

export interface MethodRun {
  profile: MethodProfile;
  /** The attribution on the input grid (the caller disposes it via disposeComparison). */
  attribution?: tf.Tensor4D;
  targets?: number[];
  metrics: Map<string, MetricEvaluation | { error: string }>;
}

/** How many explanations of the batch a metric runs (for the time cap). */
function reexplainRuns(metric: string, classifier: Classifier, options: Record<string, unknown>): number {
  const def = getMetric(metric);
  if (!def.reexplains) return 0;
  const o = { ...def.defaults, ...options } as Record<string, unknown>;
  if (metric === 'max-sensitivity' || metric === 'avg-sensitivity') return Number(o.samples);
  if (metric === 'randomization') return classifier.graph ? weightNodes(classifier).length : 0;
  return 1;
}

/** Explain x with every method and score each with every metric. */
export async function compareMethods(classifier: Classifier, x: tf.Tensor4D, opts: CompareOptions = {}): Promise<MethodRun[]> {
  const methods = (opts.methods ?? listMethods().map((m) => m.name)).map(getMethod);
  const metricNames = opts.metrics ?? listMetrics().map((m) => m.name);
  const runs: MethodRun[] = [];
  for (const def of methods) {
    const profile = methodProfile(def);
    const run: MethodRun = { profile, metrics: new Map() };
    runs.push(run);
    const why = def.requires?.(classifier);
    if (why) {
      profile.error = `cannot run on ${classifier.name}: ${why}`;
      continue;
    }
    const methodOptions = { ...(opts.quick ? QUICK_METHOD_OPTIONS[def.name] ?? {} : {}), ...(opts.methodOptions?.[def.name] ?? {}) };
    opts.progress?.(def.name);
    try {
      const { result: e, peakBytes } = await measurePeakAsync(() => explain(def.name, classifier, x, { options: methodOptions, target: COMPARE_TARGET[def.name] ?? 'predicted' }));
      profile.msPerImage = e.timeMs / x.shape[0];
      profile.peakBytes = peakBytes;
      const grid = toInputGrid(e.attribution, x.shape).grid;
      run.attribution = grid === e.attribution ? tf.clone(grid) : grid;
      run.targets = e.target;
      e.dispose();
      const mx = tf.tidy(() => tf.max(tf.abs(run.attribution!)));
      profile.zeroMap = (await mx.data())[0] === 0;
      mx.dispose();
    } catch (err) {
      profile.error = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      continue;
    }
    for (const metric of metricNames) {
      const def2 = getMetric(metric);
      const metricOptions = { ...(opts.quick ? QUICK_METRIC_OPTIONS[metric] ?? {} : {}), ...(opts.metricOptions?.[metric] ?? {}) };
      if (def2.needsLayers && !classifier.graph) {
        run.metrics.set(metric, { error: 'needs a layered model' });
        continue;
      }
      const cost = reexplainRuns(metric, classifier, metricOptions) * (profile.msPerImage ?? 0) * x.shape[0];
      if (opts.maxReexplainMs !== undefined && cost > opts.maxReexplainMs) {
        run.metrics.set(metric, { error: `skipped: would re-run the method for ~${(cost / 1000).toFixed(0)} s` });
        continue;
      }
      opts.progress?.(`${def.name} · ${metric}`);
      try {
        // the map computed above, and the method itself for the metrics that explain again
        const r = await evaluate(metric, classifier, x, run.attribution!, {
          target: run.targets, options: metricOptions, explain: methodExplainer(def.name, methodOptions),
        });
        r.method = def.name;
        run.metrics.set(metric, r);
      } catch (err) {
        run.metrics.set(metric, { error: (err instanceof Error ? err.message : String(err)).split('\n')[0] });
      }
    }
  }
  return runs;
}

export function disposeComparison(runs: MethodRun[]): void {
  for (const r of runs) r.attribution?.dispose();
}
