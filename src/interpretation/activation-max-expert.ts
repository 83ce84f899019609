/**
 * Activation maximisation with a density expert (seed 003 §3.2, Eq. 3.2): replace the ‖x‖² prior of
 * Eq. 3.1 by a model of the data,
 *
 *   x* = argmax_x  objective(T(x)) + β·log p(x) − λ‖x‖²/D − tv·TV(x) − blur·‖x − blur₃(x)‖²/D
 *
 * which for a class objective is log p(x|c) up to a constant (Bayes): the most likely input of the
 * class. The expert is a Gaussian–Bernoulli RBM (generative/rbm.ts); log p(x) = −F(x) − log Z, and
 * the constant log Z does not move the ascent. As the seed argues, the default expert is deliberately
 * underfitted (a small RBM, one epoch over 2,000 MNIST training images, a few seconds): it favours
 * natural images without taking over the prototype and hiding the classifier's failure modes. It is
 * trained on first use and cached per process; pass `expert` to use your own.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { registerMethod } from '../core/registry.js';
import { GaussianRBM } from '../generative/rbm.js';
import {
  ACTIVATION_MAX_DEFAULTS, ascend, checkOptions, methodObjectives, penalties, startImages,
  type ActivationMaxOptions, type ActivationMaxResult, type ActivationObjective, type ObjectiveOptions,
} from './activation-max.js';

/** What the ascent needs of an expert: an (unnormalised) log-density per image, differentiable in x. */
export interface DensityExpert {
  logDensity(x: tf.Tensor): tf.Tensor1D;
}

export interface DensityExpertTraining {
  /** MNIST training images the expert sees. Default 2000. */
  images?: number;
  /** Epochs of CD-1. Default 1 (underfitted on purpose). */
  epochs?: number;
  /** Hidden units. Default 64. */
  hidden?: number;
  /** Visible noise σ. Default 0.3. */
  sigma?: number;
  /** Data, shuffling and initialisation seed. Default 1. */
  seed?: number;
}

export interface ExpertActivationMaxOptions extends ActivationMaxOptions {
  /** β of β·log p(x). Default 1 (Eq. 3.2 as written). */
  expertWeight?: number;
  /** The expert; default: the cached MNIST RBM of `expertTraining` (28×28×1 classifiers only). */
  expert?: DensityExpert;
  /** How the default expert is trained (when `expert` is not given). */
  expertTraining?: DensityExpertTraining;
}

export interface ExpertActivationMaxResult extends ActivationMaxResult {
  /** The expert's log p(x) + log Z of each prototype (comparable across prototypes of one expert). */
  logDensity: number[];
}

export const EXPERT_ACTIVATION_MAX_DEFAULTS = {
  ...ACTIVATION_MAX_DEFAULTS, lambda: 0, expertWeight: 1, expert: undefined as DensityExpert | undefined,
  expertTraining: {} as DensityExpertTraining,
};

const experts = new Map<string, Promise<GaussianRBM>>();

/** Where the default expert's training images come from: `count` MNIST-like 28×28×1 images in [0, 1]. */
export type DensityExpertData = (count: number, seed: number) => Promise<tf.Tensor4D>;
let expertData: DensityExpertData | undefined;

/**
 * Give the default density expert its training images where MNIST is not on disk (a browser page
 * supplies the digits it has); undefined restores the disk loader. Cached experts are dropped.
 *
 * @example
 * setDensityExpertData(async (count) => tf.slice(myDigits, 0, Math.min(count, myDigits.shape[0])));
 */
export function setDensityExpertData(provider: DensityExpertData | undefined): void {
  expertData = provider;
  experts.clear();
}

/**
 * Train a Gaussian RBM on MNIST training images with a small budget (the caller owns it). The default
 * expert of activation-max-expert is this with the default budget, cached.
 *
 * @example
 * const rbm = await trainDensityExpert({ epochs: 1 }); const lp = rbm.logDensity(x); rbm.dispose();
 */
