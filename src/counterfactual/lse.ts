/**
 * Latent sympathetic examples (seed 000) and latent adversarial examples.
 *
 *   x' = g(z + ε) + x − g(z),  z = e(x)
 *   ε ← ε − λ ∂CE(c(x'), y)/∂ε   (plain gradient descent, λ = 0.1)
 *
 * stopping as soon as c(x') = y (or after maxSteps). `lse` explains a mistake: y is the correct
 * class (pass it as the target); `lae` pushes a correctly classified image to another class (the
 * target). x' is computed as x + (g(z + ε) − g(z)), the same quantity, so that ε = 0 gives x exactly.
 *
 * Two presets. `'seed'` is seed 000 to the letter: constant λ = 0.1 on each image's own
 * cross-entropy, ε returned at the first step where c(x') = y, x' not clipped. `'glasswing'` (the
 * default) runs the same descent and then bisects the last step: the seed's rule stops one whole
 * step past the decision boundary, and with λ = 0.1 that step is most of ‖ε‖ (measured on the
 * shipped VAEs: the searches stop after 2–4 steps; docs/contrastive.md). `refine` bisections of
 * the segment [ε_{n−1}, ε_n] return a point where c(x') = y within 2^−refine of a step of the
 * boundary, at one forward pass per bisection — the seed's search with the overshoot removed.
 *
 * Attribution: the perturbation x' − x. Extras (per image): perturbed (x', tensor), epsNorm ‖ε‖,
 * epsNormAtStop (‖ε‖ at the stopping step, before refinement: the seed's figure), steps, success,
 * predicted (class of x' at the end), z (the code e(x)), path (z + ε at every step, when
 * recordPath), ce (cross-entropy at every step, when recordPath), generator name.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod, type MethodResult } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import { resolveGenerator, latentCode, rows, type GeneratorOption } from './latent.js';
import type { Generator } from '../generative/types.js';

export type LsePreset = 'glasswing' | 'seed';

export interface LseOptions {
  /**
   * 'glasswing' (default): the seed's descent, then `refine` bisections of the last step.
   * 'seed': seed 000 to the letter — overrides stepSize (0.1), refine (0) and clip (false).
   */
  preset: LsePreset;
  /** Bisections of the last step once c(x') = y (0: return ε at the stopping step, as the seed). Default 10. */
  refine: number;
  /** Generator object or name under models/. Default 'mnist-vae-10d'. */
  generator: GeneratorOption;
  /** Step size λ. Default 0.1 (seed 000 §3.2). */
  stepSize: number;
  /** Step limit. Default 500. */
  maxSteps: number;
  /** Record z + ε and the cross-entropy at every step. Default true. */
  recordPath: boolean;
  /** Clip x' to the classifier's input range. Default false (the seed does not clip). */
  clip: boolean;
  /** Latent code for generators without an encoder: steps of Algorithm 2 (seed 001). Default 300. */
  inversionSteps: number;
  /** Seed for the random start of Algorithm 2. Default 1. */
  seed: number;
}

export const LSE_DEFAULTS: LseOptions = {
  preset: 'glasswing',
  refine: 10,
  generator: 'mnist-vae-10d',
  stepSize: 0.1,
  maxSteps: 500,
  recordPath: true,
  clip: false,
  inversionSteps: 300,
  seed: 1,
};

export interface LatentSearchResult {
  perturbed: tf.Tensor4D;
  perturbation: tf.Tensor4D;
  logitsAfter: tf.Tensor2D;
  epsilon: number[][];
  epsNorm: number[];
  /** ‖ε‖ at the stopping step, before refinement (equals epsNorm with refine 0). */
  epsNormAtStop: number[];
  steps: number[];
  success: boolean[];
  predicted: number[];
  z: number[][];
  path: number[][][];
  ce: number[][];
}

/** Seed 000 §2.2 / §3.2: λ = 0.1, stop at the first c(x') = y (no refinement), no clipping. */
export const SEED_000 = { stepSize: 0.1, refine: 0, clip: false } as const;

