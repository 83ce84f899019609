/**
 * LRP rules as small declarations (the design of Zennit's BasicHook, written anew for tfjs).
 *
 * A rule for a linear layer z = L(x; w) + b is five parts:
 *   - input modifiers  x ↦ x_i            (e.g. x⁺ = max(x, 0), x⁻ = min(x, 0), ones, the bounds l/h)
 *   - param modifiers  (w, b) ↦ (w_i, b_i) (e.g. w⁺ with b⁺, w⁻ with the bias zeroed)
 *   - outputs          z_i = L(x_i; w_i) + b_i, computed by the engine
 *   - gradient mapper  (R, z_1..z_n) ↦ g_i  (usually R divided by a stabilised sum of some z_i)
 *   - reducer          (x_i, c_i = Lᵀ(g_i; w_i)) ↦ relevance at the input (usually Σ x_i · c_i)
 * so every rule (LRP-0, ε, γ, αβ, z⁺, z^B, w², flat) is a few lines on one mechanism (applyRule).
 *
 * An input modifier may return null: "this branch's input is identically zero" (x⁻ of a
 * non-negative input, e.g. after a ReLU); the engine then skips its convolution entirely.
 */
import * as tf from '@tensorflow/tfjs-core';
import { OptionError } from '../../core/errors.js';
import { convTranspose, dilateKernel, type LinearOp } from './linear.js';
import { cachedWeight } from './weight-cache.js';

export interface RuleContext {
  /** The layer's input is known to be ≥ 0 (ReLU output, a [0, h] image…): x⁻ branches vanish. */
  nonNegativeInput: boolean;
  /** Value range of the layer's input, when known (the first layer: the classifier's domain after its transform). */
  bounds?: { low: number; high: number };
  /** Node name, for error messages and cache keys. */
  node: string;
  /** Owner of cached modified weights (the graph); undefined disables caching. */
  cacheOwner?: object;
  /**
   * [1, H, W, 1]: 1 on the layer's real input, 0 on a border an explicit ZeroPadding2D added, when that
   * border is to be treated as the layer's own zero padding (option explicitPadding 'implicit'): the
   * constant inputs (ones, l, h) are 0 there, as a convolution's implicit padding makes them, and the
   * border gets no relevance.
   */
  inputMask?: tf.Tensor;
}

export type InputModifier = (x: tf.Tensor, ctx: RuleContext) => tf.Tensor | null;
export interface Params { w: tf.Tensor; b?: tf.Tensor }
export type ParamModifier = (w: tf.Tensor, b: tf.Tensor | undefined) => Params;

export interface Rule {
  /** Rule name as written in options: 'epsilon', 'zplus', 'alpha-beta', … */
  name: string;
  /** Parameters the rule was made with (for provenance). */
  params: Record<string, number | boolean>;
  inputs: InputModifier[];
  weights: ParamModifier[];
  /** Per branch: the tensor whose Lᵀ is taken (null: branch contributes nothing). */
  gradient(R: tf.Tensor, outputs: Array<tf.Tensor | null>): Array<tf.Tensor | null>;
  /** Relevance at the input from the modified inputs and Lᵀ(g_i; w_i). */
  reduce(inputs: Array<tf.Tensor | null>, grads: Array<tf.Tensor | null>): tf.Tensor;
  /** Whether the rule conserves relevance exactly on bias-free layers (for docs/tests). */
  conservative: boolean;
  /**
   * Branches whose outputs follow from the others and the layer's own output (so their forward
   * convolution is skipped): `fill` writes them into `outputs` (same result as computing them, up to
   * rounding). Used only when the layer's output is at hand.
   */
  derived?: { branches: number[]; fill(outputs: Array<tf.Tensor | null>, layerOutput: tf.Tensor, bias: tf.Tensor | undefined): void };
  /** Optional direct implementation for some ops (same result as the declaration, faster); undefined = use the declaration. */
  direct?: (op: LinearOp, x: tf.Tensor, R: tf.Tensor, ctx?: RuleContext) => tf.Tensor | undefined;
}

// ---- building blocks -------------------------------------------------------------------------

/** Zennit's stabiliser: z + ε · sgn(z) with sgn(0) = +1. */
export function stabilize(z: tf.Tensor, eps: number): tf.Tensor {
  return tf.where(tf.greaterEqual(z, 0), tf.add(z, eps), tf.sub(z, eps));
}

