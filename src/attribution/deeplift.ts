/**
 * `deeplift` (Shrikumar et al. 2017, Rescale rule) with Captum 0.8's semantics.
 *
 * DeepLIFT replaces each nonlinearity's derivative by a finite-difference multiplier between the
 * input and a baseline, m = (f(z_x) − f(z_b)) / (z_x − z_b), and back-propagates these multipliers
 * like gradients; attribution = (x − b) · m_input. Every piece of the network then satisfies
 * summation-to-delta: Σ attr = f(x) − f(b) exactly (up to float32), unlike a gradient.
 *
 * How: the input and the baseline run as one concatenated batch [x; b] through the graph executor,
 * with a node override (scoped to this call) that gives each element-wise activation and each max
 * pooling a tf.customGrad backward reading both halves' saved values — the same trick Captum plays
 * with module hooks. As in Captum, the target logit of both halves seeds the backward pass (its
 * loss is the sum over the 2N rows), so the two halves carry the same multipliers.
 *
 * Rules:
 *   - element-wise activations (ReLU, ReLU6 and clipped ReLUs, leaky ReLU, PReLU, ELU, sigmoid, tanh,
 *     swish, …): Rescale; where |z_x − z_b| < eps the plain derivative at z (Captum's fallback).
 *     Captum 0.8 has no rule for ReLU6 (its rule table is keyed by exact module type, so a ReLU6 gets
 *     the plain gradient and summation-to-delta fails); Glasswing treats ReLU6 and every clipped ReLU
 *     as the monotone piecewise-linear function it is and applies Rescale, which keeps Σ attr = Δf.
 *   - max pooling (and global max pooling): Captum's rule — the window's output change is split
 *     between x's arg-max (the part max(o_x, o_b) − o_b) and b's arg-max (the part o_x − max(o_x, o_b)),
 *     each divided by its own input change. `maxPoolRule: 'gradient'` passes the plain gradient;
 *     `'captum'` reproduces Captum 0.8 exactly, including that its max-pool override does not take
 *     effect for a pool that directly reads an activation's output (both modules hook the same
 *     tensor; FORMAT.md §4 "DeepLift details") — there the plain gradient, elsewhere the rule.
 *   - everything else (Dense, Conv2D, DepthwiseConv2D, BatchNorm, Add, Concatenate, average pooling,
 *     padding, reshapes, Multiply): the plain gradient, as in Captum 0.8 (linear layers need nothing
 *     else; Multiply of two varying inputs is not summation-exact under it).
 *   - softmax / log-softmax inside the network: plain gradient (not element-wise).
 *
 * extras: completenessError[i] = Σ attr_i − (f(x_i) − f(b_i)) (Captum's convergence delta, the
 * summation-to-delta error) and scoreDifference[i] = f(x_i) − f(b_i).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import type { GraphNode, NodeOverride } from '../core/graph.js';
import { targetMask } from '../core/target.js';
import { batchSizeFor } from '../engine/memory.js';
import { customOp } from './propagation/propagate.js';
import { makeBaseline, type BaselineSpec } from './integrated-gradients.js';
import { chunks, finiteNumber, oneOf, positiveInt, rectifierMax } from './math.js';

export type DeepLiftMaxPoolRule = 'rescale' | 'gradient' | 'captum';
export const DEEPLIFT_MAXPOOL_RULES: readonly DeepLiftMaxPoolRule[] = ['rescale', 'gradient', 'captum'];

export interface DeepLiftOptions {
  /** 'zeros', 'constant' (baselineValue), 'blurred' (blurSigma), or a tensor [H,W,C], [1,H,W,C] or [N,H,W,C]. */
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  /** Max pooling: 'rescale' (Captum's rule everywhere, default), 'gradient', or 'captum' (Captum 0.8 as it runs). */
  maxPoolRule: DeepLiftMaxPoolRule;
  /** Below this |z_x − z_b| a unit uses its plain derivative (Captum's eps). */
  eps: number;
  /** Images per call, at most (each image is two rows: input and baseline; fewer when the memory budget says so). */
  batchSize: number;
}