/** The options in force: a preset applied over the given ones, checked. */
export function resolveLseOptions(o: LseOptions): LseOptions {
  const preset = o.preset ?? 'glasswing';
  if (preset !== 'glasswing' && preset !== 'seed') throw new OptionError(`expected preset 'glasswing' or 'seed'; got ${String(preset)}`);
  const r: LseOptions = { ...o, preset, refine: o.refine ?? LSE_DEFAULTS.refine, ...(preset === 'seed' ? SEED_000 : {}) };
  if (!(r.stepSize > 0)) throw new OptionError(`expected stepSize > 0; got ${r.stepSize}`);
  if (!Number.isInteger(r.maxSteps) || r.maxSteps < 0) throw new OptionError(`expected maxSteps an integer ≥ 0; got ${r.maxSteps}`);
  if (!Number.isInteger(r.refine) || r.refine < 0) throw new OptionError(`expected refine an integer ≥ 0; got ${r.refine}`);
  return r;
}

/**
 * The LSE/LAE search for a batch: each image moves toward its own target class and stops on its own.
 */
export async function latentSearch(classifier: Classifier, gen: Generator, x: tf.Tensor4D, targets: number[], options: LseOptions): Promise<LatentSearchResult> {
  const o = resolveLseOptions(options);
  const n = x.shape[0];
  const k = classifier.numClasses;
  const preds = await classifier.predictClasses(x);
  const { z0 } = await latentCode(gen, x, { steps: o.inversionSteps, seed: o.seed }, classifier, preds);
  const gz = tf.tidy(() => gen.decode(z0));
  const mask = targetMask(targets, k);
  const lo = classifier.domain.low;
  const hi = classifier.domain.high;
  const perturbedOf = (eps: tf.Tensor2D): tf.Tensor4D => {
    const xp = tf.add(x, tf.sub(gen.decode(tf.add(z0, eps) as tf.Tensor2D), gz)) as tf.Tensor4D;
    return o.clip ? tf.clipByValue(xp, lo, hi) : xp;
  };
  let eps = tf.zeros([n, gen.latentDim]) as tf.Tensor2D;
  // ε one step before the current one, per image (its last step's start: where refinement begins).
  let prev = tf.zeros([n, gen.latentDim]) as tf.Tensor2D;
  const active = new Array<boolean>(n).fill(true);
  const steps = new Array<number>(n).fill(o.maxSteps);
  const success = new Array<boolean>(n).fill(false);
  const zArr = await rows(z0);
  const path: number[][][] = zArr.map(() => []);
  const ce: number[][] = zArr.map(() => []);
  const lossOf = (e: tf.Tensor2D, keep: { logits?: tf.Tensor2D }) => {
    const logits = classifier.logits(perturbedOf(e));
    keep.logits = tf.keep(logits);
    // Σ_i CE(c(x'_i), y_i)
    return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), mask))) as tf.Scalar;
  };
  for (let step = 0; ; step++) {
    const last = step >= o.maxSteps;
    const keep: { logits?: tf.Tensor2D } = {};
    let grad: tf.Tensor2D | undefined;
    if (last) {
      tf.tidy(() => {
        lossOf(eps, keep);
      });
    } else {
      grad = tf.tidy(() => tf.grad((e: tf.Tensor) => lossOf(e as tf.Tensor2D, keep))(eps) as tf.Tensor2D);
    }
    const ceT = o.recordPath ? tf.tidy(() => tf.neg(tf.sum(tf.mul(tf.logSoftmax(keep.logits!), mask), 1))) : undefined;
    const [logitsArr, epsArr, ceArr] = await Promise.all([
      keep.logits!.array() as Promise<number[][]>,
      o.recordPath ? (eps.array() as Promise<number[][]>) : Promise.resolve([] as number[][]),
      ceT ? (ceT.array() as Promise<number[]>) : Promise.resolve([] as number[]),
    ]);
    keep.logits!.dispose();
    ceT?.dispose();
    for (let i = 0; i < n; i++) {
      if (!active[i]) continue;
      if (o.recordPath) {
        path[i].push(zArr[i].map((v, j) => v + epsArr[i][j]));
        ce[i].push(ceArr[i]);
      }
      const row = logitsArr[i];
      const argmax = row.indexOf(Math.max(...row));
      if (argmax === targets[i]) {
        active[i] = false;
        success[i] = true;
        steps[i] = step;
      }
    }
    if (last || !active.some(Boolean)) {
      grad?.dispose();
      break;
    }
    const act = tf.tensor2d(active.map((a) => [a ? 1 : 0]), [n, 1]);
    const next = tf.tidy(() => tf.sub(eps, tf.mul(tf.mul(grad!, act), o.stepSize)) as tf.Tensor2D);
    const nextPrev = tf.tidy(() => tf.add(tf.mul(eps, act), tf.mul(prev, tf.sub(1, act))) as tf.Tensor2D);
    tf.dispose([grad!, act, eps, prev]);
    eps = next;
    prev = nextPrev;
  }
  const epsNormAtStop = (await rows(eps)).map((e) => Math.hypot(...e));
  // Refinement: bisect [ε_{n−1}, ε_n] of every image that succeeded after ≥ 1 step; hi keeps c(x') = y.
  const bisect = success.map((ok, i) => ok && steps[i] > 0);
  if (o.refine > 0 && bisect.some(Boolean)) {
    const b = tf.tensor2d(bisect.map((v) => [v ? 1 : 0]), [n, 1]);
    let lo = tf.tidy(() => tf.add(tf.mul(prev, b), tf.mul(eps, tf.sub(1, b))) as tf.Tensor2D);
    let hi = eps;
    for (let k = 0; k < o.refine; k++) {
      const mid = tf.tidy(() => tf.mul(tf.add(lo, hi), 0.5) as tf.Tensor2D);
      const hit = tf.tidy(() => tf.reshape(tf.cast(tf.equal(tf.argMax(classifier.logits(perturbedOf(mid)), 1), tf.tensor1d(targets, 'int32')), 'float32'), [n, 1]));
      const [nlo, nhi] = tf.tidy(() => [tf.add(tf.mul(lo, hit), tf.mul(mid, tf.sub(1, hit))), tf.add(tf.mul(mid, hit), tf.mul(hi, tf.sub(1, hit)))] as tf.Tensor2D[]);
      tf.dispose([lo, hi, mid, hit]);
      lo = nlo;
      hi = nhi;
    }
    tf.dispose([b, lo]);
    eps = hi;
  }
  prev.dispose();
  const perturbed = tf.tidy(() => perturbedOf(eps));
  const perturbation = tf.sub(perturbed, x) as tf.Tensor4D;
  const logitsAfter = classifier.logits(perturbed);
  const am = tf.argMax(logitsAfter, 1);
  const predicted = Array.from((await am.data()) as Int32Array);
  am.dispose();
  const epsilon = await rows(eps);
  tf.dispose([eps, z0, gz, mask]);
  return {
    perturbed, perturbation, logitsAfter, epsilon,
    epsNorm: epsilon.map((e) => Math.sqrt(e.reduce((s, v) => s + v * v, 0))),
    epsNormAtStop,
    steps, success, predicted, z: zArr, path, ce,
  };
}

