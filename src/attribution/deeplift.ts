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
 *     effect for a pool that directly reads the output of an activation Captum hooks (ReLU, ELU,
 *     leaky ReLU, sigmoid, tanh, softplus, softmax: both modules hook the same tensor; FORMAT.md §4
 *     "DeepLift details") — there the plain gradient, elsewhere the rule.
 *   - everything else (Dense, Conv2D, DepthwiseConv2D, BatchNorm, Add, Concatenate, average pooling,
 *     padding, reshapes, Multiply): the plain gradient, as in Captum 0.8 (linear layers need nothing
 *     else; Multiply of two varying inputs is not summation-exact under it).
 *   - softmax / log-softmax inside the network: plain gradient (not element-wise).
 *   - `rule: 'reveal-cancel'` (Shrikumar et al. §3.5.3, which Captum lacks): at every element-wise
 *     activation fed by a Dense / Conv2D / DepthwiseConv2D (directly or through a BatchNorm, folded
 *     in) that nothing else reads, the positive and negative contributions to the change of its input
 *     get their own multipliers (revealCancelOp); other activations keep Rescale. Summation-to-delta
 *     holds either way.
 *
 * extras: completenessError[i] = Σ attr_i − (f(x_i) − f(b_i)) (Captum's convergence delta, the
 * summation-to-delta error) and scoreDifference[i] = f(x_i) − f(b_i).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import type { GraphNode, NodeOverride } from '../core/graph.js';
import { targetMask } from '../core/target.js';
import { availableBudget, batchSizeFor, footprint, formatBytes } from '../engine/memory.js';
import { MemoryBudgetError } from '../core/errors.js';
import { customOp } from './propagation/propagate.js';
import { linearOpOf } from './propagation/linear.js';
import { makeBaseline, type BaselineSpec } from './integrated-gradients.js';
import { chunks, finiteNumber, oneOf, positiveInt, rectifierMax } from './math.js';

export type DeepLiftMaxPoolRule = 'rescale' | 'gradient' | 'captum';
export const DEEPLIFT_MAXPOOL_RULES: readonly DeepLiftMaxPoolRule[] = ['rescale', 'gradient', 'captum'];

export interface DeepLiftOptions {
  /** 'zeros', 'constant' (baselineValue), 'blurred' (blurSigma), or a tensor [H,W,C], [1,H,W,C] or [N,H,W,C]. */
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  /** Nonlinearities: 'rescale' (default, Captum) or 'reveal-cancel' (at activations fed by a linear layer; Rescale elsewhere). */
  rule: DeepLiftNonlinearRule;
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
 * routed to x's arg-max where |Δz| < eps. With d = o_x − o_b the two parts are
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
    // the fallback routes both halves to x's arg-max, so the halves keep one multiplier per unit (Captum
    // routes the baseline half to the baseline's arg-max; only units where x = b see the difference,
    // but the next max-pool rule mixes the halves, and with Reveal-Cancel that broke summation-to-delta)
    const plain = timesShared(tf.onesLike(zs), halves(unpool(dy4, zs, y4, attrs))[0]);
    return tf.where(tf.reshape(tf.concat([small, small], 0), zs.shape), plain, rule);
  });
}

export type DeepLiftNonlinearRule = 'rescale' | 'reveal-cancel';
export const DEEPLIFT_NONLINEAR_RULES: readonly DeepLiftNonlinearRule[] = ['rescale', 'reveal-cancel'];

/**
 * Where Reveal-Cancel can apply: an element-wise activation fed by a linear layer (Dense, Conv2D,
 * DepthwiseConv2D), directly or through a BatchNormalization (folded into the linear map: a
 * per-channel scale), whose output nothing else reads. Returns the linear node and the BN node.
 */
function revealCancelSource(graph: NonNullable<Classifier['graph']>, consumers: Map<string, number>, act: GraphNode): { linear: GraphNode; bn?: GraphNode } | undefined {
  let src = graph.byName.get(act.inputs[0]);
  let bn: GraphNode | undefined;
  if (src?.kind === 'batchnorm') {
    if ((consumers.get(src.name) ?? 0) !== 1) return undefined;
    bn = src;
    src = graph.byName.get(src.inputs[0]);
  }
  if (!src || (src.kind !== 'dense' && src.kind !== 'conv2d' && src.kind !== 'depthwise-conv2d')) return undefined;
  if ((consumers.get(src.name) ?? 0) !== 1) return undefined;
  return { linear: src, bn };
}

