import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier } from '../src/index.js';
import { adversarialTrain, consistentLoss, defaultFeatureLayer } from '../src/robustness/adversarial-training.js';
import { fgsm } from '../src/robustness/fgsm.js';
import { runAttack, attacks } from '../src/robustness/attack-runner.js';
import { toyData, trainToy, toyCnn, toyMlpModel } from './support/geometry-fixtures.js';

beforeAll(async () => {
  await initBackend();
});

describe('adversarial training', () => {
  it('the consistent loss: α, β terms match hand computations', () => {
    const c = Classifier.fromModel(toyMlpModel(1));
    expect(defaultFeatureLayer(c)).toBe('h2');
    expect(defaultFeatureLayer(toyCnn(1))).toBe('c1');
    const { x, y } = toyData(6, 5);
    const xa = fgsm(c, x, Array.from(y), { epsilon: 0.2 });
    const oh = tf.oneHot(tf.tensor1d(y, 'int32'), 3) as tf.Tensor2D;
    const ce = (v: tf.Tensor4D) => tf.losses.softmaxCrossEntropy(oh, c.logits(v)).dataSync()[0];
    expect(consistentLoss(c, x, xa, oh, { alpha: 1, beta: 0 }).dataSync()[0]).toBeCloseTo(ce(x), 5);
    expect(consistentLoss(c, x, xa, oh, { alpha: 0, beta: 0 }).dataSync()[0]).toBeCloseTo(ce(xa), 5);
    const h = c.activations(x, ['h2']).get('h2')!;
    const ha = c.activations(xa, ['h2']).get('h2')!;
    const dist = tf.mean(tf.sum(tf.square(tf.sub(h, ha)), 1)).dataSync()[0];
    expect(dist).toBeGreaterThan(0);
    const full = consistentLoss(c, x, xa, oh).dataSync()[0];
    expect(full).toBeCloseTo(0.5 * ce(x) + 0.5 * ce(xa) + 0.1 * dist, 4);
    tf.dispose([x, xa, oh, h, ha]);
  });

  it('FGSM, ensemble and consistent training raise FGSM accuracy over standard training', async () => {
    const train = toyData(240, 11);
    const test = toyData(90, 12);
    const yt = Array.from(test.y);
    const eps = 0.3;
    const standard = toyMlpModel(20);
    await trainToy(standard, 30, 11);
    const cs = Classifier.fromModel(standard);
    const before = await runAttack(cs, test.x, yt, attacks.fgsm({ epsilon: eps }));
    const results: Record<string, number> = {};
    for (const scheme of ['fgsm', 'ensemble', 'consistent'] as const) {
      const m = toyMlpModel(20);
      await trainToy(m, 10, 11); // a short clean warm-up, then adversarial fine-tuning
      const loss = await adversarialTrain(m, { images: train.x, labels: train.y }, {
        scheme, epsilon: eps, epochs: 12, batchSize: 60, learningRate: 0.01, seed: 1, staticModels: [cs],
      });
      expect(loss.loss.length).toBe(12);
      const c = Classifier.fromModel(m);
      const after = await runAttack(c, test.x, yt, attacks.fgsm({ epsilon: eps }));
      results[scheme] = after.adversarialAccuracy;
      expect(after.cleanAccuracy).toBeGreaterThan(0.7);
    }
    for (const v of Object.values(results)) expect(v).toBeGreaterThan(before.adversarialAccuracy + 0.1);
    tf.dispose([train.x, test.x]);
  });

  it('the consistent loss trains a conv net (φ = last conv layer) on this backend', async () => {
    const c = toyCnn(3);
    const d = toyData(60, 8);
    const before = c.model!.getWeights()[0].dataSync().slice();
    const r = await adversarialTrain(c.model!, { images: d.x, labels: d.y }, { scheme: 'consistent', epochs: 2, batchSize: 30, learningRate: 0.01 });
    expect(r.loss.every(Number.isFinite)).toBe(true);
    const after = c.model!.getWeights()[0].dataSync();
    let changed = 0;
    for (let i = 0; i < after.length; i++) if (Math.abs(after[i] - before[i]) > 1e-6) changed++;
    expect(changed).toBeGreaterThan(after.length / 2); // the conv kernel itself was updated
    d.x.dispose();
  });

  it('rejects bad options and leaks nothing', async () => {
    const m = toyMlpModel(2);
    const d = toyData(30, 3);
    await expect(adversarialTrain(m, { images: d.x, labels: d.y }, { scheme: 'ensemble' })).rejects.toThrow(/staticModels/);
    await expect(adversarialTrain(m, { images: d.x, labels: d.y }, { scheme: 'nope' as never })).rejects.toThrow(/scheme/);
    await adversarialTrain(m, { images: d.x, labels: d.y }, { scheme: 'consistent', epochs: 1, batchSize: 10 });
    const before = tf.memory().numTensors;
    await adversarialTrain(m, { images: d.x, labels: d.y }, { scheme: 'consistent', epochs: 1, batchSize: 10, attack: 'fgsm-ll' });
    expect(tf.memory().numTensors).toBe(before);
    d.x.dispose();
  });
});
