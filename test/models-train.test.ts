import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { DataError, OptionError } from '../src/core/errors.js';
import { loadMnist, type Dataset } from '../src/data/index.js';
import { buildCnn, buildMlp } from '../src/models/architectures.js';
import { trainModel, modelAccuracy, BatchSource } from '../src/models/train.js';

let ds: Dataset;

beforeAll(async () => {
  await initBackend();
  ds = await loadMnist({ split: 'train', limit: 384 });
});

afterAll(() => ds.dispose());

describe('trainModel', () => {
  it('an MLP learns: loss falls, training accuracy rises, and it leaks nothing', async () => {
    const m = buildMlp({ hidden: [64], seed: 1 });
    const before = await modelAccuracy(m, ds);
    const tensors = tf.memory().numTensors;
    const epochs: number[] = [];
    const h = await trainModel(m, ds, { epochs: 4, batchSize: 32, learningRate: 2e-3, seed: 3, onEpoch: (s) => void epochs.push(s.epoch) });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(epochs).toEqual([1, 2, 3, 4]);
    expect(h.epochs).toBe(4);
    expect(h.loss).toHaveLength(4);
    expect(h.loss[3]).toBeLessThan(h.loss[0]);
    expect(h.accuracy[3]).toBeGreaterThan(h.accuracy[0]);
    const after = await modelAccuracy(m, ds);
    expect(after.loss).toBeLessThan(before.loss * 0.5);
    expect(after.accuracy).toBeGreaterThan(0.85);
    m.dispose();
  });

  it('a CNN learns too (conv filter gradients)', async () => {
    const m = buildCnn({ convs: [{ filters: 4, kernelSize: 3, pool: 2 }], dense: [16], seed: 2 });
    const before = await modelAccuracy(m, ds);
    const tensors = tf.memory().numTensors;
    const h = await trainModel(m, ds, { epochs: 2, batchSize: 32, learningRate: 3e-3, seed: 1, augment: { shift: 1 } });
    expect(tf.memory().numTensors).toBe(tensors);
    const after = await modelAccuracy(m, ds);
    expect(after.loss).toBeLessThan(before.loss * 0.6);
    expect(h.loss[1]).toBeLessThan(h.loss[0]);
    m.dispose();
  });

  it('is reproducible: same seeds give the same weights; another shuffling seed gives other weights', async () => {
    const sub = { images: tf.slice(ds.images, 0, 128) as tf.Tensor4D, labels: ds.labels.slice(0, 128) };
    const run = async (seed: number) => {
      const m = buildMlp({ hidden: [16], seed: 7 });
      const h = await trainModel(m, sub, { epochs: 1, batchSize: 16, seed, augment: { shift: 2 } });
      const w = Array.from(m.getWeights()[0].dataSync());
      m.dispose();
      return { w, loss: h.loss[0] };
    };
    const a = await run(5);
    const b = await run(5);
    const c = await run(6);
    expect(b.loss).toBe(a.loss);
    expect(b.w).toEqual(a.w);
    expect(c.w).not.toEqual(a.w);
    sub.images.dispose();
  });

  it('SGD, a learning-rate schedule, validation and early stopping with restore of the best epoch', async () => {
    const val = { images: tf.slice(ds.images, 300, 84) as tf.Tensor4D, labels: ds.labels.slice(300, 384) };
    const train = { images: tf.slice(ds.images, 0, 300) as tf.Tensor4D, labels: ds.labels.slice(0, 300) };
    const m = buildMlp({ hidden: [32], seed: 3 });
    const tensors = tf.memory().numTensors;
    const h = await trainModel(m, train, {
      optimizer: 'sgd', learningRate: 0.05, lrSchedule: (e) => 0.05 / (1 + e), epochs: 30, batchSize: 50, seed: 1,
      validation: val, earlyStop: { patience: 2, minDelta: 0.5 },
    });
    expect(tf.memory().numTensors).toBe(tensors);
    // minDelta 0.5 can never be met after the first epoch: stop after 1 + patience epochs.
    expect(h.epochs).toBe(3);
    expect(h.stoppedEarly).toBe(true);
    expect(h.bestEpoch).toBe(1);
    expect(h.learningRate).toEqual([0.05, 0.025, 0.05 / 3]);
    expect(h.valAccuracy).toHaveLength(3);
    // The restored weights are those of epoch 1.
    const now = await modelAccuracy(m, val);
    expect(now.accuracy).toBeCloseTo(h.valAccuracy[0], 10);
    m.dispose();
    val.images.dispose();
    train.images.dispose();
  });

  it('rejects bad options and data with what was expected and what came', async () => {
    const m = buildMlp({ hidden: [8] });
    await expect(trainModel(m, ds, { epochs: 0 })).rejects.toThrow(OptionError);
    await expect(trainModel(m, ds, { learningRate: -1 })).rejects.toThrow(/learningRate > 0; got -1/);
    await expect(trainModel(m, ds, { optimizer: 'rmsprop' as 'adam' })).rejects.toThrow(/got "rmsprop"/);
    const bad = { images: tf.zeros([2, 28, 28, 1]) as tf.Tensor4D, labels: Int32Array.from([0, 12]) };
    await expect(trainModel(m, bad)).rejects.toThrow(/labels in 0\.\.9; got 12/);
    const wrongShape = { images: tf.zeros([2, 14, 14, 1]) as tf.Tensor4D, labels: Int32Array.from([0, 1]) };
    await expect(trainModel(m, wrongShape)).rejects.toThrow(DataError);
    tf.dispose([bad.images, wrongShape.images]);
    m.dispose();
  });
});

