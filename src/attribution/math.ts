/**
 * Shared math for the attribution methods: integration rules (Captum's conventions), batched input
 * gradients, the scoped modified-ReLU override (guided backprop / deconvnet), bilinear upsampling,
 * Gaussian blur, small dense linear algebra (Cholesky, weighted ridge regression) in float64.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import type { GraphNode, NodeOverride, NodeParams, RunOptions } from '../core/graph.js';
import { targetMask } from '../core/target.js';
import { OptionError } from '../core/errors.js';
import { batchSizeFor } from '../engine/memory.js';

// ---------------------------------------------------------------------------------------------
// Integration rules

export type IntegrationRule = 'riemann-left' | 'riemann-right' | 'riemann-middle' | 'riemann-trapezoid' | 'gauss-legendre';
export const INTEGRATION_RULES: readonly IntegrationRule[] = ['riemann-left', 'riemann-right', 'riemann-middle', 'riemann-trapezoid', 'gauss-legendre'];

/** Legendre P_n(x) and P_{n−1}(x) by the three-term recurrence. */
function legendrePair(n: number, x: number): { pn: number; pn1: number } {
  let p0 = 1;
  let p1 = x;
  for (let j = 2; j <= n; j++) {
    const p2 = ((2 * j - 1) * x * p1 - (j - 1) * p0) / j;
    p0 = p1;
    p1 = p2;
  }
  return n === 1 ? { pn: x, pn1: 1 } : { pn: p1, pn1: p0 };
}

/** P_n'(x) from P_n and P_{n−1}. */
function legendreDerivative(n: number, x: number): number {
  const { pn, pn1 } = legendrePair(n, x);
  return n === 1 ? 1 : (n * (x * pn - pn1)) / (x * x - 1);
}

/** n-point Gauss–Legendre nodes (ascending, on [−1, 1]) and weights, as numpy.polynomial.legendre.leggauss. */
export function gaussLegendre(n: number): { nodes: number[]; weights: number[] } {
  const nodes: number[] = new Array(n);
  const weights: number[] = new Array(n);
  const m = Math.floor((n + 1) / 2);
  for (let i = 0; i < m; i++) {
    // Newton's method from the usual initial guess for the i-th largest root.
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    for (let iter = 0; iter < 100; iter++) {
      const dx = legendrePair(n, x).pn / legendreDerivative(n, x);
      x -= dx;
      if (Math.abs(dx) < 1e-16) break;
    }
    const dp = legendreDerivative(n, x);
    const w = 2 / ((1 - x * x) * dp * dp);
    nodes[n - 1 - i] = x;
    nodes[i] = -x;
    weights[i] = w;
    weights[n - 1 - i] = w;
  }
  return { nodes, weights };
}

/**
 * Points α_k on [0, 1] and step weights s_k of an integration rule, exactly as Captum 0.8
 * (approximation_methods.py): Riemann rules use s_k = 1/n (trapezoid: first and last halved, so
 * Σ s_k = (n−1)/n), α from linspace; Gauss–Legendre uses α = (1 + t)/2, s = w/2.
 */
export function integrationPoints(rule: IntegrationRule, steps: number): { alphas: number[]; weights: number[] } {
  if (!Number.isInteger(steps) || steps < 2) throw new OptionError(`expected steps to be an integer ≥ 2; got ${steps}`);
  const n = steps;
  const linspace = (a: number, b: number) => Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
  switch (rule) {
    case 'gauss-legendre': {
      const { nodes, weights } = gaussLegendre(n);
      return { alphas: nodes.map((t) => 0.5 * (1 + t)), weights: weights.map((w) => 0.5 * w) };
    }
    case 'riemann-trapezoid': {
      const weights = new Array(n).fill(1 / n);
      weights[0] /= 2;
      weights[n - 1] /= 2;
      return { alphas: linspace(0, 1), weights };
    }
    case 'riemann-left':
      return { alphas: linspace(0, 1 - 1 / n), weights: new Array(n).fill(1 / n) };
    case 'riemann-right':
      return { alphas: linspace(1 / n, 1), weights: new Array(n).fill(1 / n) };
    case 'riemann-middle':
      return { alphas: linspace(1 / (2 * n), 1 - 1 / (2 * n)), weights: new Array(n).fill(1 / n) };
    default:
      throw new OptionError(`expected an integration rule (${INTEGRATION_RULES.join(', ')}); got "${String(rule)}"`);
  }
}

// ---------------------------------------------------------------------------------------------
// Batching and gradients

