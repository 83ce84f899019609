import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, Classifier, hasDefaultModel, loadDefaultClassifier, loadMnist, OptionError } from '../src/index.js';
import { nearestNeighbours } from '../src/interpretation/nearest-neighbours.js';

const shipped = hasDefaultModel('mnist-cnn');
let cnn: Classifier;

beforeAll(async () => {
  await initBackend();
  if (shipped) cnn = await loadDefaultClassifier('mnist-cnn');
});

describe.skipIf(!shipped)('nearest neighbours in a layer space', () => {
  it('a dataset image is its own nearest neighbour at distance 0, and the lists equal a brute-force sort (L2 and cosine, streamed); no leaks', async () => {
    const ds = await loadMnist({ split: 'train', limit: 120 });
    const idx = [7, 55];
    const q = tf.gather(ds.images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    for (const layer of ['fc1', 'conv2', 'input']) {
      for (const metric of ['l2', 'cosine'] as const) {
        const nn = await nearestNeighbours(cnn, q, ds, { layer, metric, k: 4, batchSize: 33 });
        // brute force on all features at once
        // activations() hands back kept tensors: freed by hand
        const feats = layer === 'input' ? tf.reshape(ds.images, [120, -1]) : cnn.activations(ds.images, [layer]).get(layer)!;
        const F = ((await feats.array()) as number[][][][] | number[][]).map((row) => (row as unknown[]).flat(3) as number[]);
        feats.dispose();
        idx.forEach((qi, r) => {
          expect(nn[r][0].index, `${layer} ${metric}`).toBe(qi);
          // L2 from the differences themselves: exactly 0 for the image itself
          if (metric === 'l2') expect(nn[r][0].distance, layer).toBe(0);
          else expect(nn[r][0].distance, layer).toBeLessThan(1e-5);
          const dist = F.map((f) => {
            if (metric === 'l2') return Math.sqrt(f.reduce((s, v, j) => s + (v - F[qi][j]) ** 2, 0));
            const dot = f.reduce((s, v, j) => s + v * F[qi][j], 0);
            const n1 = Math.sqrt(f.reduce((s, v) => s + v * v, 0));
            const n2 = Math.sqrt(F[qi].reduce((s, v) => s + v * v, 0));
            return 1 - dot / Math.max(n1 * n2, 1e-12);
          });
          const order = dist.map((d, i) => [d, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).slice(1, 4);
          // ranks 2..4 (rank 1 is the image itself, tested above)
          expect(nn[r].slice(1).map((n) => n.index), `${layer} ${metric}`).toEqual(order.map((o) => o[1]));
          nn[r].slice(1).forEach((n, j) => expect(n.distance).toBeCloseTo(order[j][0], 2));
          expect(nn[r].map((n) => n.label)).toEqual(nn[r].map((n) => ds.labels[n.index]));
        });
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    await expect(nearestNeighbours(cnn, q, ds, { layer: 'fc1', metric: 'manhattan' as 'l2' })).rejects.toThrow(OptionError);
    await expect(nearestNeighbours(cnn, q, ds, { layer: 'nope' })).rejects.toThrow(/layer name/);
    q.dispose();
    ds.images.dispose();
  }, 60_000);
});
