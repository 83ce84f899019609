import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { DataError } from '../src/core/errors.js';
import { evaluate } from '../src/models/evaluate.js';
import { buildMlp } from '../src/models/architectures.js';

beforeAll(async () => {
  await initBackend();
});

/**
 * A hand-made classifier over 2×2 images with 3 classes: the logits are 4·(pixel 0, pixel 1,
 * pixel 2), so each image's prediction is whichever of its first three pixels is set.
 */
function pixelClassifier(): Classifier {
  return Classifier.fromFunction(
    (x) => tf.tidy(() => tf.mul(tf.slice(tf.reshape(x, [x.shape[0], 4]), [0, 0], [-1, 3]), 4)) as tf.Tensor2D,
    { inputShape: [2, 2, 1], numClasses: 3 },
  );
}

function makeSet(preds: number[], labels: number[]) {
  const data = new Float32Array(preds.length * 4);
  preds.forEach((p, i) => (data[i * 4 + p] = 1));
  return { images: tf.tensor4d(data, [preds.length, 2, 2, 1]), labels: Int32Array.from(labels) };
}

describe('evaluate', () => {
  it('gives the hand-computed confusion matrix, accuracy, per-class accuracy and errors', async () => {
    const labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1];
    const preds = [0, 1, 0, 1, 2, 2, 2, 0, 2, 1];
    const ds = makeSet(preds, labels);
    // batchSize 3 forces a ragged last batch
    const r = await evaluate(pixelClassifier(), ds, { batchSize: 3 });
    expect(r.count).toBe(10);
    expect(r.confusion).toEqual([
      [2, 1, 0],
      [0, 2, 1],
      [1, 0, 3],
    ]);
    expect(r.accuracy).toBeCloseTo(7 / 10, 10);
    expect(r.perClassAccuracy[0]).toBeCloseTo(2 / 3, 10);
    expect(r.perClassAccuracy[1]).toBeCloseTo(2 / 3, 10);
    expect(r.perClassAccuracy[2]).toBeCloseTo(3 / 4, 10);
    // softmax of (4, 0, 0): e⁴ / (e⁴ + 2)
    const conf = Math.exp(4) / (Math.exp(4) + 2);
    expect(r.errors.map((e) => [e.index, e.label, e.predicted])).toEqual([[1, 0, 1], [4, 1, 2], [7, 2, 0]]);
    for (const e of r.errors) expect(e.confidence).toBeCloseTo(conf, 5);
    // mean cross-entropy: correct images −log(conf), wrong ones −log(1 / (e⁴ + 2))
    expect(r.loss).toBeCloseTo((7 * -Math.log(conf) + 3 * Math.log(Math.exp(4) + 2)) / 10, 4);
    ds.images.dispose();
  });

  it('limit evaluates a prefix; an absent class has NaN per-class accuracy', async () => {
    const ds = makeSet([0, 1, 2, 2], [0, 1, 1, 1]);
    const r = await evaluate(pixelClassifier(), ds, { limit: 2 });
    expect(r.count).toBe(2);
    expect(r.accuracy).toBe(1);
    expect(r.perClassAccuracy[2]).toBeNaN();
    ds.images.dispose();
  });

  it('agrees with argmax of the model on a LayersModel classifier, and does not leak', async () => {
    const m = buildMlp({ hidden: [16], seed: 4 });
    const c = Classifier.fromModel(m);
    const images = tf.randomUniform([40, 28, 28, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
    const predicted = await c.predictClasses(images);
    const labels = Int32Array.from(predicted.map((p, i) => (i % 4 === 0 ? (p + 1) % 10 : p)));
    const before = tf.memory().numTensors;
    const r = await evaluate(c, { images, labels }, { batchSize: 16 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.accuracy).toBeCloseTo(30 / 40, 10);
    expect(r.errors.map((e) => e.index)).toEqual([0, 4, 8, 12, 16, 20, 24, 28, 32, 36]);
    images.dispose();
    m.dispose();
  });

  it('rejects mismatched shapes and labels out of range', async () => {
    const ds = makeSet([0, 1], [0, 5]);
    await expect(evaluate(pixelClassifier(), ds)).rejects.toThrow(/expected labels in 0\.\.2; got 5 at index 1/);
    const wrong = { images: tf.zeros([2, 3, 3, 1]) as tf.Tensor4D, labels: Int32Array.from([0, 1]) };
    await expect(evaluate(pixelClassifier(), wrong)).rejects.toThrow(DataError);
    ds.images.dispose();
    wrong.images.dispose();
  });
});
