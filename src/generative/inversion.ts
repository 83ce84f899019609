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

export interface InversionOptions {
  /** 'encoder' (needs gen.encode), 'optimize' (Algorithm 2), or 'auto' (encoder when present). Default 'auto'. */
  method?: 'auto' | 'encoder' | 'optimize';
  /** Gradient steps of Algorithm 2. Default 300. */
  steps?: number;
  /** Step size η (Adam). Default 0.05. */
  learningRate?: number;
  /** Weight of the misclassification cost (needs classifier and labels). Default 0.1. */
  misclassWeight?: number;
  /** Stop when the mean squared error per pixel falls below this. Default 1e-3. */
  tolerance?: number;
  /** Seed of the random start z0 ~ N(0, I). Default 1. */
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
    const start = opts.warmStart && gen.encode ? gen.encode(images) : tf.randomNormal([n, gen.latentDim], 0, 1, 'float32', opts.seed ?? 1);
    const z = tf.variable(start, true);
    start.dispose();
    const optimizer = tf.train.adam(lr);
    const mask = classifier && labels ? targetMask(labels, classifier.numClasses) : undefined;
    const pixels = images.size / n;
    for (; steps < maxSteps; steps++) {
      const cost = optimizer.minimize(() => {
        const g = gen.decode(z as unknown as tf.Tensor2D);
        let loss = tf.div(tf.sum(tf.squaredDifference(g, images)), pixels);
        if (mask && classifier && w > 0) {
          const ce = tf.neg(tf.sum(tf.mul(tf.logSoftmax(classifier.logits(g)), mask)));
          loss = tf.add(loss, tf.mul(ce, w / pixels));
        }
        return loss as tf.Scalar;
      }, true, [z])!;
      cost.dispose();
      if (steps % 20 === 19) {
        const m = tf.tidy(() => tf.max(tf.mean(tf.squaredDifference(gen.decode(z as unknown as tf.Tensor2D), images), [1, 2, 3])));
        const worst = (await m.data())[0];
        m.dispose();
        if (worst < tol) {
          steps++;
          break;
        }
      }
    }
    optimizer.dispose();
    mask?.dispose();
    z0 = tf.clone(z) as tf.Tensor2D;
    z.dispose();
  }
  const residual = tf.tidy(() => tf.sub(gen.decode(z0), images) as tf.Tensor4D);
  const mseT = tf.tidy(() => tf.mean(tf.square(residual), [1, 2, 3]));
  const mse = Array.from(await mseT.data());
  mseT.dispose();
  return { z0, residual, mse, steps, method };
}
