import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradient functions
import { initBackend } from '../src/engine/backend.js';
import { wasmKernelsInstalled } from '../src/engine/wasm-kernels/index.js';
import { expectRelClose, onCpuAndWasm, seededNormals, seededTensor } from './support/backend-compare.js';

beforeAll(async () => {
  await initBackend('wasm');
  expect(wasmKernelsInstalled()).toBe(true);
});

type ConvCase = { x: number[]; f: number[]; s: number | [number, number]; p: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] };
const convCases: ConvCase[] = [
  { x: [2, 9, 11, 3], f: [3, 3, 3, 4], s: 1, p: 'same' },
  { x: [2, 9, 11, 3], f: [3, 3, 3, 4], s: 2, p: 'same' },
  { x: [1, 9, 11, 3], f: [3, 2, 3, 4], s: 2, p: 'valid' },
  { x: [3, 10, 7, 1], f: [5, 5, 1, 4], s: [2, 1], p: 'valid' },
  { x: [3, 10, 7, 2], f: [1, 1, 2, 4], s: 2, p: 'valid' },
  { x: [2, 13, 13, 3], f: [7, 7, 3, 5], s: 2, p: 'same' },
  { x: [1, 8, 8, 4], f: [3, 3, 4, 1], s: 1, p: 'valid' },
  // more than 4 input channels: input gradient as a convolution (fewer: GEMM + col2im)
  { x: [2, 9, 11, 6], f: [3, 3, 6, 5], s: 2, p: 'same' },
  { x: [1, 10, 10, 8], f: [5, 5, 8, 4], s: 1, p: 'same' },
  { x: [3, 11, 8, 5], f: [3, 2, 5, 7], s: [2, 1], p: 'valid' },
  { x: [2, 12, 12, 5], f: [1, 1, 5, 3], s: 2, p: 'same' },
  { x: [1, 15, 13, 6], f: [7, 7, 6, 4], s: 2, p: 'same' },
  { x: [2, 14, 13, 5], f: [4, 5, 5, 3], s: 3, p: 'valid' },
  { x: [1, 10, 11, 8], f: [2, 3, 8, 4], s: [3, 2], p: 'same' },
  // explicit paddings, including one larger than the filter (fallback path)
  { x: [1, 6, 7, 5], f: [3, 3, 5, 4], s: 1, p: [[0, 0], [4, 1], [3, 4], [0, 0]] },
  { x: [2, 7, 6, 6], f: [3, 3, 6, 3], s: 2, p: [[0, 0], [1, 2], [2, 1], [0, 0]] },
  { x: [2, 7, 6, 2], f: [3, 3, 2, 3], s: 2, p: [[0, 0], [1, 0], [0, 1], [0, 0]] },
];

