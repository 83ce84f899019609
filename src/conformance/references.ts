/**
 * How Glasswing computes each reference map of an attributions bundle (FORMAT.md §4). Each entry
 * maps a reference name to a function returning the tensor to compare (same shape as the
 * reference). Other modules add entries with registerReference (e.g. the LRP rules).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { explain } from '../core/registry.js';
import { DataError, GlasswingError } from '../core/errors.js';
import { defaultCamLayer } from '../attribution/grad-cam.js';
import '../attribution/index.js';
import './references-captum.js';

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
  /** Shape of every tensor of the attributions bundle (e.g. gradcam_raw's tells the Grad-CAM layer). */
  shapes?: Map<string, number[]>;
  /**
   * Results shared between outputs of one run (an IG map and its delta come from one IG run), keyed
   * by method and options. The runner disposes the tensors in it when the run ends.
   */
  memo?: Map<string, { attribution: tf.Tensor; extras: Record<string, unknown> }>;
  /** The input bundle's `baselines` [K,H,W,C] (a baseline distribution, FORMAT.md §3), when it has one. */
  baselines?: tf.Tensor4D;
}

/**
 * Thrown by a reference function when the reference cannot be reproduced on this fixture (e.g.
 * occlusion windows covering only some channels, a pre-activation Grad-CAM on a layer without a
 * fused activation). The runner lists the output as skipped with this message instead of failing.
 */
export class ReferenceNotApplicable extends GlasswingError {}

/**
 * What a reference function returns: the tensor to compare (the caller disposes it), optionally with
 * a per-image scale that replaces ‖reference_i‖₂ as the denominator of the relative error. Scalars
 * that are small differences of large terms (IG's convergence delta Σattr − (f(x) − f(x̄))) are
 * measured relative to the size of those terms: float32 cannot resolve them relative to themselves.
 */
export type ReferenceValue = tf.Tensor | { value: tf.Tensor; scale?: number[]; note?: string };

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

/** IG steps: attrs.params.ig.n_steps (model-carrying fixtures) or attrs.params.ig_n_steps (MNIST fixtures); default 50. */
export function igSteps(params: Record<string, any>): number {
  const v = params?.ig?.n_steps ?? params?.ig_n_steps ?? 50;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 2) throw new DataError(`attributions attrs.params: expected ig n_steps to be an integer ≥ 2; got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Occlusion window, stride and baseline from attrs.params.occlusion: either `window_hw` / `strides_hw`
 * (MNIST fixtures) or Captum's NCHW `captum_sliding_window_shapes` / `captum_strides` ([C, h, w]).
 * Glasswing's occlusion window covers every channel, which Captum's does when its channel extent is
 * the input's channel count (then the channel stride is irrelevant: one window position along C).
 */
export function occlusionParams(params: Record<string, any>, channels: number): { window: [number, number]; stride: [number, number]; baseline: number } {
  const o = params?.occlusion ?? {};
  const baseline = Number(o.baseline ?? 0);
  if (!Number.isFinite(baseline)) throw new DataError(`attributions attrs.params.occlusion: expected a numeric baseline; got ${JSON.stringify(o.baseline)}`);
  const pair = (v: unknown, what: string): [number, number] => {
    if (!Array.isArray(v) || v.length !== 2 || v.some((d) => !Number.isInteger(d) || d < 1)) throw new DataError(`attributions attrs.params.occlusion: expected ${what} as [h, w] positive integers; got ${JSON.stringify(v)}`);
    return [v[0], v[1]];
  };
  if (o.captum_sliding_window_shapes != null) {
    const w = o.captum_sliding_window_shapes;
    const s = o.captum_strides ?? w;
    if (!Array.isArray(w) || w.length !== 3 || !Array.isArray(s) || s.length !== 3) {
      throw new DataError(`attributions attrs.params.occlusion: expected captum_sliding_window_shapes and captum_strides as [C, h, w]; got ${JSON.stringify(w)} and ${JSON.stringify(s)}`);
    }
    if (w[0] !== channels) {
      throw new ReferenceNotApplicable(`occlusion windows of ${w[0]} of the ${channels} channels; Glasswing's window covers all channels`);
    }
    return { window: pair(w.slice(1), 'the window'), stride: pair(s.slice(1), 'the strides'), baseline };
  }
  return { window: o.window_hw ? pair(o.window_hw, 'window_hw') : [4, 4], stride: o.strides_hw ? pair(o.strides_hw, 'strides_hw') : [2, 2], baseline };
}

/**
 * The Grad-CAM layer of a fixture: attrs.params.gradcam.layer (a Keras layer name = the node of its
 * post-activation output) when given; otherwise the last spatial node before the network goes flat
 * (global pooling / Flatten) whose height and width match the reference's gradcam_raw (on mnist_cnn:
 * conv2, not the pool after it); otherwise the last spatial node before the network goes flat;
 * otherwise the method's default (the last convolution's output).
 */
