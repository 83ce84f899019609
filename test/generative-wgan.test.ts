import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { WGAN, trainWgan, invertGenerator, loadDefaultGenerator, hasDefaultGenerator } from '../src/generative/index.js';
import { loadMnist } from '../src/data/index.js';
import { loadDefaultClassifier } from '../src/models/io.js';
import { explain } from '../src/core/registry.js';
import '../src/counterfactual/index.js';

beforeAll(async () => {
  await initBackend();
});

/** 2-D toy data: 512 points from N((0.8, 0.2), 0.03²·I), as [N, 1, 1, 2] "images". */
function toyData(): tf.Tensor4D {
  return tf.tidy(() => tf.reshape(tf.add(tf.mul(tf.randomNormal([512, 2], 0, 1, 'float32', 11), 0.03), tf.tensor1d([0.8, 0.2])), [512, 1, 1, 2]) as tf.Tensor4D);
}

const meanPoint = (x: tf.Tensor) => tf.tidy(() => Array.from(tf.mean(tf.reshape(x, [-1, 2]), 0).dataSync()));

describe('WGAN objective on a 2-D toy distribution', () => {
  // Would fail with a flipped critic or generator sign (samples drift away, estimate grows) or without clipping.
  it('generated samples move to the data, the Wasserstein estimate falls, critic weights stay in [−c, c], no leaks', async () => {
    const data = toyData();
    const gan = new WGAN({ latentDim: 2, variant: 'dense', inputShape: [1, 1, 2], hidden: [16, 16], seed: 2 }, 'toy');
    const before = gan.sample(256, 5);
    const m0 = meanPoint(before);
    const d0 = Math.hypot(m0[0] - 0.8, m0[1] - 0.2);
    const clip = 0.1;
    const tensors = tf.memory().numTensors;
    const r = await trainWgan(gan, data, { iterations: 150, nCritic: 5, batchSize: 64, clip, learningRate: 5e-3, seed: 3, quiet: true });
    // trainWgan creates no tensors beyond the ones it disposes (parameters already exist).
    expect(tf.memory().numTensors).toBe(tensors);
    expect(r.iterations).toBe(150);
    for (const v of gan.criticVars()) {
      const m = tf.tidy(() => tf.max(tf.abs(v)).dataSync()[0]);
      expect(m).toBeLessThanOrEqual(clip + 1e-7);
    }
    const after = gan.sample(256, 5);
    const m1 = meanPoint(after);
    const d1 = Math.hypot(m1[0] - 0.8, m1[1] - 0.2);
    // The untrained generator sits near (0.5, 0.5); the generator's objective −E[D(G(z))] pulls it to the data.
    expect(d0).toBeGreaterThan(0.25);
    expect(d1).toBeLessThan(d0 / 3);
    // The critic's estimate E[D(x)] − E[D(G(z))] falls as the generator improves: compare the peak of
    // the first 40 steps with the mean of the last 20.
    const early = Math.max(...r.wasserstein.slice(0, 40));
    const late = r.wasserstein.slice(-20).reduce((a, b) => a + b, 0) / 20;
    expect(early).toBeGreaterThan(0);
    expect(late).toBeLessThan(early / 2);
    tf.dispose([data, before, after]);
    gan.dispose();
  }, 30000);
});

const shipped = hasDefaultGenerator('mnist-gan');

describe.skipIf(!shipped)('shipped mnist-gan', () => {
  it('Algorithm 2 inverts real test digits better than the best constant image (the mean digit); cdeepex runs with it', async () => {
    const gen = await loadDefaultGenerator('mnist-gan');
    const test = await loadMnist({ split: 'test', seed: 0, limit: 300 });
    const x = tf.slice(test.images, 200, 8) as tf.Tensor4D;
    const tensors = tf.memory().numTensors;
    const inv = await invertGenerator(gen, x, { method: 'optimize', steps: 300, seed: 1 });
    const mse = inv.mse.reduce((a, b) => a + b, 0) / inv.mse.length;
    // Baseline: every digit replaced by the mean test digit.
    const baseline = tf.tidy(() => tf.mean(tf.squaredDifference(x, tf.mean(test.images, 0, true))).dataSync()[0]);
    expect(inv.residual.shape).toEqual(x.shape);
    expect(mse).toBeLessThan(0.75 * baseline);
    tf.dispose([inv.z0, inv.residual]);
    expect(tf.memory().numTensors).toBe(tensors);
    const clf = await loadDefaultClassifier('mnist-cnn');
    const x2 = tf.slice(test.images, 0, 2) as tf.Tensor4D;
    const e = await explain('cdeepex', clf, x2, { options: { generator: 'mnist-gan', outerSteps: 40, inversionSteps: 100 } });
    expect(e.extras.generator).toBe('mnist-gan');
    expect(e.extras.inversion).toBe('optimize');
    expect(e.attribution.shape).toEqual([2, 28, 28, 1]);
    e.dispose();
    tf.dispose([x, x2]);
    test.dispose();
  }, 60000);
});
