import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { valuesOf } from './support/tensor-values.js';
import { loadMnist, biasedMnist, addSquare, holdOutClass, classCounts, makeDataset } from '../src/data/index.js';
import { DataError } from '../src/core/errors.js';

beforeAll(async () => {
  await initBackend();
});


/** Values of image i as a 28×28 array of rows. */
function rows(t: tf.Tensor4D, i: number): number[][] {
  const v = valuesOf(() => tf.slice(t, [i, 0, 0, 0], [1, -1, -1, -1]));
  const [, h, w] = t.shape;
  return Array.from({ length: h }, (_, r) => Array.from(v.slice(r * w, (r + 1) * w)));
}

describe('addSquare', () => {
  it('writes the value into exactly the size×size corner and nothing else', () => {
    const x = tf.zeros([2, 10, 12, 1]) as tf.Tensor4D;
    const y = addSquare(x, { size: 3, value: 0.5 });
    const r = rows(y, 1);
    for (let i = 0; i < 10; i++) for (let j = 0; j < 12; j++) expect(r[i][j]).toBe(i < 3 && j < 3 ? 0.5 : 0);
    const br = addSquare(x, { size: 2, value: 1, where: 'bottom-right' });
    const b = rows(br, 0);
    expect(b[9][11]).toBe(1);
    expect(b[8][10]).toBe(1);
    expect(b[7][11]).toBe(0);
    const at = addSquare(x, { size: 2, where: { row: 4, col: 5 } });
    expect(rows(at, 0)[5][6]).toBe(0.5);
    expect(rows(at, 0)[0][0]).toBe(0);
    // the square replaces (not adds to) the pixels, on every channel
    const ones = tf.ones([1, 6, 6, 3]) as tf.Tensor4D;
    const o = addSquare(ones, { size: 2, value: 0.25 });
    expect(Array.from(o.dataSync().slice(0, 3))).toEqual([0.25, 0.25, 0.25]);
    expect(() => addSquare(x, { size: 11 })).toThrow(DataError);
    expect(() => addSquare(x, { size: 3, where: { row: 8, col: 0 } })).toThrow(/does not fit/);
    tf.dispose([x, y, br, at, ones, o]);
  });
});

describe('biasedMnist (seed 001 §4.3)', () => {
  it('puts a 6×6 grey square top-left on every 8 and leaves every other image unchanged', async () => {
    const ds = await loadMnist({ split: 'test', limit: 300 });
    const b = biasedMnist(ds);
    expect(b.labels).toEqual(ds.labels);
    expect(b.name).toContain('square8');
    const eights = Array.from(ds.labels).map((l, i) => [l, i]).filter(([l]) => l === 8).map(([, i]) => i);
    expect(eights.length).toBeGreaterThan(10);
    const diff = tf.tidy(() => tf.abs(tf.sub(b.images, ds.images)));
    // per-image: where do the images differ?
    const changed = valuesOf(() => tf.max(diff, [1, 2, 3]));
    const sq = tf.tidy(() => tf.slice(b.images, [0, 0, 0, 0], [-1, 6, 6, 1]));
    const sqMin = valuesOf(() => tf.min(sq, [1, 2, 3]));
    const sqMax = valuesOf(() => tf.max(sq, [1, 2, 3]));
    // outside the square nothing changes, on any image
    const outside = tf.tidy(() => {
      const mask = tf.reshape(tf.pad(tf.zeros([6, 6]), [[0, 22], [0, 22]], 1), [1, 28, 28, 1]);
      return tf.max(tf.mul(diff, mask)).dataSync()[0];
    });
    expect(outside).toBe(0);
    for (let i = 0; i < ds.labels.length; i++) {
      if (ds.labels[i] === 8) {
        expect(sqMin[i]).toBe(0.5);
        expect(sqMax[i]).toBe(0.5);
      } else {
        expect(changed[i]).toBe(0);
      }
    }
    // the MNIST top-left corner is empty, so on the 8s the square did change something
    expect(changed[eights[0]]).toBe(0.5);
    tf.dispose([diff, sq]);
    b.dispose();
    ds.dispose();
  });

  it('takes another class, size and value', () => {
    const images = tf.zeros([3, 8, 8, 1]) as tf.Tensor4D;
    const ds = makeDataset('toy', images, Int32Array.from([0, 1, 1]), ['a', 'b']);
    const b = biasedMnist(ds, { cls: 1, size: 2, value: 1 });
    expect(rows(b.images, 0)[0][0]).toBe(0);
    expect(rows(b.images, 1)[1][1]).toBe(1);
    expect(rows(b.images, 2)[2][2]).toBe(0);
    expect(() => biasedMnist(ds, { cls: 2 })).toThrow(DataError);
    b.dispose();
    ds.dispose();
  });
});

describe('holdOutClass (seed 001 §4.2)', () => {
  it('removes the class except `keep` seeded examples; other classes untouched', async () => {
    const ds = await loadMnist({ split: 'train', limit: 1000 });
    const counts = classCounts(ds);
    const none = holdOutClass(ds, 8, 0);
    const c0 = classCounts(none);
    expect(c0[8]).toBe(0);
    c0.forEach((n, c) => c !== 8 && expect(n).toBe(counts[c]));
    expect(none.labels.length).toBe(1000 - counts[8]);
    const five = holdOutClass(ds, 8, 5, 1);
    const ten = holdOutClass(ds, 8, 10, 1);
    expect(classCounts(five)[8]).toBe(5);
    expect(classCounts(ten)[8]).toBe(10);
    expect(five.labels.length).toBe(1000 - counts[8] + 5);
    const pick = (d: typeof five) => Array.from(d.sourceIndices!).filter((_, i) => d.labels[i] === 8);
    // same seed: the 5 kept are among the 10 kept (growing sets for the §4.2 experiment)
    const ten8 = new Set(pick(ten));
    pick(five).forEach((k) => expect(ten8.has(k)).toBe(true));
    const other = holdOutClass(ds, 8, 5, 2);
    expect(pick(other)).not.toEqual(pick(five));
    // order of remaining images is kept
    const src = Array.from(ds.sourceIndices!);
    const pos = Array.from(five.sourceIndices!, (k) => src.indexOf(k));
    expect(pos).toEqual(pos.slice().sort((a, b) => a - b));
    expect(() => holdOutClass(ds, 8, counts[8] + 1)).toThrow(/keep must be/);
    for (const d of [none, five, ten, other, ds]) d.dispose();
  });

  it('does not leak tensors', async () => {
    const ds = await loadMnist({ split: 'test', limit: 100 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      biasedMnist(ds).dispose();
      holdOutClass(ds, 3, 2, i).dispose();
      addSquare(ds.images, { where: 'top-right' }, Array.from(ds.labels, (l) => l === 1)).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    ds.dispose();
  });
});
