import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradient functions
import { initBackend } from '../src/engine/backend.js';
import { wasmKernelsInstalled } from '../src/engine/wasm-kernels/index.js';

/** Seeded normal values (fixed across backends). */
function values(n: number, seed: number, offset = 0): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const u1 = (s + 1) / 4294967297;
    s = (s * 1664525 + 1013904223) >>> 0;
    const u2 = s / 4294967296;
    out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2) + offset;
  }
  return out;
}
function rand(shape: number[], seed: number, offset = 0): tf.Tensor {
  return tf.tensor(values(shape.reduce((a, b) => a * b, 1), seed, offset), shape);
}

/** Run f on cpu and on wasm; return both results as flat arrays. */
async function onBoth(f: () => tf.Tensor | tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
  const out: Float32Array[][] = [];
  for (const b of ['cpu', 'wasm']) {
    await tf.setBackend(b);
    const r = tf.tidy(f);
    const list = Array.isArray(r) ? r : [r];
    out.push(list.map((t) => t.dataSync() as Float32Array));
    tf.dispose(list);
  }
  return [out[0], out[1]];
}

function expectClose(a: Float32Array[], b: Float32Array[], tol = 1e-5): void {
  expect(a.length).toBe(b.length);
  for (let k = 0; k < a.length; k++) {
    expect(b[k].length).toBe(a[k].length);
    let scale = 0;
    let err = 0;
    for (let i = 0; i < a[k].length; i++) {
      scale = Math.max(scale, Math.abs(a[k][i]));
      err = Math.max(err, Math.abs(a[k][i] - b[k][i]));
    }
    expect(err / Math.max(scale, 1e-12)).toBeLessThanOrEqual(tol);
  }
}

beforeAll(async () => {
  await initBackend('wasm');
  expect(wasmKernelsInstalled()).toBe(true);
});

type ConvCase = { x: number[]; f: number[]; s: number | [number, number]; p: 'same' | 'valid' };
const convCases: ConvCase[] = [
  { x: [2, 9, 11, 3], f: [3, 3, 3, 4], s: 1, p: 'same' },
  { x: [2, 9, 11, 3], f: [3, 3, 3, 4], s: 2, p: 'same' },
  { x: [1, 9, 11, 3], f: [3, 2, 3, 4], s: 2, p: 'valid' },
  { x: [3, 10, 7, 1], f: [5, 5, 1, 4], s: [2, 1], p: 'valid' },
  { x: [3, 10, 7, 2], f: [1, 1, 2, 4], s: 2, p: 'valid' },
  { x: [2, 13, 13, 3], f: [7, 7, 3, 5], s: 2, p: 'same' },
  { x: [1, 8, 8, 4], f: [3, 3, 4, 1], s: 1, p: 'valid' },
];

describe('wasm conv2d gradients match cpu', () => {
  for (const c of convCases) {
    it(`filter and input gradient ${JSON.stringify(c)}`, async () => {
      const before = tf.memory().numTensors;
      const [a, b] = await onBoth(() => {
        const x = rand(c.x, 1) as tf.Tensor4D;
        const w = rand(c.f, 2) as tf.Tensor4D;
        const y = tf.conv2d(x, w, c.s, c.p);
        const dy = rand(y.shape, 3);
        const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.s, c.p), dy)));
        return g([x, w]);
      });
      expectClose(a, b);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('training on wasm', () => {
  it('a small conv net trains (loss decreases) with the replacement kernels', async () => {
    await tf.setBackend('wasm');
    const tfl = await import('@tensorflow/tfjs-layers');
    const before = tf.memory().numTensors;
    const model = tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [12, 12, 1], filters: 6, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }),
    ] });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const x = rand([16, 12, 12, 1], 7);
    const labels = tf.oneHot(tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 3), 'int32'), 3);
    const losses: number[] = [];
    for (let i = 0; i < 15; i++) {
      const l = await model.trainOnBatch(x, labels);
      losses.push(Array.isArray(l) ? l[0] : l);
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.8);
    tf.dispose([x, labels]);
    model.optimizer.dispose();
    model.dispose();
    // tfjs-layers caches one scalar for the first compiled model; nothing else may remain.
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 1);
  });
});

describe('Identity shares buffers', () => {
  it('clone shares data, disposal keeps the other alive', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const a = tf.tensor([1, 2, 3]);
    const b = tf.clone(a);
    expect(b.dataId).toBe(a.dataId);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