/** Stabiliser for denominators known to be ≥ 0 (z⁺, z^B, w², flat): z + ε. */
const stabPos = (z: tf.Tensor, eps: number) => tf.add(z, eps);

/** Sum of the non-null tensors (null when all are null). */
export function sumOf(ts: Array<tf.Tensor | null | undefined>): tf.Tensor | null {
  const xs = ts.filter((t): t is tf.Tensor => t != null);
  if (xs.length === 0) return null;
  return xs.length === 1 ? xs[0] : tf.addN(xs);
}

const identity: InputModifier = (x) => x;
const positive: InputModifier = (x, ctx) => (ctx.nonNegativeInput ? x : tf.relu(x));
const negative: InputModifier = (x, ctx) => (ctx.nonNegativeInput ? null : tf.minimum(x, 0));
const masked = (t: tf.Tensor, ctx: RuleContext) => (ctx.inputMask ? tf.mul(t, ctx.inputMask) : t);
const ones: InputModifier = (x, ctx) => masked(tf.onesLike(x), ctx);
const low: InputModifier = (x, ctx) => masked(tf.fill(x.shape, requireBounds(ctx).low), ctx);
const high: InputModifier = (x, ctx) => masked(tf.fill(x.shape, requireBounds(ctx).high), ctx);

/**
 * Whether a rule has modified inputs that do not scale with x (flat's and w²'s ones, z^B's bounds):
 * only such rules give a zero-padded border relevance, so only they depend on explicitPadding.
 */
export function usesConstantInputs(rule: Rule): boolean {
  return rule.inputs.some((m) => m === ones || m === low || m === high);
}

function requireBounds(ctx: RuleContext): { low: number; high: number } {
  if (!ctx.bounds) {
    throw new OptionError(
      `expected the z^B (zb) rule only on a layer whose input range is known (the first layer, or pass options low/high); got it on "${ctx.node}"`,
    );
  }
  return ctx.bounds;
}

/** Marks the (identity input, unmodified params) branch so the engine reuses the layer's own output. */
export const IDENTITY_INPUT = identity;

const keep = (withBias: boolean): ParamModifier => (w, b) => ({ w, b: withBias ? b : undefined });
export const UNMODIFIED: ParamModifier = keep(true);
const clampPos = (withBias: boolean): ParamModifier => (w, b) => ({ w: tf.relu(w), b: withBias && b ? tf.relu(b) : undefined });
const clampNeg = (withBias: boolean): ParamModifier => (w, b) => ({ w: tf.minimum(w, 0), b: withBias && b ? tf.minimum(b, 0) : undefined });
const gammaMod = (gamma: number, sign: 1 | -1, withBias: boolean): ParamModifier => (w, b) => {
  const part = (t: tf.Tensor) => (sign > 0 ? tf.relu(t) : tf.minimum(t, 0));
  return { w: tf.add(w, tf.mul(part(w), gamma)), b: withBias && b ? tf.add(b, tf.mul(part(b), gamma)) : undefined };
};

const prod = (a: tf.Tensor | null, b: tf.Tensor | null): tf.Tensor | null => (a && b ? tf.mul(a, b) : null);
const orZeros = (t: tf.Tensor | null, like: () => number[]): tf.Tensor => t ?? tf.zeros(like());

function firstShape(inputs: Array<tf.Tensor | null>, grads: Array<tf.Tensor | null>): () => number[] {
  return () => (inputs.find((t) => t) ?? grads.find((t) => t))!.shape;
}

// ---- the rules -------------------------------------------------------------------------------

export interface RuleOptions {
  /** ε of the ε rule (also the stabiliser of the others). Default 1e-6 (Zennit). */
  epsilon?: number;
  /** Stabiliser of the non-ε rules; default 1e-6 (Zennit). */
  stabilizer?: number;
  gamma?: number;
  alpha?: number;
  beta?: number;
  /** Include the layer bias in the rule's denominators; default true (Zennit). */
  bias?: boolean;
}