describe('wasm conv2d gradients match cpu', () => {
  for (const c of convCases) {
    it(`filter and input gradient ${JSON.stringify(c)}`, async () => {
      const before = tf.memory().numTensors;
      const [a, b] = await onCpuAndWasm(() => {
        const x = seededTensor(c.x, 1) as tf.Tensor4D;
        const w = seededTensor(c.f, 2) as tf.Tensor4D;
        const y = tf.conv2d(x, w, c.s, c.p);
        const dy = seededTensor(y.shape, 3);
        const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.s, c.p), dy)));
        return g([x, w]);
      });
      expectRelClose(a, b);
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
    const x = seededTensor([16, 12, 12, 1], 7);
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

/** Small integers in [lo, hi]: many ties. */
function ints(shape: number[], seed: number, lo: number, hi: number): tf.Tensor {
  const v = seededNormals(shape.reduce((a, b) => a * b, 1), seed);
  return tf.tensor(Array.from(v, (z) => Math.min(hi, Math.max(lo, Math.round(z * (hi - lo) / 3 + (lo + hi) / 2)))), shape);
}

describe('wasm MaxPoolGrad: first maximum in row-major window order, any sign', () => {
  const cases: Array<{ x: number[]; f: number | [number, number]; s: number | [number, number]; p: 'same' | 'valid'; lo: number; hi: number }> = [
    { x: [2, 8, 8, 3], f: 2, s: 2, p: 'valid', lo: -3, hi: 3 },
    { x: [2, 9, 7, 5], f: 2, s: 2, p: 'valid', lo: -1, hi: 1 },
    { x: [1, 7, 8, 3], f: 2, s: 1, p: 'valid', lo: -2, hi: 0 },
    { x: [2, 7, 7, 2], f: 2, s: 2, p: 'same', lo: -1, hi: 1 },
    { x: [2, 9, 7, 2], f: 3, s: 2, p: 'same', lo: -2, hi: 2 },
    { x: [1, 9, 9, 4], f: 3, s: 1, p: 'valid', lo: -5, hi: -1 },
    { x: [3, 7, 10, 1], f: [2, 3], s: [1, 2], p: 'same', lo: -1, hi: 1 },
  ];
  for (const c of cases) {
    it(`matches cpu ${JSON.stringify(c)}`, async () => {
      const before = tf.memory().numTensors;
      const [a, b] = await onCpuAndWasm(() => {
        const x = ints(c.x, 11, c.lo, c.hi);
        const y = tf.maxPool(x as tf.Tensor4D, c.f, c.s, c.p);
        const dy = seededTensor(y.shape, 12);
        return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, c.f, c.s, c.p), dy)))(x);
      });
      expectRelClose(a, b, 1e-6); // overlapping windows sum in a different order
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('hand-computed: ties and negative windows', async () => {
    await tf.setBackend('wasm');
    // one 2×4 image, 2×2 windows: [[-1,-1 | 0, 5], [-1,-2 | 5, 5]]
    const x = tf.tensor4d([-1, -1, 0, 5, -1, -2, 5, 5], [1, 2, 4, 1]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid'), tf.tensor4d([10, 20], [1, 1, 2, 1]))))(x);
    expect(Array.from(g.dataSync())).toEqual([10, 0, 0, 20, 0, 0, 0, 0]);
    tf.dispose([x, g]);
  });
});

describe('wasm depthwise conv gradients match cpu', () => {
  const cases: Array<{ x: number[]; f: number[]; s: number; p: 'same' | 'valid'; d: number }> = [
    { x: [2, 9, 8, 3], f: [3, 3, 3, 1], s: 1, p: 'same', d: 1 },
    { x: [2, 9, 8, 3], f: [3, 3, 3, 2], s: 2, p: 'same', d: 1 },
    { x: [3, 7, 7, 4], f: [5, 5, 4, 1], s: 2, p: 'valid', d: 1 },
  ];
  for (const c of cases) {
    it(`input and filter gradient ${JSON.stringify(c)}`, async () => {
      const before = tf.memory().numTensors;
      const [a, b] = await onCpuAndWasm(() => {
        const x = seededTensor(c.x, 21) as tf.Tensor4D;
        const w = seededTensor(c.f, 22) as tf.Tensor4D;
        const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.s, c.p, 'NHWC', c.d);
        const dy = seededTensor(f(x, w).shape, 23);
        return tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(f(xx, ww), dy)))([x, w]);
      });
      expectRelClose(a, b);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('depthwise kernels with dilation (tfjs has no gradient for it; kernels called directly)', () => {
  it('dilation 2 equals dilation 1 with the zero-expanded filter (cpu reference)', async () => {
    // a dilated filter [3,2] with dilation 2 is the filter [5,3] with zeros between the taps
    const x = seededNormals(1 * 11 * 10 * 2, 24);
    const w = seededNormals(3 * 2 * 2 * 2, 25);
    const dy = seededNormals(1 * 7 * 8 * 4, 26);
    const wide = new Float32Array(5 * 3 * 2 * 2);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) for (let k = 0; k < 4; k++) wide[((2 * i) * 3 + 2 * j) * 4 + k] = w[(i * 2 + j) * 4 + k];
    await tf.setBackend('cpu');
    const [rx, rwWide] = tf.tidy(() => tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, 'valid'), tf.tensor(dy, [1, 7, 8, 4]))))([tf.tensor(x, [1, 11, 10, 2]), tf.tensor(wide, [5, 3, 2, 2])]));
    const refX = rx.dataSync() as Float32Array;
    const wideGrad = rwWide.dataSync() as Float32Array;
    tf.dispose([rx, rwWide]);
    const refW = new Float32Array(w.length);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) for (let k = 0; k < 4; k++) refW[(i * 2 + j) * 4 + k] = wideGrad[((2 * i) * 3 + 2 * j) * 4 + k];
    await tf.setBackend('wasm');
    const attrs = { strides: [1, 1], dilations: [2, 2], pad: 'valid', dimRoundingMode: undefined };
    const out = tf.tidy(() => {
      const eng = tf.engine();
      const dyT = tf.tensor(dy, [1, 7, 8, 4]);
      return [
        eng.runKernel('DepthwiseConv2dNativeBackpropInput', { dy: dyT, filter: tf.tensor(w, [3, 2, 2, 2]) }, { ...attrs, inputShape: [1, 11, 10, 2] } as never) as tf.Tensor,
        eng.runKernel('DepthwiseConv2dNativeBackpropFilter', { x: tf.tensor(x, [1, 11, 10, 2]), dy: dyT }, { ...attrs, filterShape: [3, 2, 2, 2] } as never) as tf.Tensor,
      ];
    });
    expectRelClose([refX, refW], out.map((t) => t.dataSync() as Float32Array));
    tf.dispose(out);
  });
});