/** Activations that are not element-wise (they get the plain gradient). */
const NOT_ELEMENTWISE = new Set(['softmax', 'log_softmax', 'linear']);

/** Whether DeepLIFT's Rescale rule applies to this node. */
export function isRescaleNode(node: GraphNode): boolean {
  return node.kind === 'activation' && !NOT_ELEMENTWISE.has(node.params.activation ?? 'linear');
}

/**
 * The plain derivative f'(z) of an element-wise activation node: exact for the rectifiers
 * (1[0 < z < max], Captum's `input > 0` for ReLU), a central difference of the node's own forward
 * for the others (it is only used where the input and the baseline agree to eps, where any smooth
 * activation's multiplier equals its derivative).
 */
function localDerivative(node: GraphNode, z: tf.Tensor, standard: (ins: tf.Tensor[]) => tf.Tensor): tf.Tensor {
  const max = rectifierMax(node);
  if (max !== undefined) {
    const open = Number.isFinite(max) ? tf.logicalAnd(tf.greater(z, 0), tf.less(z, max)) : tf.greater(z, 0);
    return tf.cast(open, 'float32');
  }
  const h = tf.mul(tf.maximum(tf.abs(z), 1), 1e-3);
  return tf.div(tf.sub(standard([tf.add(z, h)]), standard([tf.sub(z, h)])), tf.mul(h, 2));
}

/** A [2N, …] batch as its halves [x; b], each flattened to [1, M] (reshapes are free; the two slices copy one batch). */
function halves(t: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const t2 = tf.reshape(t, [2, -1]);
  return [tf.slice(t2, [0, 0], [1, -1]), tf.slice(t2, [1, 0], [1, -1])];
}

/** dy [2N, …] times a per-unit multiplier [1, M] shared by both halves (broadcast, no concatenation). */
function timesShared(dy: tf.Tensor, m: tf.Tensor): tf.Tensor {
  return tf.reshape(tf.mul(tf.reshape(dy, [2, -1]), m), dy.shape);
}

/**
 * Rescale: dy · (f(z_x) − f(z_b)) / (z_x − z_b), the same multiplier on both halves (Captum: delta_out /
 * delta_in, repeated); the plain derivative where |Δz| < eps (there z_x and z_b agree to eps, so the
 * derivative at z_x serves both halves). All the multiplier's arithmetic runs on one half's size.
 */
function rescaleOp(node: GraphNode, z: tf.Tensor, standard: (ins: tf.Tensor[]) => tf.Tensor, eps: number): tf.Tensor {
  return customOp([z], (xs) => standard(xs), (dy, [zs], y) => {
    const [zx, zb] = halves(zs);
    const [yx, yb] = halves(y);
    const dz = tf.sub(zx, zb);
    // where |Δz| < eps the ratio may be 0/0; that branch is not selected
    const ratio = tf.div(tf.sub(yx, yb), dz);
    const m = tf.where(tf.less(tf.abs(dz), eps), localDerivative(node, zx, standard), ratio);
    return timesShared(dy, m);
  });
}

/** Pool attributes of a maxpool or global-maxpool node for an input of this shape. */
function poolAttrs(node: GraphNode, shape: number[]): { filterSize: [number, number]; strides: [number, number]; pad: 'same' | 'valid' } {
  if (node.kind === 'global-maxpool') return { filterSize: [shape[1], shape[2]], strides: [shape[1], shape[2]], pad: 'valid' };
  return { filterSize: node.params.poolSize!, strides: node.params.strides!, pad: node.params.padding! };
}

