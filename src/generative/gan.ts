/**
 * DCGAN-style generator and critic trained with the Wasserstein objective (Arjovsky et al. 2017,
 * seed 001 ref. [1]): the critic maximises E[D(x)] − E[D(G(z))] with weights clipped to ±clip,
 * the generator minimises −E[D(G(z))]; RMSProp, nCritic critic steps per generator step.
 * Variants: 'conv' (DCGAN: dense → 7×7 → transposed convs with batch norm and ReLU; strided conv
 * critic with leaky ReLU) and 'dense' (MLP generator and critic, fast on any backend).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamStore, dense, makeDense, conv, makeConv, deconv, makeDeconv, stopGradient } from './params.js';
import type { Generator } from './types.js';
import { createRng, nextSeed } from '../util/random.js';
import { progress } from '../util/progress.js';
import { takeRows } from './train.js';
import { OptionError } from '../core/errors.js';

export interface GanConfig {
  latentDim: number;
  inputShape?: [number, number, number];
  variant?: 'dense' | 'conv';
  /** Dense variant hidden sizes (generator order). Default [256, 512]. */
  hidden?: number[];
  /** Conv variant filters [deep, shallow]. Default [64, 32]. */
  filters?: [number, number];
  seed?: number;
}

export interface WganTrainOptions {
  /** Generator steps. Default 2000. */
  iterations?: number;
  batchSize?: number;
  learningRate?: number;
  /** Critic steps per generator step. Default 5. */
  nCritic?: number;
  /** Critic weight clipping. Default 0.01. */
  clip?: number;
  seed?: number;
  quiet?: boolean;
  /** Stop after this many seconds (the steps done so far are kept). */
  maxSeconds?: number;
  /**
   * The WGAN paper's schedule (Arjovsky et al. 2017, Algorithm 1 code): 100 critic steps for each of
   * the first 25 generator steps and every 500th, so that the critic is near its optimum early. Default false.
   */
  criticWarmup?: boolean;
}

const BN_EPS = 1e-5;

export class WGAN implements Generator {
  readonly kind = 'gan' as const;
  name: string;
  readonly config: Required<GanConfig>;
  readonly params: ParamStore;
  info: Record<string, unknown> = {};

  constructor(config: GanConfig, name = `wgan-${config.latentDim}d`) {
    this.config = {
      latentDim: config.latentDim,
      inputShape: config.inputShape ?? [28, 28, 1],
      variant: config.variant ?? 'conv',
      hidden: config.hidden ?? [256, 512],
      filters: config.filters ?? [64, 32],
      seed: config.seed ?? 1,
    };
    const { latentDim, inputShape: [h, w, c], variant, hidden, filters } = this.config;
    if (variant === 'conv' && (h % 4 !== 0 || w % 4 !== 0)) throw new OptionError(`the conv GAN needs image sides divisible by 4; got ${h}×${w}`);
    this.name = name;
    const p = (this.params = new ParamStore(this.config.seed));
    const pixels = h * w * c;
    if (variant === 'dense') {
      let prev = latentDim;
      hidden.forEach((u, i) => {
        makeDense(p, `g/d${i}`, prev, u);
        prev = u;
      });
      makeDense(p, 'g/out', prev, pixels);
      prev = pixels;
      [...hidden].reverse().forEach((u, i) => {
        makeDense(p, `d/d${i}`, prev, u);
        prev = u;
      });
      makeDense(p, 'd/out', prev, 1);
    } else {
      const flat = (h / 4) * (w / 4) * filters[0];
      makeDense(p, 'g/fc', latentDim, flat);
      this.makeBn('g/bn0', flat);
      makeDeconv(p, 'g/up0', 4, filters[0], filters[1]);
      this.makeBn('g/bn1', filters[1]);
      makeDeconv(p, 'g/up1', 4, filters[1], c);
      makeConv(p, 'd/c0', 4, c, filters[1]);
      makeConv(p, 'd/c1', 4, filters[1], filters[0]);
      makeDense(p, 'd/out', flat, 1);
    }
  }

  get latentDim(): number {
    return this.config.latentDim;
  }

  get outputShape(): [number, number, number] {
    return this.config.inputShape;
  }

  private makeBn(name: string, n: number): void {
    this.params.ones(`${name}/gamma`, [n]);
    this.params.zeros(`${name}/beta`, [n]);
    this.params.zeros(`${name}/mean`, [n]);
    this.params.ones(`${name}/var`, [n]);
  }

