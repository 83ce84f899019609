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
 * Attribution: the perturbation x' − x. Extras (per image): perturbed (x', tensor), epsNorm ‖ε‖,
 * steps, success, predicted (class of x' at the end), z (the code e(x)), path (z + ε at every step,
 * when recordPath), ce (cross-entropy at every step, when recordPath), generator name.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod, type MethodResult } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import { resolveGenerator, latentCode, rows, type GeneratorOption } from './latent.js';
import type { Generator } from '../generative/types.js';

export interface LseOptions {
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
  steps: number[];
  success: boolean[];
  predicted: number[];
  z: number[][];
  path: number[][][];
  ce: number[][];
}

function check(o: LseOptions): void {
  if (!(o.stepSize > 0)) throw new OptionError(`expected stepSize > 0; got ${o.stepSize}`);
  if (!Number.isInteger(o.maxSteps) || o.maxSteps < 0) throw new OptionError(`expected maxSteps an integer ≥ 0; got ${o.maxSteps}`);
}

/**
 * The LSE/LAE search for a batch: each image moves toward its own target class and stops on its own.
 */
export async function latentSearch(classifier: Classifier, gen: Generator, x: tf.Tensor4D, targets: number[], o: LseOptions): Promise<LatentSearchResult> {
  check(o);
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
    tf.dispose([grad!, act, eps]);
    eps = next;
  }
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
      perturbed: r.perturbed, epsilon: r.epsilon, epsNorm: r.epsNorm, steps: r.steps, success: r.success,
      predicted: r.predicted, z: r.z, path: r.path, ce: r.ce, generator: gen.name,
    },
  };
}

/** Every image searches on its own: explain may run them in chunks that fit the memory budget. */
const LSE_PER_IMAGE = ['perturbed', 'epsilon', 'epsNorm', 'steps', 'success', 'predicted', 'z', 'path', 'ce'];

registerMethod<LseOptions>({
  name: 'lse',
  family: 'counterfactual',
  description: 'latent sympathetic example: x\' = g(z+ε) + x − g(z), gradient descent on ε until c(x\') = target (seed 000)',
  signed: true,
  defaults: LSE_DEFAULTS,
  perImageExtras: LSE_PER_IMAGE,
  run: (c, x, t, o) => run(c, x, t, o, 'lse'),
});

registerMethod<LseOptions>({
  name: 'lae',
  family: 'counterfactual',
  description: 'latent adversarial example: the LSE search toward another class (seed 000 §3.2.2)',
  signed: true,
  defaults: LSE_DEFAULTS,
  perImageExtras: LSE_PER_IMAGE,
  run: (c, x, t, o) => run(c, x, t, o, 'lae'),
});