/** LRP-ε: R_j = x_j Σ_k w_jk R_k / stab(z_k). ε = 0 gives LRP-0 (with a 1e-12 stabiliser against 0/0). */
export function epsilonRule(epsilon = 1e-6, opts: { bias?: boolean } = {}): Rule {
  const eps = epsilon > 0 ? epsilon : 1e-12;
  const withBias = opts.bias ?? true;
  return {
    name: epsilon > 0 ? 'epsilon' : 'lrp-0',
    params: { epsilon, bias: withBias },
    inputs: [identity],
    weights: [withBias ? UNMODIFIED : keep(false)],
    gradient: (R, [z]) => [tf.div(R, stabilize(z!, eps))],
    reduce: ([x], [c]) => tf.mul(x!, c!),
    conservative: true,
  };
}

export const lrp0Rule = (opts: { bias?: boolean } = {}): Rule => epsilonRule(0, opts);

/**
 * z⁺ (= αβ with α=1, β=0), Zennit's form for inputs of any sign:
 * z⁺_k = Σ x⁺w⁺ + b⁺ + Σ x⁻w⁻,  R_j = Σ_k (x⁺_j w⁺_jk + x⁻_j w⁻_jk) R_k / stab(z⁺_k).
 * bias: false drops b⁺ (seed 002's Deep Taylor form, which conserves relevance exactly).
 */
export function zPlusRule(opts: { stabilizer?: number; bias?: boolean } = {}): Rule {
  const eps = opts.stabilizer ?? 1e-6;
  const withBias = opts.bias ?? true;
  return {
    name: 'zplus',
    params: { stabilizer: eps, bias: withBias },
    inputs: [positive, negative],
    weights: [clampPos(withBias), clampNeg(false)],
    gradient: (R, zs) => {
      const z = sumOf(zs);
      const g = z ? tf.div(R, stabPos(z, eps)) : tf.div(R, eps);
      return [g, g];
    },
    reduce: (xs, cs) => orZeros(sumOf([prod(xs[0], cs[0]), prod(xs[1], cs[1])]), firstShape(xs, cs)),
    conservative: true,
  };
}

/**
 * Signed z⁺, for a unit without a rectifier after it (a linear projection, a residual branch's last
 * conv): written z = max(0, z) − max(0, −z), the unit is two rectified units of which only one is
 * active, and z⁺ is applied to that one — where z_k ≥ 0 its relevance follows the positive
 * contributions (x⁺w⁺ + x⁻w⁻, as z⁺), where z_k < 0 the negative ones (x⁺w⁻ + x⁻w⁺), each divided by
 * its own sum. Every split is convex (shares in [0, 1] summing to 1), so it neither explodes where
 * Σ x w ≈ 0 nor, with bias: false, loses relevance unless the active part has no contribution at all
 * (a unit held active by its bias alone). On a unit behind a ReLU (R_k ≠ 0 only where z_k > 0) it is
 * z⁺. bias: true puts b⁺ (b⁻) in the positive (negative) denominator, as zPlusRule does.
 */
export function signedZPlusRule(opts: { stabilizer?: number; bias?: boolean } = {}): Rule {
  const eps = opts.stabilizer ?? 1e-6;
  const withBias = opts.bias ?? true;
  return {
    name: 'zplus-signed',
    params: { stabilizer: eps, bias: withBias },
    inputs: [positive, negative, positive, negative, identity],
    weights: [clampPos(withBias), clampNeg(false), clampNeg(withBias), clampPos(false), UNMODIFIED],
    // the negative half is z − (positive half), minus the bias when it is left out of both: one
    // convolution fewer (branches 2 and 3 sum to it; the gradient mapper only uses their sum)
    derived: {
      branches: [2, 3],
      fill: (zs, z, b) => {
        const zp = sumOf(zs.slice(0, 2));
        let zn: tf.Tensor = zp ? tf.sub(z, zp) : z;
        if (!withBias && b) zn = tf.sub(zn, b);
        zs[2] = zn;
        zs[3] = null;
      },
    },
    gradient: (R, zs) => {
      const active = tf.greaterEqual(zs[4]!, 0);
      const zp = sumOf(zs.slice(0, 2));
      const zn = sumOf(zs.slice(2, 4));
      const gp = tf.where(active, zp ? tf.div(R, stabPos(zp, eps)) : tf.div(R, eps), tf.zerosLike(R));
      const gn = tf.where(active, tf.zerosLike(R), zn ? tf.div(R, tf.sub(zn, eps)) : tf.div(R, -eps));
      return [gp, gp, gn, gn, null];
    },
    reduce: (xs, cs) => orZeros(sumOf([0, 1, 2, 3].map((i) => prod(xs[i], cs[i]))), firstShape(xs, cs)),
    conservative: true,
  };
}

