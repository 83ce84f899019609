/**
 * Encoder–decoder models on images: the plain autoencoder and the base of the VAE. Two variants:
 * 'dense' (MLP, fast to train on any backend) and 'conv' (two stride-2 convolutions / transposed
 * convolutions; training needs the patched wasm conv gradients or another backend).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamStore, dense, makeDense, conv, makeConv, deconv, makeDeconv } from './params.js';
import type { Generator, GeneratorKind } from './types.js';
import { OptionError } from '../core/errors.js';

export interface AutoencoderConfig {
  /** Size of the latent code. */
  latentDim: number;
  /** Image shape [h, w, c]; default [28, 28, 1]. */
  inputShape?: [number, number, number];
  /** 'dense' (default) or 'conv'. */
  variant?: 'dense' | 'conv';
  /** Hidden layer sizes of the dense variant (encoder order; the decoder mirrors them). Default [512, 256]. */
  hidden?: number[];
  /** Filters of the two conv layers of the conv variant. Default [32, 64]. */
  filters?: [number, number];
  /** Dense layer between the conv stack and the code, conv variant. Default 256. */
  convDense?: number;
  /** Weight initialisation seed. Default 1. */
  seed?: number;
}

export type ResolvedConfig = Required<AutoencoderConfig>;

export function resolveConfig(c: AutoencoderConfig): ResolvedConfig {
  if (!Number.isInteger(c.latentDim) || c.latentDim < 1) throw new OptionError(`expected latentDim a positive integer; got ${c.latentDim}`);
  const r: ResolvedConfig = {
    latentDim: c.latentDim,
    inputShape: c.inputShape ?? [28, 28, 1],
    variant: c.variant ?? 'dense',
    hidden: c.hidden ?? [512, 256],
    filters: c.filters ?? [32, 64],
    convDense: c.convDense ?? 256,
    seed: c.seed ?? 1,
  };
  if (r.variant !== 'dense' && r.variant !== 'conv') throw new OptionError(`expected variant 'dense' or 'conv'; got "${r.variant}"`);
  if (r.variant === 'conv' && (r.inputShape[0] % 4 !== 0 || r.inputShape[1] % 4 !== 0)) {
    throw new OptionError(`the conv variant needs image sides divisible by 4; got ${r.inputShape[0]}×${r.inputShape[1]}`);
  }
  return r;
}

/** Shared encoder trunk + decoder; subclasses add the code head(s). */
export abstract class EncoderDecoder implements Generator {
  abstract readonly kind: GeneratorKind;
  name: string;
  readonly config: ResolvedConfig;
  readonly params: ParamStore;
  info: Record<string, unknown> = {};

  constructor(config: AutoencoderConfig, name: string) {
    this.config = resolveConfig(config);
    this.name = name;
    this.params = new ParamStore(this.config.seed);
    const { inputShape: [h, w, c], hidden, filters, convDense, latentDim, variant } = this.config;
    const p = this.params;
    const pixels = h * w * c;
    if (variant === 'dense') {
      let prev = pixels;
      hidden.forEach((u, i) => {
        makeDense(p, `enc${i}`, prev, u);
        prev = u;
      });
      this.makeHeads(prev);
      prev = latentDim;
      [...hidden].reverse().forEach((u, i) => {
        makeDense(p, `dec${i}`, prev, u);
        prev = u;
      });
      makeDense(p, 'decOut', prev, pixels);
    } else {
      makeConv(p, 'encConv0', 3, c, filters[0]);
      makeConv(p, 'encConv1', 3, filters[0], filters[1]);
      const flat = (h / 4) * (w / 4) * filters[1];
      makeDense(p, 'encDense', flat, convDense);
      this.makeHeads(convDense);
      makeDense(p, 'decDense', latentDim, convDense);
      makeDense(p, 'decDense2', convDense, flat);
      makeDeconv(p, 'decConv0', 3, filters[1], filters[0]);
      makeDeconv(p, 'decConv1', 3, filters[0], c);
    }
  }