describe('other replaced wasm kernels match cpu', () => {
  it('gather gradient (UnsortedSegmentSum), repeated and unused indices', async () => {
    const [a, b] = await onCpuAndWasm(() => {
      const x = seededTensor([5, 3], 31);
      const idx = tf.tensor1d([4, 0, 4, 2, 4], 'int32');
      const dy = seededTensor([5, 3], 32);
      return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.gather(v, idx), dy)))(x);
    });
    expectRelClose(a, b);
    const [c, d] = await onCpuAndWasm(() => tf.unsortedSegmentSum(seededTensor([6, 2, 3], 33), tf.tensor1d([1, 1, 0, 3, 3, 3], 'int32'), 4));
    expectRelClose(c, d);
  });

  it('matMul with transposeA/transposeB, batched and broadcast, and the Dense backward', async () => {
    const shapes: Array<[number[], number[], boolean, boolean]> = [
      [[5, 7], [7, 4], false, false],
      [[7, 5], [7, 4], true, false],
      [[5, 7], [4, 7], false, true],
      [[7, 5], [4, 7], true, true],
      [[3, 7, 5], [3, 4, 7], true, true],
      [[2, 5, 6], [6, 3], false, false],
      [[1, 6], [4, 6], false, true],
      [[6, 1], [6, 4], true, false],
    ];
    for (const [sa, sb, ta, tb] of shapes) {
      const [a, b] = await onCpuAndWasm(() => tf.matMul(seededTensor(sa, 41), seededTensor(sb, 42), ta, tb));
      expectRelClose(a, b);
    }
    // the same weight twice (cached transpose), then a new weight of the same shape
    const [c, d] = await onCpuAndWasm(() => {
      const w = seededTensor([6, 4], 43);
      const w2 = seededTensor([6, 4], 44);
      const dy = seededTensor([3, 4], 45);
      return [tf.matMul(dy, w, false, true), tf.matMul(dy, w, false, true), tf.matMul(dy, w2, false, true)];
    });
    expectRelClose(c, d);
    // A one-unit Dense layer: its [16, 1] weight is B of the forward, then Wᵀ of the backward. XNNPACK
    // keeps B's packing per buffer, so a reshaped view of the same buffer as [1, 16] gave NaN.
    const [e, f] = await onCpuAndWasm(() => {
      const w = seededTensor([16, 1], 46);
      const x = seededTensor([64, 16], 47);
      const y = tf.matMul(x, w);
      return [y, tf.matMul(tf.onesLike(y), w, false, true), tf.matMul(seededTensor([64, 1], 48), w, false, true)];
    });
    expectRelClose(e, f);
  });

  it('slice (any rank, contiguous and strided runs) and the ZeroPadding gradient', async () => {
    const [a, b] = await onCpuAndWasm(() => [
      tf.slice(seededTensor([1, 9, 9, 3], 71), [0, 2, 1, 0], [1, 5, 6, 3]),
      tf.slice(seededTensor([2, 5, 4, 3], 72), [1, 0, 0, 0], [1, 5, 4, 3]),
      tf.slice(seededTensor([3, 4, 5], 73), [1, 1, 2], [2, 3, 2]),
      tf.slice(seededTensor([7], 74), [2], [4]),
      tf.slice(seededTensor([2, 3, 4, 5, 6], 75), [0, 1, 0, 2, 1], [2, 2, 4, 3, 5]),
      tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.pad(v, [[0, 0], [3, 2], [1, 3], [0, 0]]), seededTensor([2, 10, 9, 2], 76))))(seededTensor([2, 5, 5, 2], 77)),
    ]);
    expectRelClose(a, b, 0);
  });

  it('sum over leading axes (bias gradients) and other reductions', async () => {
    const [a, b] = await onCpuAndWasm(() => [
      tf.sum(seededTensor([4, 5, 6, 3], 81), [0, 1, 2]),
      tf.sum(seededTensor([4, 5, 6, 3], 82), [1, 0]),
      tf.sum(seededTensor([4, 5, 6, 3], 83), [0, 1, 2], true),
      tf.sum(seededTensor([4, 5, 6, 3], 84), [0]),
      tf.sum(seededTensor([4, 5, 6, 3], 85), [1, 3]),
      tf.sum(seededTensor([4, 5], 86)),
      tf.sum(seededTensor([4, 5], 87), -1),
    ]);
    expectRelClose(a, b);
    const [c, d] = await onCpuAndWasm(() => [tf.sum(tf.tensor2d([[1, 2], [3, 4]], undefined, 'int32'), 0)]);
    expect(Array.from(d[0])).toEqual(Array.from(c[0]));
  });

  it('tile, and the BatchNorm gradient that uses it', async () => {
    const [a, b] = await onCpuAndWasm(() => [
      tf.tile(seededTensor([1, 1, 1, 3], 51), [2, 3, 4, 1]),
      tf.tile(seededTensor([2, 3], 52), [3, 2]),
      tf.tile(seededTensor([4], 53), [3]),
    ]);
    expectRelClose(a, b, 0);
    const [c, d] = await onCpuAndWasm(() => {
      const x = seededTensor([2, 5, 4, 3], 54);
      const mean = seededTensor([3], 55);
      const variance = tf.abs(seededTensor([3], 56));
      const gamma = seededTensor([3], 57);
      const beta = seededTensor([3], 58);
      const dy = seededTensor([2, 5, 4, 3], 59);
      return tf.grads((xx: tf.Tensor, g: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm(xx, mean, variance, beta, g, 1e-3), dy)))([x, gamma]);
    });
    expectRelClose(c, d);
  });
});

