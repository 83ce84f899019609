import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, Classifier, hasDefaultModel, loadDefaultClassifier, loadMnist, OptionError } from '../src/index.js';
import { empiricalReceptiveField } from '../src/interpretation/empirical-receptive-field.js';

const shipped = hasDefaultModel('mnist-cnn');
let cnn: Classifier;

beforeAll(async () => {
  await initBackend();
  if (shipped) cnn = await loadDefaultClassifier('mnist-cnn');
});

describe.skipIf(!shipped)('empirical receptive field (discrepancy maps, seed 004 Fig. 3)', () => {
  it('lies inside the theoretical field (zero beyond it), is not empty, and leaks nothing', async () => {
    const ds = await loadMnist({ split: 'test', limit: 100 });
    const before = tf.memory().numTensors;
    for (const [layer, patch] of [['conv2', 3], ['conv1/preact', 1]] as const) {
      const r = await empiricalReceptiveField(cnn, ds, { layer, channel: 4, k: 3, patch, stride: 1, seed: 1 });
      expect(r.map).toHaveLength(56);
      expect(Math.max(...r.map.flat())).toBe(1);
      const e = r.extent(1e-9);
      // A patch changes the unit only if it overlaps the field: the support is the field grown by patch − 1.
      expect(e.rows, layer).toBeLessThanOrEqual(r.theoretical.rows.size + 2 * (patch - 1));
      expect(e.cols, layer).toBeLessThanOrEqual(r.theoretical.cols.size + 2 * (patch - 1));
      expect(e.rows, layer).toBeGreaterThan(1);
      // centred: the canvas centre row lies within the support
      const centre = r.map.slice(28 - r.theoretical.rows.size, 28 + r.theoretical.rows.size).flat();
      expect(centre.reduce((s, v) => s + v, 0)).toBeCloseTo(r.map.flat().reduce((s, v) => s + v, 0), 6);
      expect(r.images).toHaveLength(3);
    }
    expect(tf.memory().numTensors).toBe(before);
    await expect(empiricalReceptiveField(cnn, ds, { layer: 'conv2', channel: 4, patch: 0 })).rejects.toThrow(OptionError);
    ds.images.dispose();
  }, 60_000);
});
