/**
 * Adversarial training (seed 004).
 *
 * - 'fgsm'       (Goodfellow et al.): loss α·ℓ(x) + (1 − α)·ℓ(x*), x* = FGSM on the model being trained.
 * - 'ensemble'   (Tramèr et al.): the same, but each batch's x* is crafted on a model drawn from the
 *                current one and fixed pre-trained `staticModels`.
 * - 'consistent' (Dong et al., seed 004): α·ℓ(x) + (1 − α)·ℓ(x*) + β·‖φ(x) − φ(x*)‖², α = 0.5,
 *                β = 0.1, φ the last convolutional layer (for an MLP: the last hidden layer), x* by
 *                FGSM (seed 004 uses the targeted form towards a least-likely class y*: attack 'fgsm-ll').
 * - 'pgd'        (Madry et al.; seed 004's min–max objective itself): ℓ(x*) only (α defaults to 0),
 *                x* by PGD from a random start in the ε-ball (pgdSteps steps of pgdStepSize) — the
 *                inner maximisation approximated by the strongest first-order attack instead of FGSM.
 *
 * ℓ is the softmax cross-entropy of the logits, averaged over the batch; ‖·‖² is summed over the
 * feature map and averaged over the batch. The loop is its own (tf.variableGrads + Adam on
 * model.trainableWeights) because the loss needs both x and x* and an intermediate layer.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { createRng, nextSeed, shuffle } from '../util/random.js';
import { progress } from '../util/progress.js';
import { fgsm } from './fgsm.js';
import { pgd } from './pgd.js';

export type AdversarialScheme = 'fgsm' | 'ensemble' | 'consistent' | 'pgd';

export interface AdversarialTrainingOptions {
  scheme?: AdversarialScheme;
  /** FGSM ε for crafting x* (default 0.3). */
  epsilon?: number;
  /** Weight of the clean loss (default 0.5; 0 for 'pgd', Madry's loss on x* alone). */
  alpha?: number;
  /** Weight of the feature-consistency term ('consistent'; default 0.1). */
  beta?: number;
  /** Layer φ for the consistency term (default: last conv layer, else the last hidden layer). */
  featureLayer?: string;
  /**
   * How ‖φ(x) − φ(x*)‖² is reduced over the features: 'sum' (default, the seed's squared L2 distance)
   * or 'mean' (divided by the number of features — keeps β's scale independent of the layer size).
   */
  featureDistance?: 'sum' | 'mean';
  /** 'fgsm' (untargeted, from the label) or 'fgsm-ll' (targeted towards the least likely class). Default 'fgsm'. */
  attack?: 'fgsm' | 'fgsm-ll';
  /** Fixed models to craft examples on ('ensemble'). */
  staticModels?: Classifier[];
  /** PGD steps per batch ('pgd'; default 40, Madry's training attack). */
  pgdSteps?: number;
  /** PGD step size ('pgd'; default 0.01, Madry's). */
  pgdStepSize?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Multiply the learning rate by this after every epoch (default 1: constant). */
  lrDecay?: number;
  seed?: number;
  /** Called after every epoch with the mean loss. */
  onEpoch?: (epoch: number, loss: number) => void;
}

export const ADVERSARIAL_TRAINING_DEFAULTS = {
  scheme: 'fgsm' as AdversarialScheme, epsilon: 0.3, alpha: 0.5, beta: 0.1, attack: 'fgsm' as 'fgsm' | 'fgsm-ll',
  epochs: 1, batchSize: 64, learningRate: 1e-3, lrDecay: 1, seed: 0, pgdSteps: 40, pgdStepSize: 0.01,
};

/** The layer φ: the last conv layer's output, else the input of the logit layer (last hidden activation). */
export function defaultFeatureLayer(classifier: Classifier): string {
  const conv = classifier.convLayers();
  if (conv.length) return conv[conv.length - 1];
  const layers = classifier.layers();
  // The logits come from the last dense/conv node (before a softmax, if any); take what feeds it.
  const linear = layers.filter((l) => l.kind === 'dense' || l.kind === 'conv2d');
  if (linear.length < 2) throw new OptionError(`expected a hidden layer for the consistency term in "${classifier.name}"; found none (pass featureLayer)`);
  const lastLinear = linear[linear.length - 1];
  const graph = classifier.graph!;
  return graph.byName.get(lastLinear.name)!.inputs[0];
}

/**
 * Seed 004's consistent loss for one batch: α·ℓ(x) + (1 − α)·ℓ(x*) + β·mean‖φ(x) − φ(x*)‖².
 * With β = 0 it is the FGSM-training loss. Differentiable in the model's variables.
 */
export function consistentLoss(
  classifier: Classifier, x: tf.Tensor4D, xAdv: tf.Tensor4D, labelsOneHot: tf.Tensor2D,
  opts: { alpha?: number; beta?: number; featureLayer?: string; featureDistance?: 'sum' | 'mean' } = {},
): tf.Scalar {
  const alpha = opts.alpha ?? 0.5;
  const beta = opts.beta ?? 0.1;
  return tf.tidy(() => {
    const n = x.shape[0];
    // Madry's loss (α = 0, β = 0) needs the adversarial half only: half the forward/backward work.
    if (alpha === 0 && beta === 0) return tf.losses.softmaxCrossEntropy(labelsOneHot, classifier.logits(xAdv)) as tf.Scalar;
    const both = tf.concat([x, xAdv], 0);
    let logits: tf.Tensor2D;
    let dist: tf.Tensor = tf.scalar(0);
    if (beta !== 0) {
      const layer = opts.featureLayer ?? defaultFeatureLayer(classifier);
      const r = classifier.forward(both, { capture: [layer] });
      logits = r.logits;
      const phi = tf.reshape(r.captured.get(layer)!, [2 * n, -1]);
      const d = tf.sub(tf.slice(phi, 0, n), tf.slice(phi, n, n));
      dist = opts.featureDistance === 'mean' ? tf.mean(tf.square(d)) : tf.mean(tf.sum(tf.square(d), 1));
    } else {
      logits = classifier.logits(both);
    }
    const l0 = tf.losses.softmaxCrossEntropy(labelsOneHot, tf.slice(logits, 0, n));
    const l1 = tf.losses.softmaxCrossEntropy(labelsOneHot, tf.slice(logits, n, n));
    return tf.addN([tf.mul(l0, alpha), tf.mul(l1, 1 - alpha), tf.mul(dist, beta)]) as tf.Scalar;
  });
}

