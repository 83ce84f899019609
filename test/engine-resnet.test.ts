import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { inputGradient } from '../src/core/scores.js';
import { buildResNet18, buildSmallResNet } from '../src/models/resnet.js';
import { createRng, gaussian } from '../src/util/random.js';

beforeAll(async () => {
  await initBackend();
});

/** Give every BatchNormalization non-trivial statistics and affine parameters. */
function randomiseBatchNorm(model: tfl.LayersModel, seed: number): void {
  const rng = createRng(seed);
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const weights = layer.getWeights();
    const fresh = weights.map((w) => {
      const n = w.size;
      const name = w.name ?? '';
      const vals = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const g = gaussian(rng);
        vals[i] = name.includes('variance') ? 0.5 + Math.abs(g) : name.includes('gamma') ? 1 + 0.3 * g : 0.3 * g;
      }
      return tf.tensor(vals, w.shape);
    });
    // getWeights order: gamma, beta, moving_mean, moving_variance
    layer.setWeights(fresh);
    tf.dispose(fresh);
  }
}

function maxRelErr(a: Float32Array, b: Float32Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return err / Math.max(scale, 1e-12);
}

describe('ResNet builders', () => {
  it('ResNet-18 at 224×224 has the torchvision parameter count', () => {
    const m = buildResNet18({ seed: 1 });
    // torchvision resnet18: 11,689,512 parameters (+ 9,600 BN moving statistics in Keras' count)
    expect(m.countParams()).toBe(11689512 + 9600);
    expect(m.outputs[0].shape).toEqual([null, 1000]);
    m.dispose();
  });

  it('ResNet-18 (small input): Classifier.logits equals model.predict with random BN statistics', () => {
    const before = tf.memory().numTensors;
    const m = buildResNet18({ inputShape: [40, 40, 3], numClasses: 7, seed: 2 });
    randomiseBatchNorm(m, 3);
    const c = Classifier.fromModel(m);
    expect(c.strippedSoftmax).toBe(false);
    expect(c.numClasses).toBe(7);
    const x = tf.randomUniform([2, 40, 40, 3], 0, 1, 'float32', 4);
    const a = tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync() as Float32Array);
    const logits = c.logits(x);
    const b = logits.dataSync() as Float32Array;
    expect(maxRelErr(a, b)).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, logits]);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('small ResNet: logits equal predict, is deterministic per seed, and its input gradient matches cpu', async () => {
    const before = tf.memory().numTensors;
    const m = buildSmallResNet({ seed: 5, width: 8 });
    randomiseBatchNorm(m, 6);
    const m2 = buildSmallResNet({ seed: 5, width: 8 });
    expect(m.getWeights()[0].dataSync()).toEqual(m2.getWeights()[0].dataSync());
    m2.dispose();
    expect(m.layers.some((l) => l.getClassName() === 'Add')).toBe(true);
    const c = Classifier.fromModel(m);
    const x = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 7);
    const a = tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync() as Float32Array);
    const logits = c.logits(x);
    expect(maxRelErr(a, logits.dataSync() as Float32Array)).toBeLessThanOrEqual(1e-5);
    logits.dispose();

    const grads: Float32Array[] = [];
    const backend = tf.getBackend();
    for (const name of [backend, 'cpu']) {
      await tf.setBackend(name);
      const { grad, scores } = inputGradient(c, x, [1, 4, 9]);
      grads.push(grad.dataSync() as Float32Array);
      tf.dispose([grad, scores]);
    }
    await tf.setBackend(backend);
    expect(maxRelErr(grads[1], grads[0])).toBeLessThanOrEqual(1e-4);
    x.dispose();
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