/** The linear map's kernel with a following BN's scale γ/√(σ² + ε) folded into its output channels. */
function foldedKernel(linear: GraphNode, bn: GraphNode | undefined): tf.Tensor {
  const w = linearOpOf(linear).kernel();
  if (!bn) return w;
  const p = bn.params.batchNorm!();
  const scale = tf.div(p.gamma ?? tf.onesLike(p.variance), tf.sqrt(tf.add(p.variance, p.epsilon)));
  if (linear.kind === 'depthwise-conv2d') return tf.mul(w, tf.reshape(scale, [w.shape[2]!, w.shape[3]!]));
  return tf.mul(w, scale);
}

/**
 * Reveal-Cancel (Shrikumar et al. 2017, §3.5.3) at activation y = f(z), z = L(a) (+ BN): the change of
 * z is split into its positive and negative contributions, Δz⁺ = L(Δa⁺; W⁺) + L(Δa⁻; W⁻) and
 * Δz⁻ = L(Δa⁻; W⁺) + L(Δa⁺; W⁻); Δy⁺ = ½[f(z_b + Δz⁺) − f(z_b)] + ½[f(z_b + Δz⁻ + Δz⁺) − f(z_b + Δz⁻)],
 * Δy⁻ likewise with the roles swapped (Δy⁺ + Δy⁻ = Δy), m± = Δy±/Δz± (the derivative at z_b where
 * |Δz±| < eps). Back through L, a contribution w·Δa carries m⁺ when it is positive and m⁻ when
 * negative: for Δa > 0 the input multiplier is Lᵀ(g m⁺; W⁺) + Lᵀ(g m⁻; W⁻), for Δa < 0
 * Lᵀ(g m⁺; W⁻) + Lᵀ(g m⁻; W⁺), their mean where Δa = 0 (the DeepLIFT package's convention).
 * The op takes L's input a and the activation's input z (which it returns no gradient for: the
 * whole backward goes to a), so the forward is not recomputed.
 */
function revealCancelOp(act: GraphNode, linear: GraphNode, bn: GraphNode | undefined, a: tf.Tensor, z: tf.Tensor, standard: (ins: tf.Tensor[]) => tf.Tensor, eps: number): tf.Tensor {
  const op = linearOpOf(linear);
  return customOp([a, z], (xs) => standard([xs[1]]), (dy, [as, zs], y) => {
    const n = as.shape[0] / 2;
    const inner = as.shape.slice(1);
    const [ax, ab] = halves(as);
    const da = tf.reshape(tf.sub(ax, ab), [n, ...inner]);
    const dPos = tf.relu(da);
    const dNeg = tf.sub(da, dPos);
    const w = foldedKernel(linear, bn);
    const wPos = tf.relu(w);
    const wNeg = tf.sub(w, wPos);
    const zPos = tf.add(op.forward(dPos, wPos), op.forward(dNeg, wNeg));
    const zNeg = tf.add(op.forward(dNeg, wPos), op.forward(dPos, wNeg));
    const zb = tf.reshape(halves(zs)[1], zPos.shape);
    const [yx, yb] = halves(y).map((t) => tf.reshape(t, zPos.shape));
    const f = (v: tf.Tensor) => standard([v]);
    // f(z_b + Δz⁺ + Δz⁻) is f(z_x) = y_x exactly: using it (not the float32 sum, where large Δz⁺ and
    // Δz⁻ cancel) keeps Δy⁺ + Δy⁻ = y_x − y_b, so summation-to-delta survives float32
    const fPos = f(tf.add(zb, zPos));
    const fNeg = f(tf.add(zb, zNeg));
    const yPos = tf.mul(tf.add(tf.sub(fPos, yb), tf.sub(yx, fNeg)), 0.5);
    const yNeg = tf.mul(tf.add(tf.sub(fNeg, yb), tf.sub(yx, fPos)), 0.5);
    const deriv = localDerivative(act, zb, standard);
    const mPos = tf.reshape(tf.where(tf.less(tf.abs(zPos), eps), deriv, tf.div(yPos, zPos)), [1, -1]);
    const mNeg = tf.reshape(tf.where(tf.less(tf.abs(zNeg), eps), deriv, tf.div(yNeg, zNeg)), [1, -1]);
    const gPos = timesShared(dy, mPos);
    const gNeg = timesShared(dy, mNeg);
    const up = tf.add(op.transpose(gPos, wPos, as.shape), op.transpose(gNeg, wNeg, as.shape));
    const down = tf.add(op.transpose(gPos, wNeg, as.shape), op.transpose(gNeg, wPos, as.shape));
    // 1 / 0 masks of the sign of Δa, the same on both halves
    const both = (t: tf.Tensor) => tf.reshape(tf.mul(tf.ones([2, 1]), tf.reshape(tf.cast(t, 'float32'), [1, -1])), as.shape);
    const pos = both(tf.greater(da, 0));
    const neg = both(tf.less(da, 0));
    const zero = tf.sub(1, tf.add(pos, neg));
    const ga = tf.add(tf.add(tf.mul(up, pos), tf.mul(down, neg)), tf.mul(tf.mul(tf.add(up, down), 0.5), zero));
    return [ga, tf.zerosLike(zs)];
  });
}