describe('derived-buffer caches', () => {
  it('flipped filters and transposed weights are released with their source', async () => {
    await tf.setBackend('wasm');
    const { derivedCacheSize } = await import('../src/engine/wasm-kernels/common.js');
    const start = derivedCacheSize();
    const w = tf.tidy(() => tf.variable(seededTensor([3, 3, 2, 4], 61) as tf.Tensor4D));
    const m = tf.tidy(() => tf.variable(seededTensor([5, 4], 62)));
    const x = seededTensor([1, 6, 6, 2], 63) as tf.Tensor4D;
    const g1 = tf.grad((v: tf.Tensor) => tf.sum(tf.conv2d(v as tf.Tensor4D, w, 1, 'same')))(x);
    const v2 = seededTensor([2, 5], 64);
    const g2 = tf.grad((v: tf.Tensor) => tf.sum(tf.matMul(v, m)))(v2);
    expect(derivedCacheSize()).toBe(start + 2);
    tf.dispose([g1, g2, x, v2]);
    w.dispose();
    m.dispose();
    expect(derivedCacheSize()).toBe(start);
  });
});

describe('wasm depthwise input gradient through XNNPACK (multiplier 1: MobileNet-style layers)', () => {
  // stride 1 'same' (MobileNetV2's stride-1 blocks), stride 2 'valid' after an asymmetric
  // ZeroPadding2D (its stride-2 blocks), stride 2 'same', odd sizes, anisotropic strides, stride 3,
  // 5×5 filters and an explicit padding: every path (flipped filter, polyphase, padded fallback).
  const cases: Array<{ x: number[]; f: number[]; s: number | [number, number]; p: 'same' | 'valid' | number; pad?: [[number, number], [number, number]] }> = [
    { x: [2, 16, 16, 8], f: [3, 3, 8, 1], s: 1, p: 'same' },
    { x: [1, 16, 16, 8], f: [3, 3, 8, 1], s: 2, p: 'valid', pad: [[0, 1], [0, 1]] },
    { x: [1, 15, 15, 6], f: [3, 3, 6, 1], s: 2, p: 'valid', pad: [[1, 1], [1, 1]] },
    { x: [2, 15, 14, 5], f: [3, 3, 5, 1], s: 2, p: 'same' },
    { x: [1, 12, 11, 6], f: [5, 5, 6, 1], s: 2, p: 'valid' },
    { x: [1, 13, 12, 4], f: [5, 5, 4, 1], s: 1, p: 'same' },
    { x: [2, 11, 10, 3], f: [3, 2, 3, 1], s: [2, 1], p: 'same' },
    { x: [1, 14, 13, 5], f: [3, 3, 5, 1], s: 3, p: 'valid' },
    { x: [1, 9, 10, 4], f: [3, 3, 4, 1], s: 1, p: 2 },
  ];
  for (const c of cases) {
    it(`matches cpu ${JSON.stringify(c)}`, async () => {
      const before = tf.memory().numTensors;
      const [a, b] = await onCpuAndWasm(() => {
        const x0 = seededTensor(c.x, 91) as tf.Tensor4D;
        const w = seededTensor(c.f, 92) as tf.Tensor4D;
        const f = (xx: tf.Tensor) => {
          const xp = c.pad ? tf.pad(xx, [[0, 0], c.pad[0], c.pad[1], [0, 0]]) : xx;
          return tf.depthwiseConv2d(xp as tf.Tensor4D, w, c.s, c.p as 'same');
        };
        const dy = seededTensor(f(x0).shape, 93);
        return tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(f(xx), dy)))(x0);
      });
      expectRelClose(a, b, 1e-6);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('dilation 2 at stride 1 (kernel called directly; tfjs has no gradient for it) equals the cpu gradient of the zero-expanded filter', async () => {
    const x = seededNormals(2 * 11 * 10 * 3, 94);
    const w = seededNormals(3 * 3 * 3, 95);
    const dy = seededNormals(2 * 7 * 6 * 3, 96);
    const wide = new Float32Array(5 * 5 * 3);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) wide[((2 * i) * 5 + 2 * j) * 3 + k] = w[(i * 3 + j) * 3 + k];
    await tf.setBackend('cpu');
    const ref = tf.tidy(() => tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.depthwiseConv2d(xx as tf.Tensor4D, tf.tensor4d(wide, [5, 5, 3, 1]), 1, 'valid'), tf.tensor(dy, [2, 7, 6, 3]))))(tf.tensor(x, [2, 11, 10, 3])));
    const refX = ref.dataSync() as Float32Array;
    ref.dispose();
    await tf.setBackend('wasm');
    const out = tf.tidy(() => tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: tf.tensor(dy, [2, 7, 6, 3]), filter: tf.tensor(w, [3, 3, 3, 1]) },
      { strides: [1, 1], dilations: [2, 2], pad: 'valid', dimRoundingMode: undefined, inputShape: [2, 11, 10, 3] } as never) as tf.Tensor);
    expectRelClose([refX], [out.dataSync() as Float32Array], 1e-6);
    out.dispose();
  });
});

