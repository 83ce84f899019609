/**
 * How Glasswing computes each reference map of an attributions bundle (FORMAT.md §4). Each entry
 * maps a reference name to a function returning the tensor to compare (same shape as the
 * reference). Other modules add entries with registerReference (e.g. the LRP rules).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { explain } from '../core/registry.js';
import '../attribution/index.js';

export interface ReferenceContext {
  classifier: Classifier;
  /** The bundle's input [N,H,W,C]. */
  input: tf.Tensor4D;
  /** Class explained per image (bundle target, else argmax of the logits). */
  targets: number[];
  /** attrs.params of the attributions bundle (ig_n_steps, occlusion window, …). */
  params: Record<string, any>;
  /** manifest.model of the fixture. */
  model: string | null;
}

/**
 * What a reference function returns: the tensor to compare (the caller disposes it), optionally with
 * a per-image scale that replaces ‖reference_i‖₂ as the denominator of the relative error. Scalars
 * that are small differences of large terms (IG's convergence delta Σattr − (f(x) − f(x̄))) are
 * measured relative to the size of those terms: float32 cannot resolve them relative to themselves.
 */
export type ReferenceValue = tf.Tensor | { value: tf.Tensor; scale: number[] };

/** Compute the Glasswing counterpart of one reference. */
export type ReferenceFn = (ctx: ReferenceContext) => Promise<ReferenceValue> | ReferenceValue;

/**
 * The table lives behind a hoisted function (not a module-level const) so that files taking part in
 * an import cycle with this module (attribution → propagation → here) can register while it loads.
 */
function table(): Map<string, ReferenceFn> {
  const g = globalThis as unknown as { __glasswingReferences?: Map<string, ReferenceFn> };
  g.__glasswingReferences ??= new Map();
  return g.__glasswingReferences;
}

/** Add (or replace) how Glasswing computes the reference map `name`. */
export function registerReference(name: string, fn: ReferenceFn): void {
  table().set(name, fn);
}

export function getReference(name: string): ReferenceFn | undefined {
  return table().get(name);
}

export function listReferences(): string[] {
  return [...table().keys()].sort();
}

/** Run a registered method through `explain` and keep only the attribution (or one extra). */
export async function methodMap(ctx: ReferenceContext, method: string, options: Record<string, unknown> = {}, extra?: string): Promise<tf.Tensor> {
  const e = await explain(method, ctx.classifier, ctx.input, { target: ctx.targets, options, skipRangeCheck: true });
  if (!extra) {
    const a = e.attribution;
    e.attribution = tf.zeros([1, 1, 1, 1]);
    e.dispose();
    return a;
  }
  const v = e.extras[extra];
  let out: tf.Tensor;
  if (v instanceof tf.Tensor) {
    out = tf.clone(v);
  } else if (Array.isArray(v)) {
    out = tf.tensor1d(v as number[]);
  } else {
    e.dispose();
    throw new Error(`internal: method "${method}" gave no extra "${extra}"`);
  }
  e.dispose();
  return out;
}

const igSteps = (ctx: ReferenceContext) => Number(ctx.params?.ig_n_steps ?? 50);
const occ = (ctx: ReferenceContext) => {
  const o = ctx.params?.occlusion ?? {};
  return { window: o.window_hw ?? [4, 4], stride: o.strides_hw ?? [2, 2], baseline: Number(o.baseline ?? 0) };
};

registerReference('logits', (ctx) => ctx.classifier.logits(ctx.input));
registerReference('gradient', (ctx) => methodMap(ctx, 'gradient'));
registerReference('saliency', (ctx) => methodMap(ctx, 'saliency', { channels: 'keep' }));
registerReference('input_x_gradient', (ctx) => methodMap(ctx, 'gradient-x-input'));
registerReference('ig_riemann_trapezoid', (ctx) => methodMap(ctx, 'integrated-gradients', { rule: 'riemann-trapezoid', steps: igSteps(ctx) }));
registerReference('ig_gausslegendre', (ctx) => methodMap(ctx, 'integrated-gradients', { rule: 'gauss-legendre', steps: igSteps(ctx) }));
/** IG convergence delta, measured relative to |f(x) − f(x̄)| per image. */
async function igDelta(ctx: ReferenceContext, rule: string): Promise<ReferenceValue> {
  const e = await explain('integrated-gradients', ctx.classifier, ctx.input, { target: ctx.targets, options: { rule, steps: igSteps(ctx) }, skipRangeCheck: true });
  const value = tf.tensor1d(e.extras.completenessError as number[]);
  const scale = (e.extras.scoreDifference as number[]).map((v) => Math.abs(v));
  e.dispose();
  return { value, scale };
}
registerReference('ig_riemann_trapezoid_delta', (ctx) => igDelta(ctx, 'riemann-trapezoid'));
registerReference('ig_gausslegendre_delta', (ctx) => igDelta(ctx, 'gauss-legendre'));
registerReference('guided_backprop', (ctx) => methodMap(ctx, 'guided-backprop'));
registerReference('deconvolution', (ctx) => methodMap(ctx, 'deconvnet'));
const camLayer = (ctx: ReferenceContext) => ctx.classifier.convLayers().at(-1)!;
registerReference('gradcam', (ctx) => methodMap(ctx, 'grad-cam', { layer: camLayer(ctx) }));
registerReference('gradcam_raw', (ctx) => methodMap(ctx, 'grad-cam', { layer: camLayer(ctx) }, 'raw'));
registerReference('gradcam_preact', (ctx) => methodMap(ctx, 'grad-cam', { layer: `${camLayer(ctx)}/preact` }));
registerReference('gradcam_preact_raw', (ctx) => methodMap(ctx, 'grad-cam', { layer: `${camLayer(ctx)}/preact` }, 'raw'));
registerReference('occlusion', (ctx) => methodMap(ctx, 'occlusion', occ(ctx)));
