/**
 * Conformance counterparts of the Captum references added with the Captum-parity methods
 * (FORMAT.md §4: deeplift, deeplift_delta, deeplift_shap, gradient_shap_fixed, feature_ablation,
 * shapley_values, layer_integrated_gradients_conv1, layer_conductance_conv2). Each runs the
 * registered method through `explain` with the options that reproduce the reference's definition.
 */
import * as tf from '@tensorflow/tfjs-core';
import { explain } from '../core/registry.js';
import { igSteps, registerReference, ReferenceNotApplicable, type ReferenceContext, type ReferenceValue } from './references.js';
import '../attribution/index.js';

/** One run of a method shared by several outputs (a map and its delta), kept in ctx.memo. */
async function sharedRun(ctx: ReferenceContext, method: string, options: Record<string, unknown>): Promise<{ attribution: tf.Tensor; extras: Record<string, unknown> }> {
  const key = `${method}|${JSON.stringify(options, (_, v) => (v instanceof tf.Tensor ? `tensor[${v.shape.join(',')}]` : v))}`;
  const hit = ctx.memo?.get(key);
  if (hit) return hit;
  const e = await explain(method, ctx.classifier, ctx.input, { target: ctx.targets, options, skipRangeCheck: true });
  const r = { attribution: e.attribution, extras: { ...e.extras } };
  e.attribution = tf.zeros([1, 1, 1, 1]);
  e.dispose();
  ctx.memo?.set(key, r);
  return r;
}

/** The map of a shared run (a copy when memoised: the caller disposes what it gets). */
async function sharedMap(ctx: ReferenceContext, method: string, options: Record<string, unknown>): Promise<tf.Tensor> {
  const r = await sharedRun(ctx, method, options);
  return ctx.memo ? tf.clone(r.attribution) : r.attribution;
}

/** A summation-to-delta error Σattr − (f(x) − f(b)), scaled by |f(x) − f(b)| when compared relatively. */
async function sharedDelta(ctx: ReferenceContext, method: string, options: Record<string, unknown>): Promise<ReferenceValue> {
  const r = await sharedRun(ctx, method, options);
  if (!ctx.memo) r.attribution.dispose();
  const value = tf.tensor1d(r.extras.completenessError as number[]);
  const scale = (r.extras.scoreDifference as number[]).map((v) => Math.abs(v));
  return { value, scale };
}

/** Captum DeepLift as Captum 0.8 runs it (its max-pool override is bypassed right after an activation it hooks; FORMAT.md §4). */
const DEEPLIFT = { baseline: 'zeros', maxPoolRule: 'captum', eps: 1e-10 };
registerReference('deeplift', (ctx) => sharedMap(ctx, 'deeplift', DEEPLIFT));
registerReference('deeplift_delta', (ctx) => sharedDelta(ctx, 'deeplift', DEEPLIFT));

/** The baseline distribution of the fixture (input bundle `baselines`). */
export function fixtureBaselines(ctx: ReferenceContext, name: string): tf.Tensor4D {
  if (!ctx.baselines) throw new ReferenceNotApplicable(`${name} needs the input bundle's "baselines" tensor; the fixture has none`);
  return ctx.baselines;
}

/** Captum DeepLiftShap over the input bundle's baselines (same rules as deeplift). */
registerReference('deeplift_shap', (ctx) => sharedMap(ctx, 'deeplift-shap', { maxPoolRule: 'captum', eps: 1e-10, baselines: fixtureBaselines(ctx, 'deeplift_shap') }));

/**
 * gradient_shap_fixed: GradientShap with the draws replaced by a grid — 4K samples, sample s on
 * baseline s // 4 at α = (s % 4 + ½)/4 — which is gradient-shap's 'stratified' draw with 4 samples per baseline.
 */
registerReference('gradient_shap_fixed', (ctx) => {
  const b = fixtureBaselines(ctx, 'gradient_shap_fixed');
  return sharedMap(ctx, 'gradient-shap', { baselines: b, samples: 4 * b.shape[0], draw: 'stratified', stdev: 0 });
});

/** Captum FeatureAblation, baseline 0, 4×4 patches (index (row//4)·7 + col//4). */
registerReference('feature_ablation', (ctx) => sharedMap(ctx, 'feature-ablation', { featureMask: 'patches', patchSize: 4, baseline: 'zeros' }));

/** Exact Shapley values of a 3×3 grid of bands [0,10), [10,19), [19,28) (numpy.array_split), baseline 0. */
registerReference('shapley_values', (ctx) => sharedMap(ctx, 'shapley-exact', { featureMask: 'grid', gridSize: [3, 3], baseline: 'zeros' }));

/**
 * Layer references name their layer in the output (…_conv1, …_conv2: the post-activation output of
 * the Keras layer, Glasswing's node of that name). Captum's default Gauss–Legendre rule, input
 * baseline 0.
 */
function layerOf(ctx: ReferenceContext, name: string): string {
  const layer = name.slice(name.lastIndexOf('_') + 1);
  if (!ctx.classifier.layers().some((l) => l.name === layer)) throw new ReferenceNotApplicable(`${name}: the model has no layer "${layer}"`);
  return layer;
}
/** Steps: attrs.params[name].n_steps, else the fixture's IG steps (default 50). */
const layerPath = (ctx: ReferenceContext, name: string) => ({
  baseline: 'zeros',
  steps: ctx.params?.[name]?.n_steps != null ? igSteps({ ig_n_steps: ctx.params[name].n_steps }) : igSteps(ctx.params),
  rule: 'gauss-legendre',
  layer: layerOf(ctx, name),
});
registerReference('layer_integrated_gradients_conv1', (ctx) => sharedMap(ctx, 'layer-integrated-gradients', layerPath(ctx, 'layer_integrated_gradients_conv1')));
registerReference('layer_conductance_conv2', (ctx) => sharedMap(ctx, 'layer-conductance', layerPath(ctx, 'layer_conductance_conv2')));