describe('wasm FusedBatchNorm (x·a + b on XNNPACK) matches cpu', () => {
  it('per-channel parameters, with and without scale/offset, and its gradient', async () => {
    const before = tf.memory().numTensors;
    const [a, b] = await onCpuAndWasm(() => {
      const x = seededTensor([2, 7, 5, 6], 101);
      const mean = seededTensor([6], 102);
      const variance = tf.add(tf.abs(seededTensor([6], 103)), 0.1);
      const gamma = seededTensor([6], 104);
      const beta = seededTensor([6], 105);
      const dy = seededTensor([2, 7, 5, 6], 106);
      return [
        tf.batchNorm(x, mean, variance, beta, gamma, 1e-3),
        tf.batchNorm(x, mean, variance, undefined, undefined, 1e-5),
        tf.batchNorm(seededTensor([3, 11], 107), seededTensor([11], 108), tf.add(tf.abs(seededTensor([11], 109)), 0.5), seededTensor([11], 110), seededTensor([11], 111), 1e-3),
        tf.batchNorm(seededTensor([1, 4, 4, 1], 112), tf.scalar(0.3), tf.scalar(2), tf.scalar(-1), tf.scalar(0.5), 1e-3),
        tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm(xx, mean, variance, beta, gamma, 1e-3), dy)))(x),
      ];
    });
    expectRelClose(a, b, 1e-6);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('activations far from the normalised range (mean 50, std 0.5) keep float32 accuracy', async () => {
    const [a, b] = await onCpuAndWasm(() => {
      const x = tf.add(tf.mul(seededTensor([1, 6, 6, 4], 113), 0.5), 50);
      return tf.batchNorm(x, tf.fill([4], 50), tf.fill([4], 0.25), tf.zeros([4]), tf.ones([4]), 1e-3);
    });
    // outputs are O(1); float32 x near 50 has a resolution of 3.8e-6, so 1e-5 of the range is float32's floor here
    expectRelClose(a, b, 1e-5);
  });
});