/** Route each window's value to the first maximum (row-major) of its window in `input` (max unpooling). */
function unpool(dy: tf.Tensor, input: tf.Tensor, output: tf.Tensor, attrs: ReturnType<typeof poolAttrs>): tf.Tensor {
  return tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/**
 * Captum's max-pool rule on the concatenated batch: u = unpool_x(g_x · (max(o_x,o_b) − o_b)) +
 * unpool_b(g_b · (o_x − max(o_x,o_b))), multiplier u / (z_x − z_b) on both halves, the plain gradient
 * (each half routed to its own arg-max) where |Δz| < eps. With d = o_x − o_b the two parts are
 * g_x · relu(d) and g_b · (d − relu(d)); one MaxPoolGrad call over the 2N batch routes both.
 */
function maxPoolOp(node: GraphNode, z: tf.Tensor, standard: (ins: tf.Tensor[]) => tf.Tensor, eps: number): tf.Tensor {
  const global = node.kind === 'global-maxpool';
  return customOp([z], (xs) => standard(xs), (dy, [zs], y) => {
    const attrs = poolAttrs(node, zs.shape);
    const y4 = global ? tf.reshape(y, [y.shape[0], 1, 1, y.shape[1]!]) : y;
    const dy4 = global ? tf.reshape(dy, y4.shape) : dy;
    const [ox, ob] = halves(y4);
    const d = tf.sub(ox, ob);
    const rd = tf.relu(d);
    const parts = tf.reshape(tf.concat([rd, tf.sub(d, rd)], 0), y4.shape);
    const [ux, ub] = halves(unpool(tf.mul(dy4, parts), zs, y4, attrs));
    const [zx, zb] = halves(zs);
    const dz = tf.sub(zx, zb);
    const small = tf.less(tf.abs(dz), eps);
    const rule = timesShared(tf.onesLike(zs), tf.div(tf.add(ux, ub), dz));
    return tf.where(tf.reshape(tf.concat([small, small], 0), zs.shape), unpool(dy4, zs, y4, attrs), rule);
  });
}

/** The DeepLIFT node override for one call. */
export function deepLiftOverride(classifier: Classifier, rule: DeepLiftMaxPoolRule, eps: number): NodeOverride {
  const graph = classifier.graph!;
  return (node, inputs, standard) => {
    if (isRescaleNode(node)) return rescaleOp(node, inputs[0], standard, eps);
    if (node.kind === 'maxpool' || node.kind === 'global-maxpool') {
      if (rule === 'gradient') return undefined;
      if (rule === 'captum') {
        const src = graph.byName.get(node.inputs[0]);
        if (src && isRescaleNode(src)) return undefined;
      }
      return maxPoolOp(node, inputs[0], standard, eps);
    }
    return undefined;
  };
}

export interface DeepLiftRun {
  /** Multipliers at the input (the x half), [N,H,W,C]. */
  multipliers: tf.Tensor4D;
  /** f(x_i) and f(b_i), target logits, from the same forward pass. */
  fx: Float32Array;
  fb: Float32Array;
}

/**
 * DeepLIFT multipliers of x against the baseline batch b (same shape), in chunks of images whose
 * two rows each fit the memory budget.
 */
export async function deepLiftMultipliers(
  classifier: Classifier,
  x: tf.Tensor4D,
  b: tf.Tensor4D,
  targets: number[],
  opts: { maxPoolRule: DeepLiftMaxPoolRule; eps: number; batchSize: number; progress?: (f: number, label?: string) => void },
): Promise<DeepLiftRun> {
  const n = x.shape[0];
  const override = deepLiftOverride(classifier, opts.maxPoolRule, opts.eps);
  const per = batchSizeFor(classifier, 'gradient', opts.batchSize, { shape: x.shape.slice(1), rowsPerSample: 2 });
  const parts: tf.Tensor4D[] = [];
  const fx = new Float32Array(n);
  const fb = new Float32Array(n);
  const all = chunks(n, per);
  try {
    for (const [k, [s, c]] of all.entries()) {
      const [m, scores] = tf.tidy(() => {
        const xs = c === n ? x : tf.slice(x, [s, 0, 0, 0], [c, -1, -1, -1]);
        const bs = c === n ? b : tf.slice(b, [s, 0, 0, 0], [c, -1, -1, -1]);
        const both = tf.concat([xs, bs], 0);
        const t = targets.slice(s, s + c);
        const mask = targetMask([...t, ...t], classifier.numClasses);
        let score: tf.Tensor | undefined;
        const g = tf.grad((v: tf.Tensor) => {
          const logits = classifier.forward(v, { override }).logits;
          const sel = tf.sum(tf.mul(logits, mask), 1);
          score = tf.keep(sel);
          return tf.sum(sel);
        })(both);
        return [tf.slice(g, [0, 0, 0, 0], [c, -1, -1, -1]) as tf.Tensor4D, score!];
      });
      const v = (await scores.data()) as Float32Array;
      scores.dispose();
      fx.set(v.subarray(0, c), s);
      fb.set(v.subarray(c, 2 * c), s);
      parts.push(m);
      opts.progress?.((k + 1) / all.length, 'deeplift');
    }
  } catch (e) {
    tf.dispose(parts);
    throw e;
  }
  if (parts.length === 1) return { multipliers: parts[0], fx, fb };
  const multipliers = tf.concat(parts, 0);
  tf.dispose(parts);
  return { multipliers, fx, fb };
}

/** Σ attr_i per image minus (f(x_i) − f(b_i)). */
export async function completeness(attribution: tf.Tensor4D, fx: Float32Array, fb: Float32Array): Promise<{ completenessError: number[]; scoreDifference: number[] }> {
  const sums = tf.sum(attribution, [1, 2, 3]);
  const total = (await sums.data()) as Float32Array;
  sums.dispose();
  const scoreDifference = Array.from(fx, (v, i) => v - fb[i]);
  return { completenessError: Array.from(total, (v, i) => v - scoreDifference[i]), scoreDifference };
}

/** Validated DeepLIFT run options. */
export function deepLiftRunOptions(options: { maxPoolRule: unknown; eps: unknown; batchSize: unknown }): { maxPoolRule: DeepLiftMaxPoolRule; eps: number; batchSize: number } {
  return {
    maxPoolRule: oneOf('maxPoolRule', options.maxPoolRule, DEEPLIFT_MAXPOOL_RULES),
    eps: finiteNumber('eps', options.eps, 0),
    batchSize: positiveInt('batchSize', options.batchSize),
  };
}

/** Why DeepLIFT cannot run on a classifier (it needs the layer graph), or undefined. */
export function needsGraph(classifier: Classifier): string | undefined {
  return classifier.graph ? undefined : 'it needs the layers of the model (a LayersModel), not a plain function';
}

registerMethod<DeepLiftOptions>({
  name: 'deeplift',
  family: 'attribution',
  description: 'DeepLIFT Rescale rule against a baseline (Captum semantics; ReLU6 rescaled; summation-to-delta error in extras)',
  signed: true,
  defaults: { baseline: 'zeros', baselineValue: 0, blurSigma: 5, maxPoolRule: 'rescale', eps: 1e-10, batchSize: 64 },
  requires: needsGraph,
  async run(classifier, x, targets, options, context) {
    const run = deepLiftRunOptions(options);
    const baseline = makeBaseline(classifier, x, options.baseline, options.baselineValue, options.blurSigma);
    try {
      const r = await deepLiftMultipliers(classifier, x, baseline, targets, { ...run, progress: context.progress });
      const attribution = tf.tidy(() => tf.mul(tf.sub(x, baseline), r.multipliers) as tf.Tensor4D);
      r.multipliers.dispose();
      const c = await completeness(attribution, r.fx, r.fb);
      return { attribution, extras: { completenessError: c.completenessError, scoreDifference: c.scoreDifference } };
    } finally {
      baseline.dispose();
    }
  },
  perImageExtras: ['completenessError', 'scoreDifference'],
});
