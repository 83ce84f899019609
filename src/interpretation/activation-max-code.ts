/**
 * Activation maximisation in code space (seed 003 §3.3, Eq. 3.3): instead of pixels, ascend a
 * generator's latent code z and read the prototype as g(z):
 *
 *   z* = argmax_z  objective(T(g(z))) − λ·‖z‖²
 *
 * The shipped VAEs and GANs draw z from N(0, I), so λ = ½ makes the penalty exactly −log p(z) up to a
 * constant and the ascent maximises log p(c|g(z)) + log p(z) (the seed's Eq. 3.6): the most likely
 * code for the class. The prototypes stay on the generator's image manifold, which is why the seed
 * finds them as natural as the density-expert variant and far sharper than the pixel-space one.
 *
 * The objective, transformations, optimiser and seeding are activation-max's (activation-max.ts);
 * the result adds the codes and their log-density under the N(0, I) prior.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { registerMethod } from '../core/registry.js';
import { resolveGenerator, type GeneratorOption } from '../counterfactual/latent.js';
import type { Generator } from '../generative/types.js';
import { createRng, gaussian } from '../util/random.js';
import { ascend, methodObjectives, type ActivationObjective, type ActivationMaxResult, type ObjectiveOptions } from './activation-max.js';

export interface CodeActivationMaxOptions {
  /** A generator object or the name of a shipped one under models/. Default 'mnist-vae-10d'. */
  generator?: GeneratorOption;
  /** Ascent steps. Default 200. */
  steps?: number;
  /** Adam step size in code units. Default 0.05. */
  learningRate?: number;
  /** λ of λ‖z‖² (Eq. 3.3, a plain sum over the code). Default 0.5: the N(0, I) prior's −log p(z). */
  lambda?: number;
  /** Start code: 'zero' (the prior's mode), 'noise' (a seeded N(0, I) draw), 'given' (the encoder's code of the images passed in), or a tensor [N|1, k]. Default 'noise'. */
  start?: 'zero' | 'noise' | 'given' | tf.Tensor;
  /** Random shift of the decoded image by up to this many pixels each step. Default 0. */
  jitter?: number;
  /** Random scale of the decoded image each step. Default []. */
  scales?: number[];
  /** Seed of the noise start and the transformations. Default 0. */
  seed?: number;
  /** Codes optimised together, at most. Default 16. */
  batchSize?: number;
}

export interface CodeActivationMaxResult extends ActivationMaxResult {
  /** The final codes [N, k]. */
  codes: tf.Tensor2D;
  /** log N(z; 0, I) of each final code (the generator's prior density of the prototype's code). */
  priorLogDensity: number[];
}

export const CODE_ACTIVATION_MAX_DEFAULTS = {
  generator: 'mnist-vae-10d' as GeneratorOption, steps: 200, learningRate: 0.05, lambda: 0.5,
  start: 'noise' as CodeActivationMaxOptions['start'], jitter: 0, scales: [] as number[], seed: 0, batchSize: 16,
};

function startCodes(gen: Generator, n: number, o: typeof CODE_ACTIVATION_MAX_DEFAULTS, given?: tf.Tensor4D): tf.Tensor2D {
  const k = gen.latentDim;
  if (o.start instanceof tf.Tensor) {
    const t = o.start;
    if (t.rank !== 2 || t.shape[1] !== k || (t.shape[0] !== 1 && t.shape[0] !== n)) {
      throw new OptionError(`expected a start code of shape [1|${n}, ${k}] for generator "${gen.name}"; got [${t.shape.join(', ')}]`);
    }
    return tf.tidy(() => tf.cast(tf.broadcastTo(t, [n, k]), 'float32') as tf.Tensor2D);
  }
  if (o.start === 'zero') return tf.zeros([n, k]);
  if (o.start === 'given') {
    if (!given) throw new OptionError("expected images to start from with start 'given'; got none");
    if (!gen.encode) throw new OptionError(`start 'given' needs an encoder; generator "${gen.name}" (${gen.kind}) has none: use start 'noise' or a code tensor`);
    return tf.tidy(() => gen.encode!(given));
  }
  if (o.start !== 'noise') throw new OptionError(`expected start 'zero', 'noise', 'given' or a tensor; got ${String(o.start)}`);
  const vals = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    // Code i's own stream: its start does not depend on the batch it is in.
    const rng = createRng((o.seed * 1000003 + i * 7919 + 1) >>> 0);
    for (let j = 0; j < k; j++) vals[i * k + j] = gaussian(rng);
  }
  return tf.tensor2d(vals, [n, k]);
}