export async function trainDensityExpert(opts: DensityExpertTraining = {}): Promise<GaussianRBM> {
  const o = { images: 2000, epochs: 1, hidden: 64, sigma: 0.3, seed: 1, ...opts };
  for (const k of ['images', 'epochs', 'hidden'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new OptionError(`expected expertTraining.${k} a positive integer; got ${o[k]}`);
  }
  if (!(o.sigma > 0)) throw new OptionError(`expected expertTraining.sigma > 0; got ${o.sigma}`);
  let data: { images: tf.Tensor4D };
  if (expertData) {
    data = { images: await expertData(o.images, o.seed) };
    const [, h, w, c] = data.images.shape;
    if (h !== 28 || w !== 28 || c !== 1) {
      data.images.dispose();
      throw new OptionError(`expected setDensityExpertData to give 28×28×1 images; got ${h}×${w}×${c}`);
    }
  } else {
    // A non-literal specifier keeps bundlers from pulling the disk loader into a browser build.
    const spec = '../data/mnist.js';
    try {
      const mnist = (await import(spec)) as typeof import('../data/mnist.js');
      data = await mnist.loadMnist({ split: 'train', limit: o.images, seed: o.seed });
    } catch (e) {
      throw new OptionError(`the default density expert trains on MNIST from disk, which failed here (${(e as Error).message}): pass option expert, or give images with setDensityExpertData`);
    }
  }
  const rbm = new GaussianRBM({ inputShape: [28, 28, 1], hidden: o.hidden, sigma: o.sigma, seed: o.seed });
  try {
    await rbm.train(data.images, { epochs: o.epochs, batchSize: 32, seed: o.seed, quiet: true });
  } catch (e) {
    rbm.dispose();
    throw e;
  } finally {
    data.images.dispose();
  }
  return rbm;
}

/** The default expert for these training options, trained once per process (do not dispose it). */
export function defaultDensityExpert(opts: DensityExpertTraining = {}): Promise<GaussianRBM> {
  const key = JSON.stringify({ images: 2000, epochs: 1, hidden: 64, sigma: 0.3, seed: 1, ...opts });
  let p = experts.get(key);
  if (!p) {
    p = trainDensityExpert(opts);
    p.catch(() => experts.delete(key));
    experts.set(key, p);
  }
  return p;
}

/**
 * Expert-regularised prototypes, one per objective.
 *
 * @example
 * const r = await activationMaxExpert(classifier, [{ class: 3 }], { steps: 100 });
 * console.log(r.probabilities[0][3], r.logDensity[0]); r.dispose();
 */
export async function activationMaxExpert(classifier: Classifier, objectives: ActivationObjective[], opts: ExpertActivationMaxOptions = {}, given?: tf.Tensor4D,
  progress?: (fraction: number, label?: string) => void): Promise<ExpertActivationMaxResult> {
  const o = { ...EXPERT_ACTIVATION_MAX_DEFAULTS, ...opts };
  const [h, w, c] = classifier.inputShape;
  checkOptions(o, h, w);
  if (!(o.expertWeight >= 0)) throw new OptionError(`expected expertWeight ≥ 0; got ${o.expertWeight}`);
  const n = objectives.length;
  if (n === 0) throw new OptionError('expected at least one objective; got none');
  if (given && given.shape[0] !== n) throw new OptionError(`expected one start image per objective (${n}); got ${given.shape[0]}`);
  if (o.expert && typeof o.expert.logDensity !== 'function') throw new OptionError('expected option expert to have a logDensity(x) method (e.g. a GaussianRBM)');
  if (!o.expert && (h !== 28 || w !== 28 || c !== 1)) {
    throw new OptionError(`the default density expert models 28×28×1 MNIST images, but classifier "${classifier.name}" takes ${h}×${w}×${c}: pass option expert`);
  }
  const expert: DensityExpert = o.expert ?? (await defaultDensityExpert(o.expertTraining));
  const { low, high } = classifier.domain;
  const start = startImages(classifier, n, o, given);
  try {
    const r = await ascend(classifier, objectives, o, start, {
      render: (p) => p as tf.Tensor4D,
      penalty: (_p, x) => tf.sub(penalties(x, o.lambda, o.tv, o.blur), tf.mul(expert.logDensity(x), o.expertWeight)) as tf.Tensor1D,
      clip: o.clip ? [low, high] : undefined,
    }, progress);
    r.params.dispose();
    const prototypes = r.prototypes;
    const ld = tf.tidy(() => expert.logDensity(prototypes));
    const logDensity = Array.from((await ld.data()) as Float32Array);
    ld.dispose();
    return { prototypes, logDensity, trace: r.trace, objective: r.objective, probabilities: r.probabilities, dispose: () => prototypes.dispose() };
  } finally {
    start.dispose();
  }
}

export interface ExpertActivationMaxMethodOptions extends ExpertActivationMaxOptions, ObjectiveOptions {}

registerMethod<ExpertActivationMaxMethodOptions>({
  name: 'activation-max-expert',
  family: 'interpretation',
  description: 'activation maximisation with a density expert: prototype maximising log p(c|x) + log p(x) with a Gaussian RBM (seed 003 Eq. 3.2), underfitted by default',
  signed: false,
  defaults: { ...EXPERT_ACTIVATION_MAX_DEFAULTS, score: 'log-prob', layer: undefined, channel: undefined, unit: undefined, meanImage: undefined },
  memory: 'gradient',
  requires: (cl) => (cl.graph ? undefined : 'activation-max-expert needs a layered model (it reads nodes and splits the network)'),
  async run(classifier, x, targets, options, context) {
    const { score, layer, channel, unit, ...rest } = options;
    const objectives = methodObjectives(targets, { score, layer, channel, unit });
    const r = await activationMaxExpert(classifier, objectives, rest, x, context.progress);
    return { attribution: r.prototypes, extras: { trace: r.trace, objective: r.objective, probabilities: r.probabilities, logDensity: r.logDensity } };
  },
});