/** [start, count] pairs covering 0..total in chunks of at most `size`. */
export function chunks(total: number, size: number): Array<[number, number]> {
  const s = Math.max(1, Math.floor(size));
  const out: Array<[number, number]> = [];
  for (let i = 0; i < total; i += s) out.push([i, Math.min(s, total - i)]);
  return out;
}

/** Join per-chunk results along the batch axis, taking ownership of the parts (one part is returned as is). */
export function concatBatch<T extends tf.Tensor>(parts: T[]): T {
  if (parts.length === 1) return parts[0];
  const joined = tf.concat(parts, 0) as T;
  tf.dispose(parts);
  return joined;
}

export function positiveInt(name: string, v: unknown, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new OptionError(`expected option ${name} to be an integer ≥ ${min}; got ${String(v)}`);
  return n;
}

export function finiteNumber(name: string, v: unknown, min = -Infinity): number {
  const n = Number(v);
  if (typeof v === 'boolean' || !Number.isFinite(n) || n < min) {
    throw new OptionError(`expected option ${name} to be a number${min > -Infinity ? ` ≥ ${min}` : ''}; got ${String(v)}`);
  }
  return n;
}

export function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw new OptionError(`expected option ${name} to be one of ${allowed.join(', ')}; got ${JSON.stringify(v)}`);
  }
  return v as T;
}

/** Window/stride option: a number or [h, w]. */
export function pairOption(name: string, v: unknown): [number, number] {
  const arr = Array.isArray(v) ? v : [v, v];
  if (arr.length !== 2) throw new OptionError(`expected option ${name} to be a number or [height, width]; got ${JSON.stringify(v)}`);
  return [positiveInt(name, arr[0]), positiveInt(name, arr[1])];
}

/**
 * Gradient of the target logit w.r.t. the input, computed in chunks of at most `batchSize` images
 * (targets per row), fewer when the memory budget says so. `run` can replace single ops for this
 * call only.
 */
export function batchedGradient(
  classifier: Classifier,
  x: tf.Tensor4D,
  targets: number[],
  batchSize = 64,
  run: Omit<RunOptions, 'output' | 'until'> = {},
): tf.Tensor4D {
  const n = x.shape[0];
  const parts: tf.Tensor4D[] = [];
  for (const [s, c] of chunks(n, batchSizeFor(classifier, 'gradient', batchSize, { shape: x.shape.slice(1) }))) {
    parts.push(
      tf.tidy(() => {
        const xs = c === n ? x : tf.slice(x, [s, 0, 0, 0], [c, -1, -1, -1]);
        const mask = targetMask(targets.slice(s, s + c), classifier.numClasses);
        const useRun = Boolean(run.override || run.capture || run.substitute);
        const f = (v: tf.Tensor) => {
          const logits = useRun ? classifier.forward(v, run).logits : classifier.logits(v);
          return tf.sum(tf.mul(logits, mask));
        };
        return tf.grad(f)(xs) as tf.Tensor4D;
      }),
    );
  }
  if (parts.length === 1) return parts[0];
  const out = tf.concat(parts, 0);
  tf.dispose(parts);
  return out;
}

/** Target logits [N] computed in chunks (at most `batchSize`, fewer when the memory budget says so), as a Float32Array. */
export async function batchedScores(classifier: Classifier, x: tf.Tensor4D, targets: number[], batchSize = 256): Promise<Float32Array> {
  const n = x.shape[0];
  const out = new Float32Array(n);
  for (const [s, c] of chunks(n, batchSizeFor(classifier, 'forward', batchSize, { shape: x.shape.slice(1) }))) {
    const t = tf.tidy(() => {
      const xs = c === n ? x : tf.slice(x, [s, 0, 0, 0], [c, -1, -1, -1]);
      return tf.sum(tf.mul(classifier.logits(xs), targetMask(targets.slice(s, s + c), classifier.numClasses)), 1);
    });
    out.set((await t.data()) as Float32Array, s);
    t.dispose();
  }
  return out;
}

/** Repeat each target `times` times as a block (row order: sample-major, i.e. [t0..tN-1, t0..tN-1, …]). */
export function tileTargets(targets: number[], times: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < times; k++) out.push(...targets);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Modified ReLU backward (guided backprop, deconvnet), scoped to one call through a NodeOverride

export type ReluBackward = 'guided' | 'deconvnet';

/**
 * The rectifier an activation node computes, if it is one: y = min(max(z, 0), max). Plain ReLU
 * (also a Conv2D/Dense fused `activation: 'relu'`, which the graph splits into its own node) has
 * max = ∞; ReLU6 (`relu6`, or a Keras ReLU layer with max_value 6) has max = 6; a ReLU layer with
 * another max_value carries it in params.maxValue. A ReLU with a threshold or a negative slope is
 * not a rectifier in this sense (it passes negative values or shifts the kink) and is left alone.
 */