/**
 * Code-space prototypes, one per objective.
 *
 * @example
 * const r = await activationMaxCode(classifier, [{ class: 3 }], { generator: 'mnist-vae-10d' });
 * console.log(r.probabilities[0][3], r.priorLogDensity[0]); r.dispose();
 */
export async function activationMaxCode(classifier: Classifier, objectives: ActivationObjective[], opts: CodeActivationMaxOptions = {}, given?: tf.Tensor4D,
  progress?: (fraction: number, label?: string) => void): Promise<CodeActivationMaxResult> {
  const o = { ...CODE_ACTIVATION_MAX_DEFAULTS, ...opts };
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new OptionError(`expected steps a positive integer; got ${o.steps}`);
  if (!(o.learningRate > 0)) throw new OptionError(`expected learningRate > 0; got ${o.learningRate}`);
  if (!(o.lambda >= 0)) throw new OptionError(`expected lambda ≥ 0; got ${o.lambda}`);
  const [h, w] = classifier.inputShape;
  if (!Number.isInteger(o.jitter) || o.jitter < 0 || o.jitter >= Math.min(h, w)) throw new OptionError(`expected jitter an integer in 0..${Math.min(h, w) - 1}; got ${o.jitter}`);
  if (!Array.isArray(o.scales) || o.scales.some((s) => !(s > 0))) throw new OptionError(`expected scales a list of positive factors; got ${String(o.scales)}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new OptionError(`expected batchSize a positive integer; got ${o.batchSize}`);
  const n = objectives.length;
  if (n === 0) throw new OptionError('expected at least one objective; got none');
  if (given && given.shape[0] !== n) throw new OptionError(`expected one start image per objective (${n}); got ${given.shape[0]}`);
  const gen = await resolveGenerator(o.generator, classifier, 'activation-max-code');
  const start = startCodes(gen, n, o, given);
  try {
    const r = await ascend(classifier, objectives, o, start, {
      render: (z) => gen.decode(z as tf.Tensor2D),
      penalty: (z) => tf.mul(tf.sum(tf.square(z), 1), o.lambda) as tf.Tensor1D,
    }, progress);
    const codes = r.params as tf.Tensor2D;
    const k = gen.latentDim;
    const sq = tf.tidy(() => tf.sum(tf.square(codes), 1));
    const priorLogDensity = Array.from((await sq.data()) as Float32Array, (v) => -0.5 * v - 0.5 * k * Math.log(2 * Math.PI));
    sq.dispose();
    const prototypes = r.prototypes;
    return {
      prototypes, codes, priorLogDensity, trace: r.trace, objective: r.objective, probabilities: r.probabilities,
      dispose: () => tf.dispose([prototypes, codes]),
    };
  } finally {
    start.dispose();
  }
}

export interface CodeActivationMaxMethodOptions extends CodeActivationMaxOptions, ObjectiveOptions {}

registerMethod<CodeActivationMaxMethodOptions>({
  name: 'activation-max-code',
  family: 'interpretation',
  description: 'activation maximisation in a generator\'s code space: prototype g(z*) maximising log p(c|g(z)) − λ‖z‖² (seed 003 Eq. 3.3) through a VAE decoder or GAN generator',
  signed: false,
  defaults: { ...CODE_ACTIVATION_MAX_DEFAULTS, score: 'log-prob', layer: undefined, channel: undefined, unit: undefined },
  memory: 'gradient',
  requires: (c) => (c.graph ? undefined : 'activation-max-code needs a layered model (it reads nodes and splits the network)'),
  async run(classifier, x, targets, options, context) {
    const { score, layer, channel, unit, ...rest } = options;
    const objectives = methodObjectives(targets, { score, layer, channel, unit });
    const r = await activationMaxCode(classifier, objectives, rest, x, context.progress);
    return {
      attribution: r.prototypes,
      extras: { trace: r.trace, objective: r.objective, probabilities: r.probabilities, codes: r.codes, priorLogDensity: r.priorLogDensity },
    };
  },
});