  /** Batch norm over all but the last axis: batch statistics when training (running stats updated), else running stats. */
  private bn(name: string, x: tf.Tensor, training: boolean): tf.Tensor {
    const p = this.params;
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    let mean: tf.Tensor = p.get(`${name}/mean`);
    let variance: tf.Tensor = p.get(`${name}/var`);
    if (training) {
      const m = tf.moments(x, axes);
      mean = m.mean;
      variance = m.variance;
      const rm = p.get(`${name}/mean`);
      const rv = p.get(`${name}/var`);
      tf.tidy(() => {
        rm.assign(tf.add(tf.mul(rm, 0.99), tf.mul(stopGradient(mean), 0.01)));
        rv.assign(tf.add(tf.mul(rv, 0.99), tf.mul(stopGradient(variance), 0.01)));
      });
    }
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, BN_EPS))), p.get(`${name}/gamma`)), p.get(`${name}/beta`));
  }

  /** Generator forward; `training` uses batch statistics in batch norm. */
  generate(z: tf.Tensor2D, training = false): tf.Tensor4D {
    const p = this.params;
    const n = z.shape[0];
    const { inputShape: [h, w, c], variant, hidden, filters } = this.config;
    if (variant === 'dense') {
      let a: tf.Tensor2D = z;
      hidden.forEach((_, i) => {
        a = dense(p, `g/d${i}`, a, 'relu');
      });
      return tf.reshape(dense(p, 'g/out', a, 'sigmoid'), [n, h, w, c]);
    }
    let a: tf.Tensor = dense(p, 'g/fc', z);
    a = tf.relu(this.bn('g/bn0', a, training));
    let b = tf.reshape(a, [n, h / 4, w / 4, filters[0]]) as tf.Tensor4D;
    b = deconv(p, 'g/up0', b, 2, filters[1]);
    b = tf.relu(this.bn('g/bn1', b, training)) as tf.Tensor4D;
    return tf.sigmoid(deconv(p, 'g/up1', b, 2, c));
  }

  decode(z: tf.Tensor2D): tf.Tensor4D {
    return this.generate(z, false);
  }

  /** Critic score per image [N]. */
  critic(x: tf.Tensor4D): tf.Tensor1D {
    const p = this.params;
    const n = x.shape[0];
    if (this.config.variant === 'dense') {
      let a: tf.Tensor2D = tf.reshape(x, [n, -1]);
      this.config.hidden.forEach((_, i) => {
        a = dense(p, `d/d${i}`, a, 'leakyrelu');
      });
      return tf.reshape(dense(p, 'd/out', a), [n]);
    }
    let b = conv(p, 'd/c0', x, 2, 'leakyrelu');
    b = conv(p, 'd/c1', b, 2, 'leakyrelu');
    return tf.reshape(dense(p, 'd/out', tf.reshape(b, [n, -1])), [n]);
  }

  sample(n: number, seed: number): tf.Tensor4D {
    return tf.tidy(() => this.decode(tf.randomNormal([n, this.latentDim], 0, 1, 'float32', seed) as tf.Tensor2D));
  }

  criticVars(): tf.Variable[] {
    return this.params.list('d/');
  }

  generatorVars(): tf.Variable[] {
    return [...this.params.vars.entries()].filter(([k]) => k.startsWith('g/') && !k.endsWith('/mean') && !k.endsWith('/var')).map(([, v]) => v);
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** Train a WGAN on images in [0, 1]. Returns the critic's Wasserstein estimate per logged step. */
export async function trainWgan(gan: WGAN, images: tf.Tensor4D, opts: WganTrainOptions = {}): Promise<{ wasserstein: number[]; timeMs: number; iterations: number }> {
  const iterations = opts.iterations ?? 2000;
  const batch = opts.batchSize ?? 64;
  const nCritic = opts.nCritic ?? 5;
  const clip = opts.clip ?? 0.01;
  const rng = createRng(opts.seed ?? 1);
  const optD = tf.train.rmsprop(opts.learningRate ?? 5e-5);
  const optG = tf.train.rmsprop(opts.learningRate ?? 5e-5);
  const n = images.shape[0];
  const bar = opts.quiet ? undefined : progress(gan.name, iterations);
  const dVars = gan.criticVars();
  const gVars = gan.generatorVars();
  const w: number[] = [];
  const start = performance.now();
  let it = 0;
  for (; it < iterations; it++) {
    if (opts.maxSeconds && (performance.now() - start) / 1000 > opts.maxSeconds) break;
    let last = 0;
    const criticSteps = opts.criticWarmup && (it < 25 || it % 500 === 0) ? 100 : nCritic;
    for (let k = 0; k < criticSteps; k++) {
      const idx = Array.from({ length: batch }, () => Math.floor(rng() * n));
      const real = takeRows(images, idx);
      const zSeed = nextSeed(rng);
      const cost = optD.minimize(() => {
        const z = tf.randomNormal([batch, gan.latentDim], 0, 1, 'float32', zSeed) as tf.Tensor2D;
        const fake = stopGradient(gan.generate(z, false)) as tf.Tensor4D;
        return tf.sub(tf.mean(gan.critic(fake)), tf.mean(gan.critic(real))) as tf.Scalar;
      }, true, dVars)!;
      // Read the estimate only after the last critic step (each read waits for the backend).
      if (k === criticSteps - 1) last = -(await cost.data())[0];
      cost.dispose();
      real.dispose();
      tf.tidy(() => {
        for (const v of dVars) v.assign(tf.clipByValue(v, -clip, clip));
      });
    }
    const gSeed = nextSeed(rng);
    const gCost = optG.minimize(() => {
      const z = tf.randomNormal([batch, gan.latentDim], 0, 1, 'float32', gSeed) as tf.Tensor2D;
      return tf.neg(tf.mean(gan.critic(gan.generate(z, true)))) as tf.Scalar;
    }, true, gVars)!;
    gCost.dispose();
    w.push(last);
    bar?.tick(`W ${last.toFixed(4)}`);
  }
  bar?.done();
  optD.dispose();
  optG.dispose();
  const timeMs = performance.now() - start;
  gan.info = { ...gan.info, trainImages: n, iterations: it, nCritic, criticWarmup: !!opts.criticWarmup, learningRate: opts.learningRate ?? 5e-5, clip, batchSize: batch, seed: opts.seed ?? 1, finalWasserstein: w[w.length - 1], trainSeconds: timeMs / 1000 };
  return { wasserstein: w, timeMs, iterations: it };
}
