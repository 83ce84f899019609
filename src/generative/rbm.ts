/**
 * Gaussian–Bernoulli RBM (seed 003: the density expert for activation maximisation). Visible units
 * v ∈ ℝⁿ with fixed noise σ, binary hidden units h:
 *   E(v, h) = ‖v − b‖² / (2σ²) − cᵀh − (v/σ²)ᵀ W h
 *   F(v)    = ‖v − b‖² / (2σ²) − Σⱼ softplus(cⱼ + (Wᵀv)ⱼ / σ²)        (free energy)
 *   log p(v) = −F(v) − log Z                                          (Z is intractable: a constant)
 * Trained by contrastive divergence (CD-k): minimise mean F(v_data) − mean F(v_model) with v_model
 * from k Gibbs steps held constant, whose gradient is the CD update.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamStore } from './params.js';
import { createRng, nextSeed } from '../util/random.js';
import { fitLoss, type GenTrainOptions, type GenTrainResult } from './train.js';

export interface RbmConfig {
  /** Visible shape [h, w, c]; default [28, 28, 1]. */
  inputShape?: [number, number, number];
  hidden?: number;
  /** Visible noise standard deviation σ. Default 0.3 (MNIST pixels in [0, 1]). */
  sigma?: number;
  seed?: number;
}

export class GaussianRBM {
  readonly config: Required<RbmConfig>;
  readonly params: ParamStore;
  info: Record<string, unknown> = {};

  constructor(config: RbmConfig = {}) {
    this.config = { inputShape: config.inputShape ?? [28, 28, 1], hidden: config.hidden ?? 256, sigma: config.sigma ?? 0.3, seed: config.seed ?? 1 };
    const n = this.visible;
    this.params = new ParamStore(this.config.seed);
    this.params.normal('W', [n, this.config.hidden], 0.01);
    this.params.zeros('b', [n]);
    this.params.zeros('c', [this.config.hidden]);
  }

  get visible(): number {
    const [h, w, c] = this.config.inputShape;
    return h * w * c;
  }

  /** Free energy per image [N] (differentiable in x: ∇ₓ log p(x) = −∇ₓ F(x)). */
  freeEnergy(x: tf.Tensor): tf.Tensor1D {
    const s2 = this.config.sigma ** 2;
    const v = tf.reshape(x, [x.shape[0], this.visible]) as tf.Tensor2D;
    const quad = tf.div(tf.sum(tf.square(tf.sub(v, this.params.get('b'))), 1), 2 * s2);
    const pre = tf.add(tf.div(tf.matMul(v, this.params.get('W')), s2), this.params.get('c'));
    return tf.sub(quad, tf.sum(tf.softplus(pre), 1)) as tf.Tensor1D;
  }

  /** log p(x) up to the constant −log Z, per image [N]. */
  logDensity(x: tf.Tensor): tf.Tensor1D {
    return tf.neg(this.freeEnergy(x));
  }

  /** k steps of block Gibbs sampling from v (visible means kept noise-free on the last step). */
  gibbs(v0: tf.Tensor2D, k: number, seed: number): tf.Tensor2D {
    return tf.tidy(() => {
      const rng = createRng(seed);
      const s2 = this.config.sigma ** 2;
      const W = this.params.get('W');
      let v = v0;
      for (let i = 0; i < k; i++) {
        const ph = tf.sigmoid(tf.add(tf.div(tf.matMul(v, W), s2), this.params.get('c')));
        const h = tf.cast(tf.less(tf.randomUniform(ph.shape, 0, 1, 'float32', nextSeed(rng)), ph), 'float32');
        const mean = tf.add(tf.matMul(h, W, false, true), this.params.get('b'));
        v = i === k - 1 ? (mean as tf.Tensor2D) : (tf.add(mean, tf.randomNormal(mean.shape, 0, this.config.sigma, 'float32', nextSeed(rng))) as tf.Tensor2D);
      }
      return v;
    });
  }

  /** CD-k loss for a batch: mean F(data) − mean F(vk), vk from `gibbs` computed outside the tape. */
  cdLoss(x: tf.Tensor4D, vk: tf.Tensor2D): tf.Scalar {
    const v0 = tf.reshape(x, [x.shape[0], this.visible]) as tf.Tensor2D;
    return tf.sub(tf.mean(this.freeEnergy(v0)), tf.mean(this.freeEnergy(vk))) as tf.Scalar;
  }

  async train(images: tf.Tensor4D, opts: GenTrainOptions & { k?: number } = {}): Promise<GenTrainResult> {
    const k = opts.k ?? 1;
    const r = await fitLoss(
      (b, _s, vk) => this.cdLoss(b, vk as tf.Tensor2D),
      this.params.list(),
      images,
      { label: 'rbm', learningRate: 1e-3, ...opts },
      (b, s) => this.gibbs(tf.reshape(b, [b.shape[0], this.visible]) as tf.Tensor2D, k, s),
    );
    this.info = { trainImages: images.shape[0], epochs: opts.epochs ?? 10, trainSeconds: r.timeMs / 1000 };
    return r;
  }

  dispose(): void {
    this.params.dispose();
  }
}
