/**
 * Latent codes for images. Seed 001 Algorithm 2 for generators without an encoder (GANs):
 *   z0 ~ N(0, I); repeat z0 ← z0 − η ∇ loss(I, G(z0)) until G(z0) ≈ I;  Δ = G(z0) − I
 * with loss = ‖G(z) − I‖² per image plus a small misclassification cost CE(D(G(z)), y) so the
 * reconstruction is classified as the input is. For an encoder model z0 = e(I).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { targetMask } from '../core/target.js';
import type { Generator } from './types.js';
import { imageSeeds } from '../util/image-seed.js';

export interface InversionOptions {
  /** 'encoder' (needs gen.encode), 'optimize' (Algorithm 2), or 'auto' (encoder when present). Default 'auto'. */
  method?: 'auto' | 'encoder' | 'optimize';
  /** Gradient steps of Algorithm 2. Default 300. */
  steps?: number;
  /** Step size η (Adam). Default 0.05. */
  learningRate?: number;
  /** Weight of the misclassification cost (needs classifier and labels). Default 0.1. */
  misclassWeight?: number;
  /** An image stops moving once its mean squared error per pixel is below this (checked every 20 steps). Default 1e-3. */
  tolerance?: number;
  /** Seed of the random start z0 ~ N(0, I) (mixed with each image's pixels: the same image starts at the same code in any batch). Default 1. */
  seed?: number;
  /** Start the optimisation from the encoder's code when the generator has one. Default false. */
  warmStart?: boolean;
}

export interface Inversion {
  /** Latent codes [N, k]. */
  z0: tf.Tensor2D;
  /** Residual Δ = G(z0) − I, [N, h, w, c]. */
  residual: tf.Tensor4D;
  /** Mean squared error per pixel of G(z0) against I, per image. */
  mse: number[];
  steps: number;
  method: 'encoder' | 'optimize';
}

/**
 * Find z0 with G(z0) ≈ I. With a classifier and labels (the classes the classifier gives I), the
 * misclassification cost of Algorithm 2 is added.
 */
export async function invertGenerator(
  gen: Generator,
  images: tf.Tensor4D,
  opts: InversionOptions = {},
  classifier?: Classifier,
  labels?: number[],
): Promise<Inversion> {
  const method = opts.method === 'optimize' || (opts.method !== 'encoder' && !gen.encode) ? 'optimize' : 'encoder';
  if (method === 'encoder' && !gen.encode) throw new Error(`generator "${gen.name}" has no encoder; use method 'optimize'`);
  const n = images.shape[0];
  let z0: tf.Tensor2D;
  let steps = 0;
  if (method === 'encoder') {
    z0 = gen.encode!(images);
  } else {
    const maxSteps = opts.steps ?? 300;
    const lr = opts.learningRate ?? 0.05;
    const w = opts.misclassWeight ?? 0.1;
    const tol = opts.tolerance ?? 1e-3;
    // Per image: the random start is drawn from the seed mixed with the image's pixels, and an image
    // stops moving once its own error is below the tolerance (Adam by hand, to freeze rows). An
    // image's code therefore never depends on the other images of the batch, so explain's memory
    // chunks and the pool's workers (which split batches) give the same codes as one whole batch.
    const start = opts.warmStart && gen.encode
      ? gen.encode(images)
      : tf.tidy(() => tf.concat(imageSeeds(images, opts.seed ?? 1).map((s) => tf.randomNormal([1, gen.latentDim], 0, 1, 'float32', s)), 0) as tf.Tensor2D);
    let z: tf.Tensor2D = start;
    let m1: tf.Tensor2D = tf.zerosLike(z);
    let m2: tf.Tensor2D = tf.zerosLike(z);
    const active = new Array<boolean>(n).fill(true);
    let activeMask: tf.Tensor2D | undefined;
    const [b1, b2, eps] = [0.9, 0.999, tf.backend().epsilon()];
    const mask = classifier && labels ? targetMask(labels, classifier.numClasses) : undefined;
    const pixels = images.size / n;
    const loss = (zz: tf.Tensor2D): tf.Scalar => {
      const g = gen.decode(zz);
      let l = tf.div(tf.sum(tf.squaredDifference(g, images)), pixels);
      if (mask && classifier && w > 0) {
        const ce = tf.neg(tf.sum(tf.mul(tf.logSoftmax(classifier.logits(g)), mask)));
        l = tf.add(l, tf.mul(ce, w / pixels));
      }
      return l as tf.Scalar;
    };
    for (; steps < maxSteps; steps++) {
      const t = steps + 1;
      const [zn, m1n, m2n] = tf.tidy(() => {
        const g = tf.grad((zz: tf.Tensor) => loss(zz as tf.Tensor2D))(z);
        const a = tf.add(tf.mul(m1, b1), tf.mul(g, 1 - b1));
        const b = tf.add(tf.mul(m2, b2), tf.mul(tf.square(g), 1 - b2));
        let step = tf.div(tf.mul(tf.div(a, 1 - b1 ** t), lr), tf.add(tf.sqrt(tf.div(b, 1 - b2 ** t)), eps));
        if (activeMask) step = tf.mul(step, activeMask);
        return [tf.sub(z, step) as tf.Tensor2D, a as tf.Tensor2D, b as tf.Tensor2D];
      });
      tf.dispose([z, m1, m2]);
      [z, m1, m2] = [zn, m1n, m2n];
      if (steps % 20 === 19) {
        const e = tf.tidy(() => tf.mean(tf.squaredDifference(gen.decode(z), images), [1, 2, 3]));
        const err = await e.data();
        e.dispose();
        err.forEach((v, i) => {
          if (v < tol) active[i] = false;
        });
        if (!active.some(Boolean)) {
          steps++;
          break;
        }
        activeMask?.dispose();
        activeMask = tf.tensor2d(active.map((a) => [a ? 1 : 0]), [n, 1]);
      }
    }
    tf.dispose([m1, m2]);
    activeMask?.dispose();
    mask?.dispose();
    z0 = z;
  }
  const residual = tf.tidy(() => tf.sub(gen.decode(z0), images) as tf.Tensor4D);
  const mseT = tf.tidy(() => tf.mean(tf.square(residual), [1, 2, 3]));
  const mse = Array.from(await mseT.data());
  mseT.dispose();
  return { z0, residual, mse, steps, method };
}