export function rectifierMax(node: GraphNode): number | undefined {
  if (node.kind !== 'activation') return undefined;
  const p = node.params as NodeParams & { maxValue?: number; threshold?: number; negativeSlope?: number };
  if ((p.threshold ?? 0) !== 0 || (p.negativeSlope ?? 0) !== 0) return undefined;
  switch (p.activation) {
    case 'relu':
      return p.maxValue != null && Number.isFinite(p.maxValue) ? Number(p.maxValue) : Infinity;
    case 'relu6':
      return 6;
    default:
      return undefined;
  }
}

/**
 * A NodeOverride that keeps every rectifier's forward pass (the node's own standard op) and replaces
 * its backward, at plain and clipped ReLUs alike (ReLU6 included — Captum hooks every ReLU/ReLU6 module):
 *   guided:    relu(dy · 1[0 < z < max])  — the rectifier's own gradient, then only its positive part
 *              (Captum GuidedBackprop: relu of the module's gradient);
 *   deconvnet: relu(dy)                   — both masks ignored (Captum Deconvolution).
 * The override lives only in the RunOptions of one call, so nothing leaks into other calls.
 */
export function modifiedReluOverride(mode: ReluBackward): NodeOverride {
  return (node, inputs, standard) => {
    const max = rectifierMax(node);
    if (max === undefined) return undefined;
    const op = tf.customGrad(((z: tf.Tensor, save: tf.GradSaveFunc) => {
      save([z]);
      return {
        value: standard([z]),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          if (mode === 'deconvnet') return tf.relu(dy);
          // 1[0 < z < max] as step(z)·step(max − z): float masks from XNNPACK passes on wasm (~5×
          // faster than comparisons + logicalAnd + cast); max − z is exact near max (Sterbenz), so
          // the mask is exact. A NaN z gives NaN, as the network's output then is.
          const zs = saved[0];
          const open = Number.isFinite(max) ? tf.mul(tf.step(zs), tf.step(tf.sub(tf.scalar(max), zs))) : tf.step(zs);
          return tf.mul(tf.relu(dy), open);
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]) as (z: tf.Tensor) => tf.Tensor;
    return op(inputs[0]);
  };
}

// ---------------------------------------------------------------------------------------------
// Images

/** Bilinear resize of [N, h, w, C] to [N, H, W, C] with half-pixel centres (PyTorch align_corners=False). */
export function upsampleBilinear(map: tf.Tensor4D, size: [number, number]): tf.Tensor4D {
  if (map.shape[1] === size[0] && map.shape[2] === size[1]) return tf.clone(map);
  return tf.image.resizeBilinear(map, size, false, true);
}

/** Nearest-neighbour resize (PyTorch mode='nearest': source index floor(dst · in/out)). */
export function upsampleNearest(map: tf.Tensor4D, size: [number, number]): tf.Tensor4D {
  return tf.image.resizeNearestNeighbor(map, size, false, false);
}

/** Broadcast a one-channel map [N, H, W, 1] to C channels. */
export function toChannels(map: tf.Tensor4D, c: number): tf.Tensor4D {
  if (map.shape[3] === c) return map;
  return tf.tidy(() => tf.mul(map, tf.ones([1, 1, 1, c])) as tf.Tensor4D);
}

/** Separable Gaussian blur per channel with zero ('same') padding normalised at the borders. */
export function gaussianBlur(x: tf.Tensor4D, sigma: number): tf.Tensor4D {
  if (sigma <= 0) return tf.clone(x);
  return tf.tidy(() => {
    const r = Math.max(1, Math.ceil(3 * sigma));
    const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
    const s = k.reduce((a, b) => a + b, 0);
    const kn = k.map((v) => v / s);
    const c = x.shape[3];
    const kh = tf.tile(tf.reshape(tf.tensor1d(kn), [2 * r + 1, 1, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
    const kw = tf.tile(tf.reshape(tf.tensor1d(kn), [1, 2 * r + 1, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
    const blur = (v: tf.Tensor4D) => tf.depthwiseConv2d(tf.depthwiseConv2d(v, kh, 1, 'same'), kw, 1, 'same');
    // Normalise by the blurred all-ones image so borders are not darkened.
    const norm = blur(tf.onesLike(x));
    return tf.div(blur(x), norm) as tf.Tensor4D;
  });
}

// ---------------------------------------------------------------------------------------------
// Dense linear algebra (float64, row-major)

/** Cholesky factor L (lower, row-major n×n) of a symmetric positive definite matrix; adds jitter if needed. */
export function cholesky(a: Float64Array, n: number): Float64Array {
  let jitter = 0;
  for (let attempt = 0; attempt < 8; attempt++) {
    const l = new Float64Array(n * n);
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      for (let j = 0; j <= i; j++) {
        let sum = a[i * n + j] + (i === j ? jitter : 0);
        for (let k = 0; k < j; k++) sum -= l[i * n + k] * l[j * n + k];
        if (i === j) {
          if (!(sum > 0)) {
            ok = false;
            break;
          }
          l[i * n + i] = Math.sqrt(sum);
        } else {
          l[i * n + j] = sum / l[j * n + j];
        }
      }
    }
    if (ok) return l;
    let maxDiag = 0;
    for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, Math.abs(a[i * n + i]));
    jitter = jitter === 0 ? Math.max(1e-12, 1e-10 * maxDiag) : jitter * 100;
  }
  throw new Error('internal: matrix is not positive definite');
}

/** Solve L Lᵀ x = b for x, given the Cholesky factor L. */
export function choleskySolve(l: Float64Array, n: number, b: Float64Array): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * y[k];
    y[i] = s / l[i * n + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * x[k];
    x[i] = s / l[i * n + i];
  }
  return x;
}

export interface RidgeFit {
  coef: Float64Array;
  intercept: number;
  /** Weighted coefficient of determination of the fit. */
  score: number;
}

/**
 * Weighted ridge regression with intercept (sklearn Ridge(alpha).fit(X, y, sample_weight=w)): the
 * intercept is not penalised; X and y are centred by their weighted means.
 * X is row-major [m, n] (0/1 entries in LIME); several targets Y [m, t] are fitted at once.
 */
export function weightedRidge(x: Float64Array | Uint8Array, m: number, n: number, ys: Float64Array[], w: Float64Array, alpha: number): RidgeFit[] {
  let wsum = 0;
  for (let i = 0; i < m; i++) wsum += w[i];
  const xmean = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    const wi = w[i];
    if (wi === 0) continue;
    const row = i * n;
    for (let j = 0; j < n; j++) xmean[j] += wi * x[row + j];
  }
  for (let j = 0; j < n; j++) xmean[j] /= wsum;
  // A = Xcᵀ W Xc + αI
  const a = new Float64Array(n * n);
  const xc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    const wi = w[i];
    if (wi === 0) continue;
    const row = i * n;
    for (let j = 0; j < n; j++) xc[j] = x[row + j] - xmean[j];
    for (let j = 0; j < n; j++) {
      const v = wi * xc[j];
      if (v === 0) continue;
      const rj = j * n;
      for (let k = 0; k <= j; k++) a[rj + k] += v * xc[k];
    }
  }
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < j; k++) a[k * n + j] = a[j * n + k];
    a[j * n + j] += alpha;
  }
  const l = cholesky(a, n);
  return ys.map((y) => {
    let ymean = 0;
    for (let i = 0; i < m; i++) ymean += w[i] * y[i];
    ymean /= wsum;
    const b = new Float64Array(n);
    for (let i = 0; i < m; i++) {
      const v = w[i] * (y[i] - ymean);
      if (v === 0) continue;
      const row = i * n;
      for (let j = 0; j < n; j++) b[j] += v * (x[row + j] - xmean[j]);
    }
    const coef = choleskySolve(l, n, b);
    let intercept = ymean;
    for (let j = 0; j < n; j++) intercept -= coef[j] * xmean[j];
    let ssRes = 0;
    let ssTot = 0;
    for (let i = 0; i < m; i++) {
      let pred = intercept;
      const row = i * n;
      for (let j = 0; j < n; j++) pred += coef[j] * x[row + j];
      ssRes += w[i] * (y[i] - pred) ** 2;
      ssTot += w[i] * (y[i] - ymean) ** 2;
    }
    return { coef, intercept, score: ssTot > 0 ? 1 - ssRes / ssTot : 1 };
  });
}

/** Softmax of a row (float64). */
export function softmaxRow(row: ArrayLike<number>): Float64Array {
  let mx = -Infinity;
  for (let i = 0; i < row.length; i++) mx = Math.max(mx, row[i]);
  const out = new Float64Array(row.length);
  let s = 0;
  for (let i = 0; i < row.length; i++) {
    out[i] = Math.exp(row[i] - mx);
    s += out[i];
  }
  for (let i = 0; i < row.length; i++) out[i] /= s;
  return out;
}