/** αβ (seed 003 Eq. 4.11; α − β = 1, β ≥ 0): α · (positive part as z⁺) − β · (negative part). */
export function alphaBetaRule(alpha = 2, beta = 1, opts: { stabilizer?: number; bias?: boolean } = {}): Rule {
  if (!(beta >= 0) || !(alpha >= 0) || Math.abs(alpha - beta - 1) > 1e-9) {
    throw new OptionError(`expected alpha − beta = 1 with alpha, beta ≥ 0 for the alpha-beta rule; got alpha=${alpha}, beta=${beta}`);
  }
  const eps = opts.stabilizer ?? 1e-6;
  const withBias = opts.bias ?? true;
  return {
    name: 'alpha-beta',
    params: { alpha, beta, stabilizer: eps, bias: withBias },
    inputs: [positive, negative, positive, negative],
    weights: [clampPos(withBias), clampNeg(false), clampNeg(withBias), clampPos(false)],
    gradient: (R, zs) => {
      // z^p ≥ 0 and z^n ≤ 0 by construction; where z^n = 0 its numerators are 0 too, so the sign of ε there is moot
      const zp = sumOf(zs.slice(0, 2));
      const gp = zp ? tf.div(R, stabPos(zp, eps)) : tf.div(R, eps);
      if (beta === 0) return [gp, gp, null, null];
      const zn = sumOf(zs.slice(2));
      const gn = zn ? tf.div(R, tf.sub(zn, eps)) : tf.div(R, -eps);
      return [gp, gp, gn, gn];
    },
    reduce: (xs, cs) => {
      const pos = sumOf([prod(xs[0], cs[0]), prod(xs[1], cs[1])]);
      const neg = sumOf([prod(xs[2], cs[2]), prod(xs[3], cs[3])]);
      const a = pos ? tf.mul(pos, alpha) : null;
      const b = neg && beta !== 0 ? tf.mul(neg, -beta) : null;
      return orZeros(sumOf([a, b]), firstShape(xs, cs));
    },
    conservative: true,
  };
}

/**
 * γ (generalised, Zennit's form): where z_k > 0 relevance follows x⁺(w + γw⁺) + x⁻(w + γw⁻), where
 * z_k < 0 it follows x⁺(w + γw⁻) + x⁻(w + γw⁺). γ = 0 is LRP-0; γ → ∞ approaches z⁺.
 */
export function gammaRule(gamma = 0.25, opts: { stabilizer?: number; bias?: boolean } = {}): Rule {
  const eps = opts.stabilizer ?? 1e-6;
  const withBias = opts.bias ?? true;
  return {
    name: 'gamma',
    params: { gamma, stabilizer: eps, bias: withBias },
    inputs: [positive, negative, positive, negative, identity],
    weights: [gammaMod(gamma, 1, withBias), gammaMod(gamma, -1, false), gammaMod(gamma, -1, withBias), gammaMod(gamma, 1, false), UNMODIFIED],
    gradient: (R, zs) => {
      const z = zs[4]!;
      const mp = tf.cast(tf.greater(z, 0), 'float32');
      const mn = tf.cast(tf.less(z, 0), 'float32');
      const gp = tf.div(tf.mul(R, mp), stabilize(sumOf(zs.slice(0, 2)) ?? tf.zerosLike(R), eps));
      const gn = tf.div(tf.mul(R, mn), stabilize(sumOf(zs.slice(2, 4)) ?? tf.zerosLike(R), eps));
      return [gp, gp, gn, gn, null];
    },
    reduce: (xs, cs) => orZeros(sumOf([0, 1, 2, 3].map((i) => prod(xs[i], cs[i]))), firstShape(xs, cs)),
    conservative: true,
  };
}

/**
 * z^B (seed 002, Deep Taylor for a bounded input l ≤ x ≤ h):
 * R_i = Σ_j (x_i w_ij − l_i w⁺_ij − h_i w⁻_ij) / Σ_i' (…) R_j. The bias cancels from the denominator.
 */
