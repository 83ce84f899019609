/**
 * A small parameter store for the generative models: named tf.Variables created with seeded
 * initialisers, plus the forward helpers (dense, conv, transposed conv) the models are built from.
 * The models run their own forward passes with plain tfjs ops, so gradients with respect to the
 * latent code (LSE, CDeepEx, inversion) and with respect to the weights (training) use one code path.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all.
import '@tensorflow/tfjs-layers';
import { createRng, nextSeed, type Rng } from '../util/random.js';

export class ParamStore {
  readonly vars = new Map<string, tf.Variable>();
  private readonly rng: Rng;

  constructor(seed = 1) {
    this.rng = createRng(seed);
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`parameter "${name}" does not exist (have: ${[...this.vars.keys()].join(', ')})`);
    return v;
  }

  /** Glorot-uniform weight of the given shape; fanIn/fanOut computed for dense [in, out] and conv [h, w, in, out]. */
  glorot(name: string, shape: number[], fan?: { fanIn: number; fanOut: number }): tf.Variable {
    const receptive = shape.length === 4 ? shape[0] * shape[1] : 1;
    const fanIn = fan?.fanIn ?? (shape.length === 4 ? receptive * shape[2] : shape[0]);
    const fanOut = fan?.fanOut ?? (shape.length === 4 ? receptive * shape[3] : shape[shape.length - 1]);
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return this.add(name, tf.randomUniform(shape, -limit, limit, 'float32', nextSeed(this.rng)));
  }

  normal(name: string, shape: number[], std: number): tf.Variable {
    return this.add(name, tf.randomNormal(shape, 0, std, 'float32', nextSeed(this.rng)));
  }

  zeros(name: string, shape: number[]): tf.Variable {
    return this.add(name, tf.zeros(shape));
  }

  ones(name: string, shape: number[]): tf.Variable {
    return this.add(name, tf.ones(shape));
  }

  add(name: string, value: tf.Tensor): tf.Variable {
    if (this.vars.has(name)) throw new Error(`parameter "${name}" already exists`);
    const v = tf.variable(value, true);
    value.dispose();
    this.vars.set(name, v);
    return v;
  }

  /** Variables whose name starts with one of the prefixes (all when none given). */
  list(...prefixes: string[]): tf.Variable[] {
    return [...this.vars.entries()].filter(([k]) => prefixes.length === 0 || prefixes.some((p) => k.startsWith(p))).map(([, v]) => v);
  }

  /** Replace the values (shapes must match). */
  assign(values: Map<string, tf.Tensor>): void {
    for (const [k, v] of values) {
      const target = this.get(k);
      if (target.shape.join(',') !== v.shape.join(',')) {
        throw new Error(`parameter "${k}": expected shape [${target.shape.join(', ')}]; got [${v.shape.join(', ')}]`);
      }
      target.assign(v);
    }
  }

  count(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

export type Activation = 'relu' | 'leakyrelu' | 'sigmoid' | 'tanh' | 'linear';

export function activate(x: tf.Tensor, a: Activation): tf.Tensor {
  switch (a) {
    case 'relu':
      return tf.relu(x);
    case 'leakyrelu':
      return tf.leakyRelu(x, 0.2);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    default:
      return x;
  }
}

/** Dense layer. Its backward's transposed matMuls run on Glasswing's BatchMatMul kernel, which caches Wᵀ per weight buffer. */
export function dense(p: ParamStore, name: string, x: tf.Tensor, act: Activation = 'linear'): tf.Tensor2D {
  return activate(tf.add(tf.matMul(x as tf.Tensor2D, p.get(`${name}/w`) as tf.Tensor2D), p.get(`${name}/b`)), act) as tf.Tensor2D;
}

export function makeDense(p: ParamStore, name: string, inDim: number, outDim: number): void {
  p.glorot(`${name}/w`, [inDim, outDim]);
  p.zeros(`${name}/b`, [outDim]);
}

export function conv(p: ParamStore, name: string, x: tf.Tensor4D, stride: number, act: Activation = 'linear'): tf.Tensor4D {
  return activate(tf.add(tf.conv2d(x, p.get(`${name}/w`) as tf.Tensor4D, stride, 'same'), p.get(`${name}/b`)), act) as tf.Tensor4D;
}

export function makeConv(p: ParamStore, name: string, k: number, inC: number, outC: number): void {
  p.glorot(`${name}/w`, [k, k, inC, outC]);
  p.zeros(`${name}/b`, [outC]);
}

/** Transposed convolution, filter [k, k, outC, inC] as tf.conv2dTranspose expects; output spatial size = input × stride. */
export function deconv(p: ParamStore, name: string, x: tf.Tensor4D, stride: number, outC: number, act: Activation = 'linear'): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const y = tf.conv2dTranspose(x, p.get(`${name}/w`) as tf.Tensor4D, [n, h * stride, w * stride, outC], stride, 'same');
  return activate(tf.add(y, p.get(`${name}/b`)), act) as tf.Tensor4D;
}

export function makeDeconv(p: ParamStore, name: string, k: number, inC: number, outC: number): void {
  p.glorot(`${name}/w`, [k, k, outC, inC], { fanIn: k * k * inC, fanOut: k * k * outC });
  p.zeros(`${name}/b`, [outC]);
}

/** Identity whose gradient is zero (tfjs has no stopGradient op). */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.add(x, 0),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as any) as any;
