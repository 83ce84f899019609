/**
 * Black-box attack through a surrogate (Papernot et al. 2017; seed 004):
 *   1. start from a few images of the task's domain (a seed set);
 *   2. label them by querying the black box (only its predicted labels are used);
 *   3. train a surrogate on them;
 *   4. grow the set by Jacobian-based augmentation, x + λ·sign(∂F_{Õ(x)}/∂x) with F the surrogate
 *      and Õ(x) the black box's label, and repeat 2–4 for a few rounds;
 *   5. craft FGSM examples on the surrogate and report how many transfer to the black box.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Classifier } from '../core/classifier.js';
import { targetMask } from '../core/target.js';
import { createRng, shuffle } from '../util/random.js';
import { runAttack, attacks, type AttackReport } from './attack-runner.js';
import { clipToDomain } from './fgsm.js';

export interface SurrogateOptions {
  /** Builds an untrained surrogate (default: MLP 200-200 on the black box's input shape). */
  build?: () => tfl.LayersModel;
  /** Substitute training rounds ρ (default 4). */
  rounds?: number;
  /** Jacobian augmentation step λ (default 0.1). */
  lambda?: number;
  /** Training epochs per round (default 10). */
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
}

export interface SurrogateResult {
  surrogate: Classifier;
  model: tfl.LayersModel;
  /** Black-box label queries made. */
  queries: number;
  /** Final training-set size. */
  trainingSize: number;
  /** Agreement of surrogate and black box on the final training set. */
  agreement: number;
}

function defaultSurrogate(shape: [number, number, number], k: number, seed: number): tfl.LayersModel {
  return tfl.sequential({ layers: [
    tfl.layers.flatten({ inputShape: shape }),
    tfl.layers.dense({ units: 200, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
    tfl.layers.dense({ units: 200, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
    tfl.layers.dense({ units: k, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }) }),
  ] });
}

async function fit(model: tfl.LayersModel, c: Classifier, x: tf.Tensor4D, y: number[], epochs: number, bs: number, lr: number, seed: number): Promise<void> {
  const rng = createRng(seed);
  const opt = tf.train.adam(lr);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const n = x.shape[0];
  for (let e = 0; e < epochs; e++) {
    const order = shuffle(Array.from({ length: n }, (_, i) => i), rng);
    for (let b = 0; b < n; b += bs) {
      const idx = order.slice(b, b + bs);
      tf.tidy(() => {
        const xb = tf.gather(x, tf.tensor1d(idx, 'int32'));
        const oh = targetMask(idx.map((i) => y[i]), c.numClasses);
        const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(oh, c.logits(xb)) as tf.Scalar, vars);
        opt.applyGradients(grads as Parameters<typeof opt.applyGradients>[0]);
      });
    }
  }
  opt.dispose();
}

/**
 * Train a surrogate of a black box from a seed set, with Jacobian-based augmentation.
 *
 * @example
 * const s = await trainSurrogate(blackBox, seedImages, { rounds: 4 });
 * const rep = await transferAttack(blackBox, s.surrogate, testImages, testLabels, { epsilon: 0.3 });
 */
export async function trainSurrogate(blackBox: Classifier, seedImages: tf.Tensor4D, opts: SurrogateOptions = {}): Promise<SurrogateResult> {
  const rounds = opts.rounds ?? 4;
  const lambda = opts.lambda ?? 0.1;
  const seed = opts.seed ?? 0;
  const model = opts.build ? opts.build() : defaultSurrogate(blackBox.inputShape, blackBox.numClasses, seed);
  const surrogate = Classifier.fromModel(model, { name: 'surrogate', low: blackBox.domain.low, high: blackBox.domain.high });
  let x = tf.clone(seedImages);
  let queries = 0;
  let y: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // 2. Label the new part of the set by querying the black box.
    const fresh = tf.slice(x, y.length);
    y = y.concat(await blackBox.predictClasses(fresh));
    queries += fresh.shape[0];
    fresh.dispose();
    // 3. Train the surrogate.
    await fit(model, surrogate, x, y, opts.epochs ?? 10, opts.batchSize ?? 32, opts.learningRate ?? 1e-3, seed + r);
    if (r === rounds - 1) break;
    // 4. Jacobian augmentation: x + λ·sign(∂F_{Õ(x)}/∂x).
    const aug = tf.tidy(() => {
      const mask = targetMask(y, surrogate.numClasses);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(surrogate.logits(v), mask)))(x);
      return clipToDomain(surrogate, tf.add(x, tf.mul(tf.sign(g), lambda))) as tf.Tensor4D;
    });
    const next = tf.concat([x, aug], 0) as tf.Tensor4D;
    tf.dispose([x, aug]);
    x = next;
  }
  const sp = await surrogate.predictClasses(x);
  const agreement = sp.filter((p, i) => p === y[i]).length / y.length;
  const trainingSize = x.shape[0];
  x.dispose();
  return { surrogate, model, queries, trainingSize, agreement };
}

/**
 * Craft FGSM examples on the surrogate and measure them on the black box: its accuracy and the
 * transfer success rate (originally correct images now misclassified).
 */
export async function transferAttack(
  blackBox: Classifier, surrogate: Classifier, images: tf.Tensor4D, labels: ArrayLike<number>, opts: { epsilon?: number; batchSize?: number } = {},
): Promise<AttackReport> {
  const craft = attacks.fgsm({ epsilon: opts.epsilon ?? 0.3 });
  return runAttack(blackBox, images, labels, (_c, x, y) => craft(surrogate, x, y), { name: `transfer fgsm ε=${opts.epsilon ?? 0.3}`, batchSize: opts.batchSize });
}
