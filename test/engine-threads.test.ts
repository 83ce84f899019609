// Opt-in wasm threads (GLASSWING_WASM_THREADS): a child process starts the backend with 2 XNNPACK
// threads, checks the replacement kernels against the cpu backend there, and must exit by itself
// (the pthread pool must not keep Node alive); the same script without the variable runs 1 thread.
// Uses the built package (dist/, as `npm test` builds it first).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const BACKEND = resolve(__dirname, '../dist/src/engine/backend.js');

const SCRIPT = `
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
const { initBackend, wasmThreadCount } = await import(${JSON.stringify('file://' + BACKEND)});
await initBackend('wasm');
const { wasmKernelsInstalled } = await import(${JSON.stringify('file://' + resolve(__dirname, '../dist/src/engine/wasm-kernels/index.js'))});
function values(n, seed) { let s = seed; const a = new Float32Array(n); for (let i = 0; i < n; i++) { s = (s * 1664525 + 1013904223) >>> 0; a[i] = s / 4294967296 - 0.5; } return a; }
const t = (shape, seed) => tf.tensor(values(shape.reduce((a, b) => a * b, 1), seed), shape);
const f = () => {
  const x = t([4, 17, 15, 8], 1), w = t([3, 3, 8, 16], 2), dw = t([3, 3, 16, 1], 3);
  const m = t([16], 4), v = tf.add(tf.abs(t([16], 5)), 0.5), g = t([16], 6), b = t([16], 7);
  const net = (xx, ww) => tf.relu6(tf.batchNorm(tf.depthwiseConv2d(tf.conv2d(xx, ww, 2, 'same'), dw, 1, 'same'), m, v, b, g, 1e-3));
  return tf.grads((xx, ww) => tf.sum(tf.mul(net(xx, ww), t([4, 9, 8, 16], 8))))([x, w]);
};
const out = [];
for (const be of ['cpu', 'wasm']) { await tf.setBackend(be); const r = tf.tidy(f); out.push(r.map((x) => Array.from(x.dataSync()))); tf.dispose(r); }
let err = 0, scale = 0;
out[0].forEach((a, k) => a.forEach((v, i) => { scale = Math.max(scale, Math.abs(v)); err = Math.max(err, Math.abs(v - out[1][k][i])); }));
console.log(JSON.stringify({ threads: await wasmThreadCount(), kernels: wasmKernelsInstalled(), relErr: err / scale }));
`;

function runChild(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT], {
    cwd: resolve(__dirname, '..'), encoding: 'utf8', timeout: 90_000, env: { ...process.env, ...env },
  });
  return { status: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

describe('wasm threads (opt-in)', () => {
  it('GLASSWING_WASM_THREADS=2: 2 threads, gradients equal cpu, the process exits on its own', () => {
    const r = runChild({ GLASSWING_WASM_THREADS: '2' });
    expect(r.signal, r.err).toBeNull();
    expect(r.status, r.err).toBe(0);
    const res = JSON.parse(r.out.trim().split('\n').pop()!);
    expect(res.threads).toBe(2);
    expect(res.kernels).toBe(true);
    expect(res.relErr).toBeLessThan(1e-5);
  }, 120_000);

  it('without the variable: 1 thread (the default), same results', () => {
    const r = runChild({ GLASSWING_WASM_THREADS: '' });
    expect(r.status, r.err).toBe(0);
    const res = JSON.parse(r.out.trim().split('\n').pop()!);
    expect(res.threads).toBe(1);
    expect(res.relErr).toBeLessThan(1e-5);
  }, 120_000);

  it('an invalid value is a one-line typed error', () => {
    const r = runChild({ GLASSWING_WASM_THREADS: 'lots' });
    expect(r.status).not.toBe(0);
    expect(r.err).toMatch(/OptionError|expected GLASSWING_WASM_THREADS to be an integer from 1 to 64; got "lots"/);
  }, 120_000);
});