export function gradCamLayer(ctx: ReferenceContext): string {
  const named = ctx.params?.gradcam?.layer;
  const nodes = ctx.classifier.layers();
  if (typeof named === 'string' && named) {
    if (!nodes.some((l) => l.name === named)) {
      throw new DataError(`attributions attrs.params.gradcam.layer names "${named}"; the fixture model has no such layer (layers: ${nodes.map((l) => l.name).join(', ')})`);
    }
    return named;
  }
  const raw = ctx.shapes?.get('gradcam_raw');
  // spatial outputs in execution order; the last one is what global pooling / Flatten consumes (an
  // earlier squeeze-and-excitation GAP does not end the spatial part)
  const spatial = nodes.filter((l) => l.shape.length === 3 && !l.name.endsWith('/preact'));
  if (raw && raw.length === 4) {
    const match = spatial.filter((l) => l.shape[0] === raw[1] && l.shape[1] === raw[2]);
    if (match.length) return match[match.length - 1].name;
  }
  if (spatial.length && spatial.length < nodes.length) return spatial[spatial.length - 1].name;
  return defaultCamLayer(ctx.classifier);
}

async function gradCamRef(ctx: ReferenceContext, name: string, preact: boolean, raw: boolean): Promise<ReferenceValue> {
  let layer = gradCamLayer(ctx);
  if (preact) {
    const pre = `${layer}/preact`;
    if (!ctx.classifier.layers().some((l) => l.name === pre)) {
      throw new ReferenceNotApplicable(`pre-activation Grad-CAM needs a layer with a fused activation; "${layer}" has none`);
    }
    layer = pre;
  }
  let value = await methodMap(ctx, 'grad-cam', { layer }, raw ? 'raw' : undefined);
  // The upsampled map is the same in every channel; a one-channel reference keeps one of them.
  const want = ctx.shapes?.get(name);
  if (!raw && want?.length === 4 && want[3] === 1 && value.rank === 4 && value.shape[3] !== 1) {
    const one = tf.slice(value, [0, 0, 0, 0], [-1, -1, -1, 1]);
    value.dispose();
    value = one;
  }
  return { value, note: `layer ${layer}` };
}

registerReference('logits', (ctx) => ctx.classifier.logits(ctx.input));
registerReference('gradient', (ctx) => methodMap(ctx, 'gradient'));
registerReference('saliency', (ctx) => methodMap(ctx, 'saliency', { channels: 'keep' }));
registerReference('input_x_gradient', (ctx) => methodMap(ctx, 'gradient-x-input'));
/**
 * One IG run per rule, shared by the map and its convergence delta (at 224×224 an IG run is the
 * most expensive row, and both outputs need the same computation).
 */
async function igRun(ctx: ReferenceContext, rule: string): Promise<{ attribution: tf.Tensor; extras: Record<string, unknown> }> {
  const steps = igSteps(ctx.params);
  const key = `integrated-gradients|${rule}|${steps}`;
  const hit = ctx.memo?.get(key);
  if (hit) return hit;
  const e = await explain('integrated-gradients', ctx.classifier, ctx.input, { target: ctx.targets, options: { rule, steps }, skipRangeCheck: true });
  const r = { attribution: e.attribution, extras: { ...e.extras } };
  e.attribution = tf.zeros([1, 1, 1, 1]);
  e.dispose();
  ctx.memo?.set(key, r);
  return r;
}
/** The IG map (a copy when the run is shared: the caller disposes what it gets). */
async function igMap(ctx: ReferenceContext, rule: string): Promise<tf.Tensor> {
  const r = await igRun(ctx, rule);
  return ctx.memo ? tf.clone(r.attribution) : r.attribution;
}
registerReference('ig_riemann_trapezoid', (ctx) => igMap(ctx, 'riemann-trapezoid'));
registerReference('ig_gausslegendre', (ctx) => igMap(ctx, 'gauss-legendre'));
/**
 * IG convergence delta Σattr − (f(x) − f(x̄)). The scale |f(x) − f(x̄)| is the denominator of an
 * uncalibrated check (float32 cannot resolve a small difference of large terms relative to itself);
 * a calibrated fixture compares the deltas absolutely and ignores it.
 */
async function igDelta(ctx: ReferenceContext, rule: string): Promise<ReferenceValue> {
  const r = await igRun(ctx, rule);
  if (!ctx.memo) r.attribution.dispose();
  const value = tf.tensor1d(r.extras.completenessError as number[]);
  const scale = (r.extras.scoreDifference as number[]).map((v) => Math.abs(v));
  return { value, scale };
}
registerReference('ig_riemann_trapezoid_delta', (ctx) => igDelta(ctx, 'riemann-trapezoid'));
registerReference('ig_gausslegendre_delta', (ctx) => igDelta(ctx, 'gauss-legendre'));
registerReference('guided_backprop', (ctx) => methodMap(ctx, 'guided-backprop'));
registerReference('deconvolution', (ctx) => methodMap(ctx, 'deconvnet'));
registerReference('gradcam', (ctx) => gradCamRef(ctx, 'gradcam', false, false));
registerReference('gradcam_raw', (ctx) => gradCamRef(ctx, 'gradcam_raw', false, true));
registerReference('gradcam_preact', (ctx) => gradCamRef(ctx, 'gradcam_preact', true, false));
registerReference('gradcam_preact_raw', (ctx) => gradCamRef(ctx, 'gradcam_preact_raw', true, true));
registerReference('occlusion', (ctx) => methodMap(ctx, 'occlusion', occlusionParams(ctx.params, ctx.input.shape[3])));
