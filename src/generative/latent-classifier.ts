/**
 * A classifier "attached to the variational auto encoder and trained without updating the weights of
 * the VAE" (seed 000 §3.1): the frozen encoder's posterior mean μ(x) feeds a small MLP head, and the
 * pair is wrapped as a Classifier so every method can explain it. This is the classifier seed 000's
 * LSE figures were measured on; its decisions live in the generator's latent space, which is why a
 * small latent step ε changes them (a pixel-space CNN needs larger steps; docs/contrastive.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Classifier } from '../core/classifier.js';
import { OptionError, DataError } from '../core/errors.js';
import { ParamStore, dense, makeDense } from './params.js';
import type { Generator } from './types.js';
import { createRng, shuffle } from '../util/random.js';
import { progress } from '../util/progress.js';

export interface LatentClassifierOptions {
  /** Hidden widths of the head on μ(x). Default [64]. */
  hidden?: number[];
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  quiet?: boolean;
  name?: string;
}

export interface LatentClassifier {
  classifier: Classifier;
  /** Accuracy of the head on the training images after training. */
  trainAccuracy: number;
  trainSeconds: number;
  /** Frees the head's weights (not the generator's). */
  dispose(): void;
}

type Encoding = Generator & { encode(x: tf.Tensor4D): tf.Tensor2D };

function encodeAll(gen: Encoding, images: tf.Tensor4D, batch = 500): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (let i = 0; i < images.shape[0]; i += batch) {
    const n = Math.min(batch, images.shape[0] - i);
    parts.push(tf.tidy(() => gen.encode(tf.slice(images, i, n))));
  }
  const all = tf.concat(parts);
  tf.dispose(parts);
  return all;
}

function headLogits(p: ParamStore, depth: number, z: tf.Tensor2D): tf.Tensor2D {
  let a = z;
  for (let i = 0; i < depth; i++) a = dense(p, `h${i}`, a, 'relu');
  return dense(p, 'out', a);
}

/**
 * Train an MLP head on the frozen encoder's μ(x) and return it as a Classifier of images.
 *
 * @example
 * const vae = await loadGenerator('mnist-vae-2d');
 * const { classifier } = await attachClassifier(vae, await loadMnist({ split: 'train' }));
 * const e = await explain('lse', classifier, x, { target: trueLabels, options: { generator: vae } });
 */
export async function attachClassifier(
  gen: Generator,
  data: { images: tf.Tensor4D; labels: Int32Array; classNames?: string[] },
  opts: LatentClassifierOptions = {},
): Promise<LatentClassifier> {
  if (!gen.encode) throw new OptionError(`attachClassifier needs a generator with an encoder (a VAE or autoencoder); "${gen.name}" has none`);
  const enc = gen as Encoding;
  const n = data.images.shape[0];
  if (n === 0 || data.labels.length !== n) throw new DataError(`expected as many labels as images (> 0); got ${data.labels.length} labels for ${n} images`);
  const numClasses = Math.max(...data.labels) + 1;
  const hidden = opts.hidden ?? [64];
  const epochs = opts.epochs ?? 20;
  const batchSize = opts.batchSize ?? 128;
  const rng = createRng(opts.seed ?? 1);
  const p = new ParamStore(opts.seed ?? 1);
  let prev = gen.latentDim;
  hidden.forEach((u, i) => {
    makeDense(p, `h${i}`, prev, u);
    prev = u;
  });
  makeDense(p, 'out', prev, numClasses);

  // The encoder is frozen, so its codes are computed once.
  const codes = encodeAll(enc, data.images);
  const onehot = tf.tidy(() => tf.oneHot(tf.tensor1d(data.labels, 'int32'), numClasses));
  const optimizer = tf.train.adam(opts.learningRate ?? 1e-3);
  const perEpoch = Math.ceil(n / batchSize);
  const bar = opts.quiet ? undefined : progress(opts.name ?? `head on ${gen.name}`, epochs * perEpoch);
  const start = performance.now();
  for (let e = 0; e < epochs; e++) {
    const order = shuffle(Array.from({ length: n }, (_, i) => i), rng);
    for (let b = 0; b < perEpoch; b++) {
      const idx = tf.tensor1d(order.slice(b * batchSize, (b + 1) * batchSize), 'int32');
      const z = tf.gather(codes, idx) as tf.Tensor2D;
      const y = tf.gather(onehot, idx);
      optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, headLogits(p, hidden.length, z)) as tf.Scalar, false, p.list());
      tf.dispose([idx, z, y]);
      bar?.tick();
    }
  }
  bar?.done();
  optimizer.dispose();
  const correct = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(headLogits(p, hidden.length, codes), 1), tf.argMax(onehot, 1)), 'float32')));
  const trainAccuracy = (await correct.data())[0] / n;
  tf.dispose([codes, onehot, correct]);
  const classifier = Classifier.fromFunction((x) => headLogits(p, hidden.length, enc.encode(x)), {
    name: opts.name ?? `${gen.name}+head`,
    inputShape: gen.outputShape,
    numClasses,
    classNames: data.classNames,
  });
  return { classifier, trainAccuracy, trainSeconds: (performance.now() - start) / 1000, dispose: () => p.dispose() };
}
