/**
 * Variational autoencoder (Kingma & Welling), the generative model of seed 000: a Gaussian
 * posterior q(z|x) = N(μ(x), diag(exp(logVar(x)))), a standard normal prior, and a Bernoulli decoder.
 * Loss per image: binary cross-entropy summed over pixels + KL(q(z|x) ‖ N(0, I)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { dense, makeDense } from './params.js';
import { EncoderDecoder, bceFromLogits, type AutoencoderConfig } from './autoencoder.js';

export interface VaeConfig extends AutoencoderConfig {
  /** Weight of the KL term (β-VAE); default 1. */
  beta?: number;
}

export class VAE extends EncoderDecoder {
  readonly kind = 'vae' as const;
  readonly beta: number;

  constructor(config: VaeConfig, name = `vae-${config.latentDim}d`) {
    super(config, name);
    this.beta = config.beta ?? 1;
  }

  protected makeHeads(features: number): void {
    makeDense(this.params, 'mu', features, this.config.latentDim);
    makeDense(this.params, 'logVar', features, this.config.latentDim);
  }

  /** Posterior parameters μ and log σ², each [N, k]. Differentiable; the caller tidies. */
  posterior(x: tf.Tensor4D): { mean: tf.Tensor2D; logVar: tf.Tensor2D } {
    const h = this.trunk(x);
    return { mean: dense(this.params, 'mu', h), logVar: dense(this.params, 'logVar', h) };
  }

  /** The posterior mean μ(x): the latent code used by LSE and CDeepEx. */
  encode(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => dense(this.params, 'mu', this.trunk(x)));
  }

  /** Reparameterised sample z = μ + exp(logVar / 2) · n, n ~ N(0, I) drawn with `seed`. */
  static reparameterize(mean: tf.Tensor2D, logVar: tf.Tensor2D, seed: number): tf.Tensor2D {
    const noise = tf.randomNormal(mean.shape, 0, 1, 'float32', seed);
    return tf.add(mean, tf.mul(tf.exp(tf.mul(logVar, 0.5)), noise));
  }

  /** Draw images from the prior: decode(z), z ~ N(0, I). */
  sample(n: number, seed: number): tf.Tensor4D {
    return tf.tidy(() => this.decode(tf.randomNormal([n, this.latentDim], 0, 1, 'float32', seed) as tf.Tensor2D));
  }

  /** Negative ELBO per image averaged over the batch. */
  loss(x: tf.Tensor4D, seed: number): tf.Scalar {
    const { mean, logVar } = this.posterior(x);
    const z = VAE.reparameterize(mean, logVar, seed);
    const rec = bceFromLogits(x, this.decodeLogits(z));
    // KL = −½ Σ (1 + logVar − μ² − exp(logVar))
    const kl = tf.mul(-0.5 / x.shape[0], tf.sum(tf.sub(tf.sub(tf.add(1, logVar), tf.square(mean)), tf.exp(logVar))));
    return tf.add(rec, tf.mul(kl, this.beta)) as tf.Scalar;
  }
}