async function run(classifier: Classifier, x: tf.Tensor4D, targets: number[], options: LseOptions, method: string): Promise<MethodResult> {
  const gen = await resolveGenerator(options.generator, classifier, method);
  const r = await latentSearch(classifier, gen, x, targets, options);
  return {
    attribution: r.perturbation,
    logitsAfter: r.logitsAfter,
    extras: {
      perturbed: r.perturbed, epsilon: r.epsilon, epsNorm: r.epsNorm, epsNormAtStop: r.epsNormAtStop, steps: r.steps, success: r.success,
      predicted: r.predicted, z: r.z, path: r.path, ce: r.ce, generator: gen.name,
    },
  };
}

/** Every image searches on its own: explain may run them in chunks that fit the memory budget. */
const LSE_PER_IMAGE = ['perturbed', 'epsilon', 'epsNorm', 'epsNormAtStop', 'steps', 'success', 'predicted', 'z', 'path', 'ce'];

registerMethod<LseOptions>({
  name: 'lse',
  family: 'counterfactual',
  description: 'latent sympathetic example: x\' = g(z+ε) + x − g(z), gradient descent on ε until c(x\') = target (seed 000; preset \'seed\' or the default with the last step bisected)',
  signed: true,
  defaults: LSE_DEFAULTS,
  perImageExtras: LSE_PER_IMAGE,
  parallel: 'images',
  run: (c, x, t, o) => run(c, x, t, o, 'lse'),
});

registerMethod<LseOptions>({
  name: 'lae',
  family: 'counterfactual',
  description: 'latent adversarial example: the LSE search toward another class (seed 000 §3.2.2)',
  signed: true,
  defaults: LSE_DEFAULTS,
  perImageExtras: LSE_PER_IMAGE,
  parallel: 'images',
  run: (c, x, t, o) => run(c, x, t, o, 'lae'),
});