export function zBoxRule(opts: { stabilizer?: number } = {}): Rule {
  const eps = opts.stabilizer ?? 1e-6;
  return {
    name: 'zb',
    params: { stabilizer: eps },
    inputs: [identity, low, high],
    weights: [keep(false), clampPos(false), clampNeg(false)],
    gradient: (R, [z, zl, zh]) => {
      const g = tf.div(R, stabPos(tf.sub(tf.sub(z!, zl!), zh!), eps));
      return [g, g, g];
    },
    reduce: ([x, l, h], [c, cl, ch]) => tf.sub(tf.sub(tf.mul(x!, c!), tf.mul(l!, cl!)), tf.mul(h!, ch!)),
    conservative: true,
  };
}

/** w² (seed 002): R_i = Σ_j w_ij² / Σ_i' w_i'j² R_j — independent of the input values. Bias excluded. */
export function wSquareRule(opts: { stabilizer?: number } = {}): Rule {
  const eps = opts.stabilizer ?? 1e-6;
  return {
    name: 'w2',
    params: { stabilizer: eps },
    inputs: [ones],
    weights: [(w) => ({ w: tf.square(w) })],
    gradient: (R, [z]) => [tf.div(R, stabPos(z!, eps))],
    reduce: (_, [c]) => c!,
    conservative: true,
  };
}

/**
 * flat: relevance spread uniformly over each output's receptive field (w = 1 on every tap, no bias,
 * input ones). Dense and Conv2D take a direct path (the count of taps is input-independent, and the
 * transpose of an all-ones kernel sums over output channels first); other ops use the declaration.
 */
export function flatRule(opts: { stabilizer?: number } = {}): Rule {
  const eps = opts.stabilizer ?? 1e-6;
  return {
    name: 'flat',
    params: { stabilizer: eps },
    inputs: [ones],
    // taps of the kernel (a depthwise kernel expanded to a full one has structural zeros off its diagonal)
    weights: [(w) => ({ w: tf.cast(tf.notEqual(w, 0), 'float32') })],
    gradient: (R, [z]) => [tf.div(R, stabPos(z!, eps))],
    reduce: (_, [c]) => c!,
    conservative: true,
    direct: (op, x, R, ctx) => {
      if (op.kind === 'dense') {
        const inDim = x.shape[x.rank - 1];
        const g = tf.sum(tf.div(R, inDim + eps), -1, true);
        return tf.mul(tf.onesLike(x), g);
      }
      const geo = op.conv;
      if (!geo) return undefined;
      const [n, h, w, cin] = x.shape;
      const k = dilateKernel(tf.ones([geo.kernelSize[0], geo.kernelSize[1], 1, 1]) as tf.Tensor4D, geo.dilation[0], geo.dilation[1]);
      const inputs = (ctx?.inputMask ?? tf.ones([1, h, w, 1])) as tf.Tensor4D;
      const count = tf.mul(tf.conv2d(inputs, k, geo.strides, geo.padding), cin);
      const g = tf.sum(tf.div(R, tf.add(count, eps)), -1, true) as tf.Tensor4D;
      const c = convTranspose(g, k, [n, h, w, 1], geo.strides, geo.padding);
      return cin === 1 ? c : tf.mul(c, tf.ones([1, 1, 1, cin]));
    },
  };
}

export const RULE_NAMES = ['lrp-0', 'epsilon', 'gamma', 'alpha-beta', 'zplus', 'zplus-signed', 'zb', 'w2', 'flat'] as const;
export type RuleName = (typeof RULE_NAMES)[number];

const ALIASES: Record<string, RuleName> = {
  'lrp-0': 'lrp-0', lrp0: 'lrp-0', zero: 'lrp-0', '0': 'lrp-0',
  epsilon: 'epsilon', eps: 'epsilon',
  gamma: 'gamma',
  'alpha-beta': 'alpha-beta', alphabeta: 'alpha-beta', ab: 'alpha-beta',
  zplus: 'zplus', 'z+': 'zplus', 'z-plus': 'zplus',
  'zplus-signed': 'zplus-signed', 'z+-signed': 'zplus-signed', 'signed-zplus': 'zplus-signed',
  zb: 'zb', zbox: 'zb', 'z-box': 'zb', 'z^b': 'zb', box: 'zb',
  w2: 'w2', 'w-square': 'w2', wsquare: 'w2', 'w²': 'w2',
  flat: 'flat',
};

