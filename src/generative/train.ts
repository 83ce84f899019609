/**
 * The training loop shared by the generative models: seeded shuffling, mini-batches, Adam, a
 * progress bar, loss per epoch and wall time.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRng, nextSeed, shuffle } from '../util/random.js';
import { progress } from '../util/progress.js';

export interface GenTrainOptions {
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Shuffling and noise seed. Default 1. */
  seed?: number;
  /** Progress bar label; none when undefined and quiet is true. */
  label?: string;
  quiet?: boolean;
  /** Called after each epoch with the mean loss. */
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface GenTrainResult {
  epochLosses: number[];
  timeMs: number;
  steps: number;
}

/** Take rows of a 4-D tensor by index list (forward only; no gradient needed). */
export function takeRows(images: tf.Tensor4D, idx: number[]): tf.Tensor4D {
  return tf.tidy(() => tf.gather(images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D);
}

/**
 * Minimise `loss(batch, seed)` over the variables with Adam.
 *
 * @example
 * await fitLoss((b, s) => vae.loss(b, s), vae.params.list(), train.images, { epochs: 10, label: 'vae' });
 */
export async function fitLoss(
  loss: (batch: tf.Tensor4D, seed: number, prepared?: tf.Tensor) => tf.Scalar,
  vars: tf.Variable[],
  images: tf.Tensor4D,
  opts: GenTrainOptions = {},
  /** Computed per batch outside the gradient tape (e.g. Gibbs samples), passed to loss, then disposed. */
  prepare?: (batch: tf.Tensor4D, seed: number) => tf.Tensor,
): Promise<GenTrainResult> {
  const epochs = opts.epochs ?? 10;
  const batchSize = opts.batchSize ?? 128;
  const rng = createRng(opts.seed ?? 1);
  const optimizer = tf.train.adam(opts.learningRate ?? 1e-3);
  const n = images.shape[0];
  const perEpoch = Math.ceil(n / batchSize);
  const bar = opts.quiet ? undefined : progress(opts.label ?? 'train', epochs * perEpoch);
  const epochLosses: number[] = [];
  const start = performance.now();
  let steps = 0;
  for (let e = 0; e < epochs; e++) {
    const order = shuffle(Array.from({ length: n }, (_, i) => i), rng);
    let sum = 0;
    for (let b = 0; b < perEpoch; b++) {
      const batch = takeRows(images, order.slice(b * batchSize, (b + 1) * batchSize));
      const seed = nextSeed(rng);
      const prepared = prepare?.(batch, seed);
      const cost = optimizer.minimize(() => loss(batch, seed, prepared), true, vars);
      prepared?.dispose();
      const v = (await cost!.data())[0];
      cost!.dispose();
      batch.dispose();
      sum += v;
      steps++;
      bar?.tick(`loss ${v.toFixed(3)}`);
    }
    epochLosses.push(sum / perEpoch);
    opts.onEpoch?.(e, sum / perEpoch);
  }
  bar?.done(`loss ${epochLosses[epochLosses.length - 1]?.toFixed(3)}`);
  optimizer.dispose();
  return { epochLosses, timeMs: performance.now() - start, steps };
}

/** Train a VAE or autoencoder on images in [0, 1]; records the result in model.info. */
export async function trainAutoencoder(
  model: { loss(x: tf.Tensor4D, seed: number): tf.Scalar; params: { list(): tf.Variable[] }; info: Record<string, unknown>; name: string },
  images: tf.Tensor4D,
  opts: GenTrainOptions = {},
): Promise<GenTrainResult> {
  const r = await fitLoss((b, s) => model.loss(b, s), model.params.list(), images, { label: model.name, ...opts });
  model.info = {
    ...model.info,
    trainImages: images.shape[0],
    epochs: opts.epochs ?? 10,
    batchSize: opts.batchSize ?? 128,
    learningRate: opts.learningRate ?? 1e-3,
    seed: opts.seed ?? 1,
    finalLoss: r.epochLosses[r.epochLosses.length - 1],
    trainSeconds: r.timeMs / 1000,
  };
  return r;
}