  get latentDim(): number {
    return this.config.latentDim;
  }

  get outputShape(): [number, number, number] {
    return this.config.inputShape;
  }

  protected abstract makeHeads(features: number): void;

  /** The encoder trunk: images → features [N, F]. */
  protected trunk(x: tf.Tensor4D): tf.Tensor2D {
    const p = this.params;
    const n = x.shape[0];
    if (this.config.variant === 'dense') {
      let a: tf.Tensor2D = tf.reshape(x, [n, -1]);
      this.config.hidden.forEach((_, i) => {
        a = dense(p, `enc${i}`, a, 'relu');
      });
      return a;
    }
    let a = conv(p, 'encConv0', x, 2, 'relu');
    a = conv(p, 'encConv1', a, 2, 'relu');
    return dense(p, 'encDense', tf.reshape(a, [n, -1]), 'relu');
  }

  /** Pre-sigmoid decoder output [N, h, w, c] (for a numerically stable cross-entropy). */
  decodeLogits(z: tf.Tensor2D): tf.Tensor4D {
    const p = this.params;
    const n = z.shape[0];
    const [h, w, c] = this.config.inputShape;
    if (this.config.variant === 'dense') {
      let a: tf.Tensor2D = z;
      this.config.hidden.forEach((_, i) => {
        a = dense(p, `dec${i}`, a, 'relu');
      });
      return tf.reshape(dense(p, 'decOut', a), [n, h, w, c]);
    }
    const f = this.config.filters;
    let a = dense(p, 'decDense', z, 'relu');
    a = dense(p, 'decDense2', a, 'relu');
    let b = tf.reshape(a, [n, h / 4, w / 4, f[1]]) as tf.Tensor4D;
    b = deconv(p, 'decConv0', b, 2, f[0], 'relu');
    return deconv(p, 'decConv1', b, 2, c);
  }

  decode(z: tf.Tensor2D): tf.Tensor4D {
    return tf.sigmoid(this.decodeLogits(z));
  }

  abstract encode(x: tf.Tensor4D): tf.Tensor2D;

  /** Training loss for a batch (scalar); `seed` drives any noise. */
  abstract loss(x: tf.Tensor4D, seed: number): tf.Scalar;

  /** Reconstruction g(e(x)). */
  reconstruct(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.decode(this.encode(x)));
  }

  /** Mean squared reconstruction error per pixel over a set of images (batched). */
  async reconstructionError(x: tf.Tensor4D, batchSize = 500): Promise<number> {
    let total = 0;
    for (let i = 0; i < x.shape[0]; i += batchSize) {
      const n = Math.min(batchSize, x.shape[0] - i);
      const s = tf.tidy(() => {
        const b = tf.slice(x, i, n);
        return tf.sum(tf.squaredDifference(this.decode(this.encode(b)), b));
      });
      total += (await s.data())[0];
      s.dispose();
    }
    return total / x.size;
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** Summed binary cross-entropy per image between targets x and decoder logits, averaged over the batch. */
export function bceFromLogits(x: tf.Tensor4D, logits: tf.Tensor4D): tf.Scalar {
  // max(l, 0) − l·x + log(1 + exp(−|l|))
  const per = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, x)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
  return tf.div(tf.sum(per), x.shape[0]) as tf.Scalar;
}

/** Plain (deterministic) autoencoder: x → code → x̂, trained on binary cross-entropy. */
export class Autoencoder extends EncoderDecoder {
  readonly kind = 'ae' as const;

  constructor(config: AutoencoderConfig, name = `ae-${config.latentDim}d`) {
    super(config, name);
  }

  protected makeHeads(features: number): void {
    makeDense(this.params, 'code', features, this.config.latentDim);
  }

  encode(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => dense(this.params, 'code', this.trunk(x)));
  }

  loss(x: tf.Tensor4D): tf.Scalar {
    return bceFromLogits(x, this.decodeLogits(dense(this.params, 'code', this.trunk(x))));
  }
}