describe('BatchSource', () => {
  it('shifts images by whole pixels with zero fill', () => {
    const img = new Float32Array(16);
    img[5] = 1; // (1, 1) in a 4×4 image
    const images = tf.tensor4d(img, [1, 4, 4, 1]);
    const src = new BatchSource(images, Int32Array.from([0]));
    // Draws: dy = floor(r·3) − 1, dx likewise; feed r so that dy = +1, dx = −1.
    const draws = [0.9, 0.1];
    let k = 0;
    const { x, y } = src.batch([0], 2, { shift: 1 }, () => draws[k++]);
    const out = x.dataSync();
    expect(Array.from(out).reduce((a, b) => a + b, 0)).toBe(1);
    expect(out[2 * 4 + 0]).toBe(1); // moved to (2, 0)
    expect(Array.from(y.dataSync())).toEqual([1, 0]);
    tf.dispose([images, x, y]);
  });

  it('affine warp: the identity draw copies the image; a +90° draw rotates it a quarter turn', () => {
    const img = new Float32Array(25);
    img[0 * 5 + 2] = 1; // top middle of a 5×5 image
    const images = tf.tensor4d(img, [1, 5, 5, 1]);
    const src = new BatchSource(images, Int32Array.from([0]));
    // draws: angle = (2r − 1)·rotate, factor = 1 + (2r − 1)·scale, ty, tx likewise
    const ident = src.batch([0], 2, { rotate: 90, scale: 0.1, shift: 1 }, () => 0.5);
    expect(Array.from(ident.x.dataSync())).toEqual(Array.from(img));
    const quarter = [1, 0.5, 0.5, 0.5];
    let k = 0;
    const rot = src.batch([0], 2, { rotate: 90, scale: 0.1, shift: 1 }, () => quarter[k++]);
    const out = rot.x.dataSync();
    // +90° in image coordinates (y down) takes the top middle (0, 2) to the middle of a side.
    const hot = Array.from(out).map((v, i) => (v > 0.99 ? i : -1)).filter((i) => i >= 0);
    expect(hot).toHaveLength(1);
    expect([2 * 5 + 0, 2 * 5 + 4]).toContain(hot[0]);
    expect(Array.from(out).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    tf.dispose([images, ident.x, ident.y, rot.x, rot.y]);
  });
});
