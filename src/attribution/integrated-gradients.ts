/**
 * `integrated-gradients` (Sundararajan et al. 2017), with Captum 0.8's conventions:
 * attr = (x − x̄) · Σ_k s_k ∂f_c/∂x(x̄ + α_k (x − x̄)), points and step weights from `rule`
 * (see integrationPoints: trapezoid uses s_k = 1/n with first and last halved; Gauss–Legendre is the
 * default). Interpolated images are evaluated `internalBatchSize` at a time, so memory stays bounded
 * whatever the number of steps; with a worker pool the chunks are spread over its threads. extras.completenessError[i] = Σ attr_i − (f(x_i) − f(x̄_i)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import { batchSizeFor } from '../engine/memory.js';
import { defineChunkKernel } from '../engine/pool/kernels.js';
import { mapChunks } from '../engine/pool/map.js';
import { chunkSizeFor, planLanes } from '../engine/pool/plan.js';
import { batchedScores, finiteNumber, gaussianBlur, INTEGRATION_RULES, integrationPoints, oneOf, positiveInt, type IntegrationRule } from './math.js';

export type BaselineSpec = 'zeros' | 'constant' | 'blurred' | tf.Tensor;

export interface IntegratedGradientsOptions {
  /** 'zeros', 'constant' (baselineValue), 'blurred' (Gaussian blur of the input, blurSigma), or a tensor [H,W,C], [1,H,W,C] or [N,H,W,C]. */
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  steps: number;
  rule: IntegrationRule;
  /** Interpolated images per gradient call, at most (fewer when the memory budget says so). */
  internalBatchSize: number;
}

/** The baseline batch [N,H,W,C] for x. The caller disposes it. */
export function makeBaseline(classifier: Classifier, x: tf.Tensor4D, spec: unknown, value: number, sigma: number): tf.Tensor4D {
  if (spec instanceof tf.Tensor) {
    const [n, h, w, c] = x.shape;
    const b = spec.rank === 3 ? tf.expandDims(spec, 0) : spec;
    if (b.rank !== 4 || b.shape[1] !== h || b.shape[2] !== w || b.shape[3] !== c || (b.shape[0] !== 1 && b.shape[0] !== n)) {
      if (b !== spec) b.dispose();
      throw new OptionError(`expected a baseline tensor of shape [${h}, ${w}, ${c}], [1, ${h}, ${w}, ${c}] or [${n}, ${h}, ${w}, ${c}]; got [${spec.shape.join(', ')}]`);
    }
    const out = tf.tidy(() => tf.add(tf.zerosLike(x), b) as tf.Tensor4D);
    if (b !== spec) b.dispose();
    return out;
  }
  const kind = oneOf('baseline', spec, ['zeros', 'constant', 'blurred'] as const);
  if (kind === 'zeros') return tf.zerosLike(x);
  if (kind === 'constant') return tf.fill(x.shape, finiteNumber('baselineValue', value)) as tf.Tensor4D;
  return gaussianBlur(x, finiteNumber('blurSigma', sigma, 0));
}

interface PathShared {
  x: tf.Tensor4D;
  baseline: tf.Tensor4D;
  targets: number[];
  alphas: number[];
  weights: number[];
}

/** One chunk: images i0..i0+gi, integration points k0..k0+sk. */
interface PathChunk {
  i0: number;
  gi: number;
  k0: number;
  sk: number;
}

/** Σ over the chunk's points of s_k ∇f(x̄ + α_k (x − x̄)) for the chunk's images, [gi,H,W,C]. */
const pathChunk = defineChunkKernel<PathShared, PathChunk, tf.Tensor4D>('integrated-gradients/path', (classifier, sh, { i0, gi, k0, sk }) => tf.tidy(() => {
  const { x, baseline } = sh;
  const xi = tf.slice(x, [i0, 0, 0, 0], [gi, -1, -1, -1]);
  const bi = tf.slice(baseline, [i0, 0, 0, 0], [gi, -1, -1, -1]);
  const diff = tf.sub(xi, bi);
  const mask = targetMask(tileTargetsBlock(sh.targets.slice(i0, i0 + gi), 1), classifier.numClasses);
  const a = tf.reshape(tf.tensor1d(sh.alphas.slice(k0, k0 + sk)), [sk, 1, 1, 1, 1]);
  const pts = tf.reshape(tf.add(tf.expandDims(bi, 0), tf.mul(a, tf.expandDims(diff, 0))), [sk * gi, x.shape[1], x.shape[2], x.shape[3]]) as tf.Tensor4D;
  const m = tf.tile(mask, [sk, 1]);
  const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(classifier.logits(v), m)))(pts);
  const w = tf.reshape(tf.tensor1d(sh.weights.slice(k0, k0 + sk)), [sk, 1, 1, 1, 1]);
  return tf.sum(tf.mul(tf.reshape(grad, [sk, gi, x.shape[1], x.shape[2], x.shape[3]]), w), 0) as tf.Tensor4D;
}));

