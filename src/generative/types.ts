/**
 * What the counterfactual methods need of a generative model: a differentiable decoder from a
 * latent code to images, and (optionally) an encoder giving a latent code for an image.
 */
import * as tf from '@tensorflow/tfjs-core';

export type GeneratorKind = 'vae' | 'ae' | 'gan';

export interface Generator {
  readonly kind: GeneratorKind;
  name: string;
  readonly latentDim: number;
  /** Image shape without the batch dimension, e.g. [28, 28, 1]. */
  readonly outputShape: [number, number, number];
  /** Latent codes [N, k] → images [N, h, w, c] in [0, 1]. Differentiable; the caller tidies. */
  decode(z: tf.Tensor2D): tf.Tensor4D;
  /** Images → latent codes (the posterior mean for a VAE). Absent for a GAN: use invertGenerator. */
  encode?(x: tf.Tensor4D): tf.Tensor2D;
  /** Training provenance (loss, time, data), when known. */
  info: Record<string, unknown>;
  dispose(): void;
}

/** The serialisable description of a generator (src/generative/io.ts). */
export interface GeneratorSpec {
  kind: GeneratorKind;
  config: Record<string, unknown>;
}