/** Least likely class per image (seed 004's y*). */
async function leastLikely(classifier: Classifier, x: tf.Tensor4D): Promise<number[]> {
  const a = tf.tidy(() => tf.argMin(classifier.logits(x), 1));
  const v = Array.from(await a.data());
  a.dispose();
  return v;
}

/**
 * Train `model` in place with adversarial examples.
 *
 * @example
 * await adversarialTrain(model, train, { scheme: 'consistent', epsilon: 0.3, epochs: 2 });
 */
export async function adversarialTrain(
  model: tfl.LayersModel, data: { images: tf.Tensor4D; labels: ArrayLike<number> }, opts: AdversarialTrainingOptions = {},
): Promise<{ loss: number[]; timeMs: number }> {
  const o = { ...ADVERSARIAL_TRAINING_DEFAULTS, ...opts, alpha: opts.alpha ?? (opts.scheme === 'pgd' ? 0 : ADVERSARIAL_TRAINING_DEFAULTS.alpha) };
  if (!['fgsm', 'ensemble', 'consistent', 'pgd'].includes(o.scheme)) throw new OptionError(`expected scheme 'fgsm', 'ensemble', 'consistent' or 'pgd'; got ${String(o.scheme)}`);
  if (o.scheme === 'pgd' && !(Number.isInteger(o.pgdSteps) && o.pgdSteps >= 1 && o.pgdStepSize > 0)) {
    throw new OptionError(`expected pgdSteps ≥ 1 (integer) and pgdStepSize > 0 for the pgd scheme; got ${o.pgdSteps}, ${o.pgdStepSize}`);
  }
  if (!(o.lrDecay > 0)) throw new OptionError(`expected lrDecay > 0; got ${o.lrDecay}`);
  if (o.scheme === 'ensemble' && !(o.staticModels && o.staticModels.length)) throw new OptionError('expected staticModels (fixed classifiers to craft examples on) for the ensemble scheme; got none');
  const classifier = Classifier.fromModel(model);
  const beta = o.scheme === 'consistent' ? o.beta : 0;
  const featureLayer = beta ? (o.featureLayer ?? defaultFeatureLayer(classifier)) : undefined;
  const n = data.images.shape[0];
  const k = classifier.numClasses;
  const rng = createRng(o.seed);
  const optimizer = tf.train.adam(o.learningRate);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const labels = Array.from(data.labels);
  const steps = Math.ceil(n / o.batchSize);
  const bar = progress(`adversarial training (${o.scheme})`, o.epochs * steps);
  const history: number[] = [];
  const start = performance.now();
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = shuffle(Array.from({ length: n }, (_, i) => i), rng);
    let sum = 0;
    for (let s = 0; s < steps; s++) {
      const idx = order.slice(s * o.batchSize, (s + 1) * o.batchSize);
      const yb = idx.map((i) => labels[i]);
      const xb = tf.tidy(() => tf.gather(data.images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D);
      // Craft x* (no gradient flows through the crafting).
      let source = classifier;
      if (o.scheme === 'ensemble') {
        const pick = Math.floor(rng() * (o.staticModels!.length + 1));
        if (pick > 0) source = o.staticModels![pick - 1];
      }
      const xAdv = o.scheme === 'pgd'
        ? await pgd(source, xb, yb, { epsilon: o.epsilon, stepSize: o.pgdStepSize, steps: o.pgdSteps, randomStart: true, seed: nextSeed(rng) })
        : o.attack === 'fgsm-ll'
          ? fgsm(source, xb, await leastLikely(source, xb), { epsilon: o.epsilon, targeted: true })
          : fgsm(source, xb, yb, { epsilon: o.epsilon });
      const oh = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(yb, 'int32'), k), 'float32') as tf.Tensor2D);
      const lossT = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => consistentLoss(classifier, xb, xAdv, oh, { alpha: o.alpha, beta, featureLayer, featureDistance: o.featureDistance }), vars);
        optimizer.applyGradients(grads as tf.NamedTensorMap as Parameters<typeof optimizer.applyGradients>[0]);
        return value;
      });
      const l = (await lossT.data())[0];
      tf.dispose([xb, xAdv, oh, lossT]);
      if (!Number.isFinite(l)) throw new OptionError(`adversarial training diverged (loss ${l}) at epoch ${epoch + 1}; lower the learning rate`);
      sum += l * idx.length;
      bar.update(epoch * steps + s + 1, `loss ${(sum / Math.min(n, (s + 1) * o.batchSize)).toFixed(4)}`);
    }
    history.push(sum / n);
    o.onEpoch?.(epoch + 1, sum / n);
    // Adam keeps its moments; only the step size shrinks (the same mechanism as trainModel's lrDecay).
    if (o.lrDecay !== 1) (optimizer as unknown as { learningRate: number }).learningRate = o.learningRate * o.lrDecay ** (epoch + 1);
  }
  bar.done();
  optimizer.dispose();
  return { loss: history, timeMs: performance.now() - start };
}