/**
 * Σ_k s_k ∇f(x̄ + α_k (x − x̄)) for every image, evaluated internalBatchSize interpolants at a time
 * (fewer, and spread over the pool's threads, when the call has more than one lane: engine/pool).
 * Returns the weighted gradient sum [N,H,W,C] (not yet multiplied by x − x̄).
 */
export async function pathGradientSum(
  classifier: Classifier,
  x: tf.Tensor4D,
  baseline: tf.Tensor4D,
  targets: number[],
  alphas: number[],
  weights: number[],
  internalBatchSize: number,
  progress?: (f: number, label?: string) => void,
): Promise<tf.Tensor4D> {
  const [n] = x.shape;
  const steps = alphas.length;
  const plan = await planLanes(classifier, n * steps, 'gradient');
  // internalBatchSize is an upper bound; the memory budget may allow fewer interpolants per call.
  const rows = chunkSizeFor(n * steps, batchSizeFor(classifier, 'gradient', internalBatchSize), plan.lanes);
  const g = Math.min(n, rows);
  const s = Math.max(1, Math.floor(rows / g));
  const chunkList: PathChunk[] = [];
  for (let i0 = 0; i0 < n; i0 += g) {
    for (let k0 = 0; k0 < steps; k0 += s) chunkList.push({ i0, gi: Math.min(g, n - i0), k0, sk: Math.min(s, steps - k0) });
  }
  // one running sum per image group, added to in chunk order
  const groups: tf.Tensor4D[] = [];
  try {
    await mapChunks(classifier, pathChunk, {
      lanes: plan,
      shared: { x, baseline, targets, alphas, weights },
      count: chunkList.length,
      payload: (i) => chunkList[i],
      onResult: (i, summed) => {
        const gIndex = chunkList[i].i0 / g;
        const acc = groups[gIndex];
        if (!acc) groups[gIndex] = summed;
        else {
          groups[gIndex] = tf.add(acc, summed) as tf.Tensor4D;
          tf.dispose([acc, summed]);
        }
      },
      progress: progress ? (f) => progress(f, 'integrated gradients') : undefined,
    });
  } catch (err) {
    tf.dispose(groups);
    throw err;
  }
  if (groups.length === 1) return groups[0];
  const out = tf.concat(groups, 0);
  tf.dispose(groups);
  return out;
}

function tileTargetsBlock(t: number[], times: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < times; k++) out.push(...t);
  return out;
}

/** Integrated gradients of x against a baseline batch; returns the attribution and per-image completeness error. */
export async function integratedGradients(
  classifier: Classifier,
  x: tf.Tensor4D,
  baseline: tf.Tensor4D,
  targets: number[],
  opts: { steps: number; rule: IntegrationRule; internalBatchSize: number; progress?: (f: number, label?: string) => void },
): Promise<{ attribution: tf.Tensor4D; completenessError: number[]; scoreDifference: number[] }> {
  const { alphas, weights } = integrationPoints(opts.rule, opts.steps);
  const gsum = await pathGradientSum(classifier, x, baseline, targets, alphas, weights, opts.internalBatchSize, opts.progress);
  const attribution = tf.tidy(() => tf.mul(tf.sub(x, baseline), gsum) as tf.Tensor4D);
  gsum.dispose();
  const sums = tf.sum(attribution, [1, 2, 3]);
  const total = (await sums.data()) as Float32Array;
  sums.dispose();
  const fx = await batchedScores(classifier, x, targets);
  const fb = await batchedScores(classifier, baseline, targets);
  const scoreDifference = Array.from(fx, (v, i) => v - fb[i]);
  return { attribution, completenessError: Array.from(total, (v, i) => v - scoreDifference[i]), scoreDifference };
}

registerMethod<IntegratedGradientsOptions>({
  name: 'integrated-gradients',
  family: 'attribution',
  description: 'integrated gradients along the straight path from a baseline (Captum conventions; Gauss–Legendre by default)',
  signed: true,
  parallel: 'chunks',
  defaults: { baseline: 'zeros', baselineValue: 0, blurSigma: 5, steps: 50, rule: 'gauss-legendre', internalBatchSize: 128 },
  async run(classifier, x, targets, options, context) {
    const rule = oneOf('rule', options.rule, INTEGRATION_RULES);
    const steps = positiveInt('steps', options.steps, 2);
    const internalBatchSize = positiveInt('internalBatchSize', options.internalBatchSize);
    const baseline = makeBaseline(classifier, x, options.baseline, options.baselineValue, options.blurSigma);
    try {
      const r = await integratedGradients(classifier, x, baseline, targets, { steps, rule, internalBatchSize, progress: context.progress });
      return { attribution: r.attribution, extras: { completenessError: r.completenessError, scoreDifference: r.scoreDifference } };
    } finally {
      baseline.dispose();
    }
  },
});