describe('leaner Relu6 and BatchNorm gradients (against the stock tfjs gradients on cpu)', () => {
  /** Reference: stock kernels and stock gradient configs on cpu; then Glasswing's on wasm. */
  async function stockCpuThenWasm(f: () => tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
    const { installWasmKernels, uninstallWasmKernels } = await import('../src/engine/wasm-kernels/index.js');
    uninstallWasmKernels();
    await tf.setBackend('cpu');
    const ref = tf.tidy(f);
    const a = ref.map((t) => t.dataSync() as Float32Array);
    tf.dispose(ref);
    installWasmKernels();
    await tf.setBackend('wasm');
    const out = tf.tidy(f);
    const b = out.map((t) => t.dataSync() as Float32Array);
    tf.dispose(out);
    return [a, b];
  }

  it('relu6: values at and around 0 and 6, negative, above 6, and a second-order gradient', async () => {
    const before = tf.memory().numTensors;
    const [a, b] = await stockCpuThenWasm(() => {
      const x = tf.reshape(tf.concat([tf.tensor1d([-1, 0, 1e-7, 3, 6, 6.0000005, 7, -0]), tf.reshape(tf.mul(seededTensor([2, 5, 4, 3], 121), 5), [-1])]), [1, 8, 4, 4]);
      const dy = seededTensor([1, 8, 4, 4], 122);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu6(v), dy)))(x);
      // d/dw of Σ relu6'(x)·w·dy is the mask times dy: exercises the gradient of the gradient kernel
      const w = tf.onesLike(x);
      const gg = tf.grad((ww: tf.Tensor) => tf.sum(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu6(v), tf.mul(ww, dy))))(x)))(w);
      return [g, gg];
    });
    expectRelClose(a, b, 0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('relu6 of NaN gives a NaN gradient, as stock tfjs does', async () => {
    const [a, b] = await stockCpuThenWasm(() => [tf.grad((v: tf.Tensor) => tf.sum(tf.relu6(v)))(tf.tensor1d([NaN, 2]))]);
    expect(Number.isNaN(a[0][0]) && Number.isNaN(b[0][0])).toBe(true);
    expect(b[0][1]).toBe(a[0][1]);
  });

  // (without a scale tensor tfjs cannot record batchNorm at all: its gradient config saves 'scale')
  it('batchNorm: gradients of x, mean, variance, scale and offset, per channel and full rank', async () => {
    const before = tf.memory().numTensors;
    const [a, b] = await stockCpuThenWasm(() => {
      const x = seededTensor([2, 5, 4, 3], 131);
      const mean = seededTensor([3], 132);
      const variance = tf.add(tf.abs(seededTensor([3], 133)), 0.2);
      const gamma = seededTensor([3], 134);
      const beta = seededTensor([3], 135);
      const dy = seededTensor([2, 5, 4, 3], 136);
      const f = (xx: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, o: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm(xx, m, v, o, g, 1e-3), dy));
      const perChannel = tf.grads(f)([x, mean, variance, gamma, beta]);
      const full = [seededTensor([2, 5, 4, 3], 137), seededTensor([2, 5, 4, 3], 138), tf.add(tf.abs(seededTensor([2, 5, 4, 3], 139)), 0.2), seededTensor([2, 5, 4, 3], 140), seededTensor([2, 5, 4, 3], 141)];
      const fullRank = tf.grads(f)(full);
      return [...perChannel, ...fullRank];
    });
    expectRelClose(a, b, 1e-6);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('wasm comparisons, logical ops, Select and bool casts (heap loops) equal cpu exactly', () => {
  function expectIdentical(a: Float32Array[], b: Float32Array[]): void {
    expect(b.length).toBe(a.length);
    for (let k = 0; k < a.length; k++) {
      expect(b[k].length).toBe(a[k].length);
      for (let i = 0; i < a[k].length; i++) if (!Object.is(a[k][i], b[k][i])) expect([k, i, b[k][i]]).toEqual([k, i, a[k][i]]);
    }
  }
  const special = () => tf.tensor1d([NaN, 0, -0, 1, -1, Infinity, -Infinity, 6, 6.0000005, 1e-30]);

  it('every comparison: equal shapes, a scalar on either side, int32, NaN, and a broadcast the stock kernel keeps', async () => {
    const before = tf.memory().numTensors;
    const ops = [tf.greater, tf.greaterEqual, tf.less, tf.lessEqual, tf.equal, tf.notEqual];
    const [a, b] = await onCpuAndWasm(() => {
      const x = tf.concat([special(), tf.round(tf.mul(seededTensor([50], 141), 2))]);
      const y = tf.concat([tf.tensor1d([NaN, -0, 0, 1, 2, Infinity, 0, 6, 6, 0]), tf.round(tf.mul(seededTensor([50], 142), 2))]);
      const xi = tf.cast(tf.round(tf.mul(seededTensor([3, 4], 143), 3)), 'int32');
      const m = seededTensor([2, 3, 4], 144);
      return ops.flatMap((op) => [
        op(x, y), op(x, 0), op(x, 6), op(tf.scalar(0.5), x), op(xi, tf.scalar(1, 'int32')), op(xi, xi),
        op(m, tf.tensor1d([0, 0.5, -0.5, 1])), op(x, NaN),
      ]).map((t) => tf.cast(t, 'float32'));
    });
    expectIdentical(a, b);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('logicalAnd / logicalOr: equal shapes and a scalar; where with NaN, ±0 and ±∞ in the branches; casts both ways', async () => {
    const before = tf.memory().numTensors;
    const [a, b] = await onCpuAndWasm(() => {
      const x = seededTensor([4, 5, 3], 151);
      const p = tf.greater(x, 0);
      const q = tf.less(x, 0.7);
      const v = tf.concat([special(), seededTensor([50], 152)]);
      const w = tf.concat([tf.tensor1d([1, NaN, Infinity, -0, 0, 2, 3, -Infinity, 0, 5]), seededTensor([50], 153)]);
      return [
        tf.logicalAnd(p, q), tf.logicalOr(p, q), tf.logicalAnd(p, tf.scalar(true, 'bool')), tf.logicalOr(tf.scalar(false, 'bool'), q),
        tf.where(tf.greaterEqual(v, 0), v, w), tf.where(tf.less(w, v), w, v),
        tf.cast(tf.notEqual(v, 0), 'int32'), tf.cast(v, 'bool'), tf.cast(tf.cast(tf.round(w), 'int32'), 'bool'), tf.cast(tf.cast(v, 'int32'), 'float32'),
      ].map((t) => tf.cast(t, 'float32'));
    });
    expectIdentical(a, b);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('maximum / minimum (equal shapes, a scalar either side, 0 on the bits, NaN, ±0, ±∞) and gather on any axis', async () => {
    const before = tf.memory().numTensors;
    const [a, b] = await onCpuAndWasm(() => {
      const v = tf.concat([special(), seededTensor([50], 161)]);
      const w = tf.concat([tf.tensor1d([1, -0, 0, NaN, -2, 3, Infinity, 7, 6, -1e-30]), seededTensor([50], 162)]);
      const img = seededTensor([5, 4, 3, 6], 163);
      const out = [
        tf.maximum(v, 0), tf.minimum(v, 0), tf.maximum(0, v), tf.minimum(tf.scalar(0), v), tf.maximum(v, 0.5), tf.minimum(v, -0.25),
        tf.maximum(v, w), tf.minimum(v, w), tf.maximum(tf.reshape(v, [6, 10]), tf.reshape(seededTensor([10], 164), [10])),
        tf.gather(img, tf.tensor1d([4, 0, 0, 2], 'int32')), tf.gather(img, tf.tensor1d([2, 1], 'int32'), 1),
        tf.gather(img, tf.tensor1d([5, 0, 3], 'int32'), 3), tf.gather(img, tf.tensor2d([[1, 0], [0, 2]], [2, 2], 'int32'), 2),
        tf.cast(tf.gather(tf.cast(tf.round(img), 'int32'), tf.tensor1d([3, 3], 'int32')), 'float32'),
      ];
      return out;
    });
    expectIdentical(a, b);
    expect(tf.memory().numTensors).toBe(before);
  });
});
