/**
 * The speed-ups of session 3 on the gradient family's kernels (docs/engine.md, "Per-core speed of
 * the gradient family"): each against the cpu backend (or tfjs' stock formula) on realistic shapes,
 * with odd sizes, stride 2 and both paddings, NaN/±∞ where the kernel sees them, and no leaks.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/engine/backend.js';
import { Classifier, explain } from '../src/index.js';
import { wasmKernelsInstalled } from '../src/engine/wasm-kernels/index.js';
import { expectRelClose, onCpuAndWasm, seededNormals, seededTensor } from './support/backend-compare.js';

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
    const [a, b] = await onCpuAndWasm(() => {
      const v = tf.concat([tf.tensor1d([NaN, 0, -0, 1, -1, Infinity, -Infinity, 0.5, 256, -1e-30]), seededTensor([1001], 3)]);
      const m = tf.greater(v, 0);
      return [tf.cast(m, 'float32'), tf.cast(tf.cast(m, 'int32'), 'float32'), tf.cast(tf.cast(v, 'bool'), 'float32'), tf.cast(tf.cast(tf.cast(m, 'float32'), 'bool'), 'float32')];
    });
    expectIdentical(a, b);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the ReLU gradient (tfjs: dy · cast(step(x))) equals cpu, NaN and ±∞ included', async () => {
    const before = tf.memory().numTensors;
    const [a, b] = await onCpuAndWasm(() => {
      const x = tf.reshape(tf.concat([tf.tensor1d([NaN, 0, -0, 1, -1, Infinity, -Infinity, 1e-30]), seededTensor([3 * 29 * 31 * 5 - 8], 4)]), [3, 29, 31, 5]);
      const dy = seededTensor([3, 29, 31, 5], 5);
      return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), dy)))(x);
    });
    expectIdentical(a, b);
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** Small integers in [lo, hi]: many ties. */
function ints(shape: number[], seed: number, lo: number, hi: number): tf.Tensor {
  const v = seededNormals(shape.reduce((a, b) => a * b, 1), seed);
  return tf.tensor(Array.from(v, (z) => Math.min(hi, Math.max(lo, Math.round(z * (hi - lo) / 3 + (lo + hi) / 2)))), shape);
}

