/**
 * The speed-ups of session 3 on the gradient family's kernels (docs/engine.md, "Per-core speed of
 * the gradient family"): each against the cpu backend (or tfjs' stock formula) on realistic shapes,
 * with odd sizes, stride 2 and both paddings, NaN/±∞ where the kernel sees them, and no leaks.
 */
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
  await tf.setBackend('wasm');
  return [out[0], out[1]];
}

/** Max-abs error relative to the reference's max-abs value, per output. */
function expectClose(a: Float32Array[], b: Float32Array[], tol = 1e-5): void {
  expect(b.length).toBe(a.length);
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

function expectIdentical(a: Float32Array[], b: Float32Array[]): void {
  expect(b.length).toBe(a.length);
  for (let k = 0; k < a.length; k++) {
    expect(b[k].length).toBe(a[k].length);
    for (let i = 0; i < a[k].length; i++) if (!Object.is(a[k][i], b[k][i])) expect([k, i, b[k][i]]).toEqual([k, i, a[k][i]]);
  }
}

beforeAll(async () => {
  await initBackend('wasm');
  expect(wasmKernelsInstalled()).toBe(true);
});

describe('Cast: same dtype shares the buffer, bool → number by TypedArray.set', () => {
  it('same-dtype casts share the data and survive the source', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const x = tf.tensor1d([1.5, -2, NaN, -0]);
    const i = tf.tensor1d([3, -4], 'int32');
    const m = tf.tensor1d([1, 0, 1], 'bool');
    const cx = tf.cast(x, 'float32');
    const ci = tf.cast(i, 'int32');
    const cm = tf.cast(m, 'bool');
    // shared, not copied (dataIds are empty objects: compare identities)
    expect(cx.dataId).toBe(x.dataId);
    expect(ci.dataId).toBe(i.dataId);
    expect(cm.dataId).toBe(m.dataId);
    tf.dispose([x, i, m]);
    expect(Array.from(cx.dataSync()).map((v) => Object.is(v, -0) ? '-0' : v)).toEqual([1.5, -2, NaN, '-0']);
    expect(Array.from(ci.dataSync())).toEqual([3, -4]);
    expect(Array.from(cm.dataSync())).toEqual([1, 0, 1]);
    tf.dispose([cx, ci, cm]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('bool → float32 / int32 and back equal cpu exactly (the ReLU gradient of tfjs casts its step mask)', async () => {
    const before = tf.memory().numTensors;
    const [a, b] = await onBoth(() => {
      const v = tf.concat([tf.tensor1d([NaN, 0, -0, 1, -1, Infinity, -Infinity, 0.5, 256, -1e-30]), rand([1001], 3)]);
      const m = tf.greater(v, 0);
      return [tf.cast(m, 'float32'), tf.cast(tf.cast(m, 'int32'), 'float32'), tf.cast(tf.cast(v, 'bool'), 'float32'), tf.cast(tf.cast(tf.cast(m, 'float32'), 'bool'), 'float32')];
    });
    expectIdentical(a, b);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the ReLU gradient (tfjs: dy · cast(step(x))) equals cpu, NaN and ±∞ included', async () => {
    const before = tf.memory().numTensors;
    const [a, b] = await onBoth(() => {
      const x = tf.reshape(tf.concat([tf.tensor1d([NaN, 0, -0, 1, -1, Infinity, -Infinity, 1e-30]), rand([3 * 29 * 31 * 5 - 8], 4)]), [3, 29, 31, 5]);
      const dy = rand([3, 29, 31, 5], 5);
      return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), dy)))(x);
    });
    expectIdentical(a, b);
    expect(tf.memory().numTensors).toBe(before);
  });
});