/**
 * Whether Captum 0.8 hooks the module this activation node stands for (its SUPPORTED_NON_LINEAR
 * table, keyed by exact type: ReLU, ELU, LeakyReLU, Sigmoid, Tanh, Softplus, Softmax — not ReLU6 or
 * a clipped ReLU). A max pool reading such a module's output loses its override in Captum.
 */
function captumHooks(node: GraphNode): boolean {
  if (node.kind !== 'activation') return false;
  const a = node.params.activation;
  if (a === 'relu') return rectifierMax(node) === Infinity;
  return a === 'elu' || a === 'leakyrelu' || a === 'sigmoid' || a === 'tanh' || a === 'softplus' || a === 'softmax';
}

/** The DeepLIFT node override for one call. */
export function deepLiftOverride(classifier: Classifier, rule: DeepLiftMaxPoolRule, eps: number, nonlinear: DeepLiftNonlinearRule = 'rescale'): NodeOverride {
  const graph = classifier.graph!;
  const consumers = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  // Reveal-Cancel: the input of each linear layer that feeds an activation, kept during the forward pass
  const sources = new Map<string, { linear: GraphNode; bn?: GraphNode }>();
  if (nonlinear === 'reveal-cancel') {
    for (const n of graph.nodes) {
      if (!isRescaleNode(n)) continue;
      const src = revealCancelSource(graph, consumers, n);
      if (src) sources.set(n.name, src);
    }
  }
  const linearInputs = new Set([...sources.values()].map((s) => s.linear.name));
  const stash = new Map<string, tf.Tensor>();
  return (node, inputs, standard) => {
    if (linearInputs.has(node.name)) {
      stash.set(node.name, inputs[0]);
      return undefined;
    }
    if (isRescaleNode(node)) {
      const src = sources.get(node.name);
      const a = src && stash.get(src.linear.name);
      if (src && a) return revealCancelOp(node, src.linear, src.bn, a, inputs[0], standard, eps);
      return rescaleOp(node, inputs[0], standard, eps);
    }
    if (node.kind === 'maxpool' || node.kind === 'global-maxpool') {
      if (rule === 'gradient') return undefined;
      if (rule === 'captum') {
        const src = graph.byName.get(node.inputs[0]);
        if (src && captumHooks(src)) return undefined;
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
  opts: { maxPoolRule: DeepLiftMaxPoolRule; eps: number; batchSize: number; rule?: DeepLiftNonlinearRule; progress?: (f: number, label?: string) => void },
): Promise<DeepLiftRun> {
  const n = x.shape[0];
  const override = deepLiftOverride(classifier, opts.maxPoolRule, opts.eps, opts.rule ?? 'rescale');
  const per = batchSizeFor(classifier, 'gradient', opts.batchSize, { shape: x.shape.slice(1), rowsPerSample: 2 });
  // one image is two rows (input and baseline): fail before any work when not even that fits
  const pair = 2 * footprint(classifier, x.shape.slice(1)).gradient;
  const budget = availableBudget();
  if (pair > budget) {
    throw new MemoryBudgetError(`deeplift evaluates an image and its baseline together: one pair of classifier "${classifier.name}" needs ${formatBytes(pair)} for a forward and backward pass; the memory budget is ${formatBytes(budget)}: raise it (setMemoryBudget, GLASSWING_MEMORY_BUDGET or the call's memoryBudget)`, pair, budget);
  }
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
export function deepLiftRunOptions(options: { rule: unknown; maxPoolRule: unknown; eps: unknown; batchSize: unknown }): { rule: DeepLiftNonlinearRule; maxPoolRule: DeepLiftMaxPoolRule; eps: number; batchSize: number } {
  return {
    rule: oneOf('rule', options.rule, DEEPLIFT_NONLINEAR_RULES),
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
  defaults: { baseline: 'zeros', baselineValue: 0, blurSigma: 5, rule: 'rescale', maxPoolRule: 'rescale', eps: 1e-10, batchSize: 64 },
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