/** A rule by name ('epsilon', 'zplus', 'alpha-beta', 'gamma', 'zb', 'w2', 'flat', 'lrp-0'). */
export function ruleByName(name: string, opts: RuleOptions = {}): Rule {
  const key = ALIASES[name.toLowerCase()];
  const st = { stabilizer: opts.stabilizer, bias: opts.bias };
  switch (key) {
    case 'lrp-0': return lrp0Rule({ bias: opts.bias });
    case 'epsilon': return epsilonRule(opts.epsilon ?? 1e-6, { bias: opts.bias });
    case 'gamma': return gammaRule(opts.gamma ?? 0.25, st);
    case 'alpha-beta': return alphaBetaRule(opts.alpha ?? 2, opts.beta ?? 1, st);
    case 'zplus': return zPlusRule(st);
    case 'zplus-signed': return signedZPlusRule(st);
    case 'zb': return zBoxRule({ stabilizer: opts.stabilizer });
    case 'w2': return wSquareRule({ stabilizer: opts.stabilizer });
    case 'flat': return flatRule({ stabilizer: opts.stabilizer });
    default:
      throw new OptionError(`expected a rule name (${RULE_NAMES.join(', ')}); got "${name}"`);
  }
}

/**
 * Apply a rule to one linear layer: relevance R at its output → relevance at its input x.
 * `output` is the layer's own (unmodified) output, reused for the identity branch.
 */
export function applyRule(rule: Rule, op: LinearOp, x: tf.Tensor, R: tf.Tensor, ctx: RuleContext, output?: tf.Tensor): tf.Tensor {
  const result = applyRuleUnmasked(rule, op, x, R, ctx, output);
  // a border that is the layer's own padding gets no relevance (flat's and w²'s reducers return Lᵀ(g) unscaled by the input)
  return ctx.inputMask ? tf.mul(result, ctx.inputMask) : result;
}

function applyRuleUnmasked(rule: Rule, op: LinearOp, x: tf.Tensor, R: tf.Tensor, ctx: RuleContext, output?: tf.Tensor): tf.Tensor {
  const direct = rule.direct?.(op, x, R, ctx);
  if (direct) return direct;
  const w = op.kernel();
  const b = op.bias();
  const inputs = rule.inputs.map((m) => m(x, ctx));
  // Modified parameters are cached per (layer, rule, branch) while the weights are unchanged.
  const tag = `${ctx.node}|${rule.name}|${JSON.stringify(rule.params)}`;
  const params = rule.weights.map((m, i): Params => {
    if (m === UNMODIFIED) return { w, b };
    const cache = ctx.cacheOwner;
    if (inputs[i] === null) {
      // a branch whose input is identically zero only matters through its bias
      if (!b) return { w };
      const mb = () => m(tf.zeros([1]), b).b ?? tf.zeros([0]);
      const bb = cache ? cachedWeight(cache, `${tag}|${i}|${m.toString()}|b0`, [b], mb) : mb();
      return { w, b: bb.size ? bb : undefined };
    }
    if (!cache) return m(w, b);
    const key = `${tag}|${i}|${m.toString()}`;
    const mw = cachedWeight(cache, `${key}|w`, [w, b], () => m(w, b).w);
    const mbv = b ? cachedWeight(cache, `${key}|b`, [w, b], () => m(w, b).b ?? tf.zeros([0])) : undefined;
    return { w: mw, b: mbv && mbv.size ? mbv : undefined };
  });
  const derive = rule.derived && output && !output.isDisposed ? rule.derived : undefined;
  const outputs = inputs.map((xi, i) => {
    const p = params[i];
    if (derive?.branches.includes(i)) return null; // filled in below from the others
    if (xi === null) return p.b ? tf.add(tf.zerosLike(R), p.b) : null;
    if (output && rule.inputs[i] === IDENTITY_INPUT && rule.weights[i] === UNMODIFIED && !output.isDisposed) return output;
    return op.forward(xi, p.w, p.b);
  });
  if (derive) derive.fill(outputs, output!, b);
  const grads = rule.gradient(R, outputs);
  const back = grads.map((g, i) => (g && inputs[i] ? op.transpose(g, params[i].w, x.shape) : null));
  return rule.reduce(inputs, back);
}
