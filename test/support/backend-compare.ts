/**
 * Kernel tests compare the wasm backend (with Glasswing's kernels) against the cpu backend on the
 * same seeded inputs; these are the shared pieces.
 */
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';

/** Seeded normal values plus `offset` (a fixed LCG + Box–Muller: identical on every backend and run). */
export function seededNormals(n: number, seed: number, offset = 0): Float32Array {
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

/** A tensor of `shape` filled with seededNormals. */
export function seededTensor(shape: number[], seed: number, offset = 0): tf.Tensor {
  return tf.tensor(seededNormals(shape.reduce((a, b) => a * b, 1), seed, offset), shape);
}

/** Run f on cpu, then on wasm (left active); return both results as flat arrays. */
export async function onCpuAndWasm(f: () => tf.Tensor | tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
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

/** Max-abs error relative to the reference's (`a`) max-abs value, per output, at most `tol`. */
export function expectRelClose(a: Float32Array[], b: Float32Array[], tol = 1e-5): void {
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