describe('MaxPoolGrad 2×2 stride 2 by the first tap equal to the forward output', () => {
  const cases: Array<{ x: number[]; p: 'same' | 'valid'; lo: number; hi: number }> = [
    { x: [3, 28, 28, 8], p: 'valid', lo: -2, hi: 2 }, // MNIST pool1-like, ties everywhere
    { x: [2, 14, 14, 16], p: 'valid', lo: 0, hi: 3 }, // post-ReLU: zeros tie
    { x: [2, 9, 7, 5], p: 'valid', lo: -1, hi: 1 }, // odd sizes: last row / column in no window
    { x: [2, 9, 7, 3], p: 'same', lo: -1, hi: 1 }, // odd 'same': padded windows (other path)
    { x: [1, 8, 10, 4], p: 'valid', lo: -6, hi: -1 }, // all-negative windows
  ];
  for (const c of cases) {
    it(`matches cpu ${JSON.stringify(c)}`, async () => {
      const before = tf.memory().numTensors;
      const [a, b] = await onCpuAndWasm(() => {
        const x = ints(c.x, 41, c.lo, c.hi);
        const y = tf.maxPool(x as tf.Tensor4D, 2, 2, c.p);
        const dy = seededTensor(y.shape, 42);
        return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 2, 2, c.p), dy)))(x);
      });
      expectIdentical(a, b); // one winner per window: no sums, exact
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('NaN counts as the maximum (first NaN wins) although the stock forward pass skips it; a y from elsewhere falls back', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    // one 4×4 image, rows [1 NaN 3 2], [2 3 NaN NaN], [5 5 0 −0], [−1 −1 7 7]: four 2×2 windows
    const x = tf.tensor4d([1, NaN, 3, 2, 2, 3, NaN, NaN, 5, 5, 0, -0, -1, -1, 7, 7], [1, 4, 4, 1]);
    const dy = tf.tensor4d([10, 20, 30, 40], [1, 2, 2, 1]);
    const attrs = { filterSize: 2, strides: 2, pad: 'valid' } as unknown as tf.NamedAttrMap;
    const y = tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid');
    const g = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, attrs) as tf.Tensor;
    expect(Array.from(g.dataSync())).toEqual([0, 10, 0, 0, 0, 0, 20, 0, 30, 0, 0, 0, 0, 0, 40, 0]);
    // an output that is not this input's maximum: the running maximum decides
    const x2 = ints([2, 6, 8, 3], 43, -2, 2);
    const dy2 = seededTensor([2, 3, 4, 3], 44);
    const right = tf.maxPool(x2 as tf.Tensor4D, 2, 2, 'valid');
    const wrong = tf.add(right, 0.5);
    const g1 = tf.engine().runKernel('MaxPoolGrad', { dy: dy2, input: x2, output: right }, attrs) as tf.Tensor;
    const g2 = tf.engine().runKernel('MaxPoolGrad', { dy: dy2, input: x2, output: wrong }, attrs) as tf.Tensor;
    expectIdentical([g1.dataSync() as Float32Array], [g2.dataSync() as Float32Array]);
    tf.dispose([x, dy, y, g, x2, dy2, right, wrong, g1, g2]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('MaxPoolGrad, overlapping and padded windows, by the first tap equal to y', () => {
  const cases: Array<{ x: number[]; f: number | [number, number]; s: number | [number, number]; p: 'same' | 'valid'; lo: number; hi: number }> = [
    { x: [1, 57, 57, 8], f: 3, s: 2, p: 'same', lo: 0, hi: 3 }, // ResNet's stem pool (post-ReLU ties at 0)
    { x: [2, 15, 14, 5], f: 3, s: 2, p: 'valid', lo: -2, hi: 2 },
    { x: [2, 9, 10, 3], f: 2, s: 1, p: 'valid', lo: -1, hi: 1 }, // 2×2 stride 1 (overlapping)
    { x: [1, 11, 9, 4], f: [3, 2], s: [1, 2], p: 'same', lo: -6, hi: -1 }, // all negative, asymmetric
  ];
  for (const c of cases) {
    it(`matches cpu ${JSON.stringify(c)}`, async () => {
      const before = tf.memory().numTensors;
      const [a, b] = await onCpuAndWasm(() => {
        const x = ints(c.x, 51, c.lo, c.hi);
        const y = tf.maxPool(x as tf.Tensor4D, c.f, c.s, c.p);
        const dy = seededTensor(y.shape, 52);
        return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, c.f, c.s, c.p), dy)))(x);
      });
      expectRelClose(a, b, 1e-6); // overlapping windows add in a different order
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('a NaN anywhere (the running maximum then: NaN wins, also after a finite maximum) and a foreign y', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const attrs = { filterSize: 3, strides: 2, pad: 'valid' } as unknown as tf.NamedAttrMap;
    // one 3×3 window: 5 first, then NaN later in row-major order → the NaN gets the gradient
    const x = tf.tensor4d([1, 5, 2, 0, NaN, 3, 5, 1, 0], [1, 3, 3, 1]);
    const dy = tf.tensor4d([7], [1, 1, 1, 1]);
    const y = tf.maxPool(x as tf.Tensor4D, 3, 2, 'valid');
    const g = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, attrs) as tf.Tensor;
    expect(Array.from(g.dataSync())).toEqual([0, 0, 0, 0, 7, 0, 0, 0, 0]);
    const x2 = ints([2, 9, 11, 3], 53, -2, 2);
    const right = tf.maxPool(x2 as tf.Tensor4D, 3, 2, 'valid');
    const dy2 = seededTensor(right.shape, 54);
    const wrong = tf.add(right, 0.5);
    const g1 = tf.engine().runKernel('MaxPoolGrad', { dy: dy2, input: x2, output: right }, attrs) as tf.Tensor;
    const g2 = tf.engine().runKernel('MaxPoolGrad', { dy: dy2, input: x2, output: wrong }, attrs) as tf.Tensor;
    expectIdentical([g1.dataSync() as Float32Array], [g2.dataSync() as Float32Array]);
    tf.dispose([x, dy, y, g, x2, right, dy2, wrong, g1, g2]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('gradient-family methods after the per-core work', () => {
  /** MNIST-shaped CNN (conv 5×5 'same' + ReLU + 2×2 pool, twice, dense): reduced widths for test time. */
  function mnistLike(seed: number): tfl.LayersModel {
    const init = (k: number) => tfl.initializers.glorotNormal({ seed: seed * 10 + k });
    return tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 5, padding: 'same', activation: 'relu', name: 'conv1', kernelInitializer: init(1), biasInitializer: 'randomNormal' }),
      tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool1' }),
      tfl.layers.conv2d({ filters: 12, kernelSize: 5, padding: 'same', activation: 'relu', name: 'conv2', kernelInitializer: init(2) }),
      tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool2' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ units: 16, activation: 'relu', name: 'fc1', kernelInitializer: init(3) }),
      tfl.layers.dense({ units: 10, name: 'fc2', kernelInitializer: init(4) }),
    ] });
  }
  /** A functional net with a skip over 'c2' and a ReLU6: Grad-CAM's tail needs x, the guided rule max = 6. */
  function skipNet(seed: number): tfl.LayersModel {
    const init = (k: number) => tfl.initializers.glorotNormal({ seed: seed * 10 + k });
    const inp = tfl.input({ shape: [11, 9, 2] });
    const c1 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu6', name: 'c1', kernelInitializer: init(1) }).apply(inp) as tfl.SymbolicTensor;
    const c2 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'valid', activation: 'relu', name: 'c2', kernelInitializer: init(2) }).apply(tfl.layers.zeroPadding2d({ padding: 1 }).apply(c1)) as tfl.SymbolicTensor;
    const add = tfl.layers.add({ name: 'add' }).apply([c1, c2]) as tfl.SymbolicTensor;
    const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(add) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 5, name: 'out', kernelInitializer: init(3) }).apply(gap) as tfl.SymbolicTensor;
    return tfl.model({ inputs: inp, outputs: out });
  }

  it('guided Grad-CAM (one shared forward pass) equals guided backprop × the upsampled Grad-CAM map, in chunks too, without leaks', async () => {
    await tf.setBackend('wasm');
    const cases: Array<[tfl.LayersModel, [number, number, number], Record<string, unknown>]> = [
      [mnistLike(3), [28, 28, 1], {}],
      [mnistLike(4), [28, 28, 1], { batchSize: 2, upsample: 'nearest' }],
      [skipNet(5), [11, 9, 2], { layer: 'c2' }],
      [skipNet(6), [11, 9, 2], { relu: false, batchSize: 1 }],
    ];
    for (const [model, shape, options] of cases) {
      const clf = Classifier.fromModel(model);
      const x = tf.randomUniform([3, ...shape], 0, 1, 'float32', 21) as tf.Tensor4D;
      const target = [1, 4, 2];
      // first calls on a classifier cache per-model state (footprint, split): count from the second
      for (const m of ['guided-grad-cam', 'guided-backprop', 'grad-cam']) (await explain(m, clf, x, { target, options: m === 'guided-backprop' ? {} : options })).dispose();
      const before = tf.memory().numTensors;
      const gg = await explain('guided-grad-cam', clf, x, { target, options });
      const gb = await explain('guided-backprop', clf, x, { target, options: { batchSize: options.batchSize ?? 64 } });
      const gc = await explain('grad-cam', clf, x, { target, options });
      expect(gg.extras.layer).toBe(gc.extras.layer);
      const product = tf.tidy(() => tf.mul(gb.attribution, tf.slice(gc.attribution, [0, 0, 0, 0], [-1, -1, -1, 1])));
      const [want, got, rawWant, rawGot] = await Promise.all([
        product.data(), gg.attribution.data(), (gc.extras.raw as tf.Tensor).data(), (gg.extras.raw as tf.Tensor).data(),
      ]);
      product.dispose();
      expectRelClose([want as Float32Array, rawWant as Float32Array], [got as Float32Array, rawGot as Float32Array], 1e-6);
      let nonZero = 0;
      for (const v of got) if (v !== 0) nonZero++;
      expect(nonZero).toBeGreaterThan(10);
      [gg, gb, gc].forEach((e) => e.dispose());
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      model.dispose();
    }
  });

  it('the guided rule at ReLU6, hand-computed: z = 0 and z = 6 closed, 0 < z < 6 open, negative dy dropped', async () => {
    await tf.setBackend('wasm');
    // z = 6x through an identity 1×1 conv; logit 0 = Σ w_c relu6(z_c) with w = [1, −1, 1, 1, 2]
    const inp = tfl.input({ shape: [1, 1, 5] });
    const conv = tfl.layers.conv2d({ filters: 5, kernelSize: 1, activation: 'relu6', useBias: false, name: 'c' });
    const dense = tfl.layers.dense({ units: 2, useBias: false, name: 'd' });
    const model = tfl.model({ inputs: inp, outputs: dense.apply(tfl.layers.flatten().apply(conv.apply(inp))) as tfl.SymbolicTensor });
    conv.setWeights([tf.mul(tf.reshape(tf.eye(5), [1, 1, 5, 5]), 6)]);
    dense.setWeights([tf.tensor2d([1, 0, -1, 0, 1, 0, 1, 0, 2, 0], [5, 2])]);
    const x = tf.tensor4d([0.5, 0.5, 1, 0, 0.9], [1, 1, 1, 5]);
    const e = await explain('guided-backprop', Classifier.fromModel(model), x, { target: [0] });
    expect(Array.from(await e.attribution.data())).toEqual([6, 0, 0, 0, 12]);
    e.dispose();
    x.dispose();
    model.dispose();
  });

  it('the guided rule relu(dy)·1[0 < z < max] (as step masks) equals the comparison masks on cpu, at ReLU and ReLU6', async () => {
    for (const model of [mnistLike(7), skipNet(8)]) {
      const clf = Classifier.fromModel(model);
      const shape = clf.inputShape;
      const results: Float32Array[] = [];
      for (const backend of ['cpu', 'wasm']) {
        await tf.setBackend(backend);
        const x = tf.randomUniform([2, ...shape], 0, 1, 'float32', 31) as tf.Tensor4D;
        const e = await explain('guided-backprop', clf, x, { target: [0, 3] });
        results.push((await e.attribution.data()) as Float32Array);
        e.dispose();
        x.dispose();
      }
      await tf.setBackend('wasm');
      expectRelClose([results[0]], [results[1]], 1e-5);
      model.dispose();
    }
  });
});
