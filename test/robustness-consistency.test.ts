import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier } from '../src/index.js';
import { neuronConsistency, conceptCorrelation, distanceFromConfusion, adversarialSet, consistencyHistograms } from '../src/robustness/consistency.js';
import { trainSurrogate, transferAttack } from '../src/robustness/surrogate.js';
import { runAttack } from '../src/robustness/attack-runner.js';
import { toyMlp, toyData } from './support/geometry-fixtures.js';

beforeAll(async () => {
  await initBackend();
});

/** Input 1×3×1 → dense 'h' (identity, relu) → dense 3: unit j's activation is pixel j. */
function identityNet(): Classifier {
  const m = tfl.sequential({ layers: [
    tfl.layers.flatten({ inputShape: [1, 3, 1] }),
    tfl.layers.dense({ units: 3, activation: 'relu', name: 'h', weights: [tf.eye(3), tf.zeros([3])] }),
    tfl.layers.dense({ units: 3, name: 'out', weights: [tf.eye(3), tf.zeros([3])] }),
  ] });
  return Classifier.fromModel(m);
}

describe('neuron consistency', () => {
  it('concept correlations and confusion-derived distances', () => {
    const A = conceptCorrelation([[0, 2], [2, 0]], 1);
    expect(A[0][0]).toBe(1);
    expect(A[0][1]).toBeCloseTo(Math.exp(-2), 10);
    const d = distanceFromConfusion([[8, 2, 0], [2, 8, 0], [0, 1, 9]]);
    expect(d[0][0]).toBe(0);
    expect(d[0][1]).toBeCloseTo(2, 10); // the most confused pair
    expect(d[0][2]).toBeCloseTo(6, 10); // never confused
    expect(d[1][2]).toBeGreaterThan(2);
    expect(d[1][2]).toBeLessThan(6);
  });

  it('consis = pᵀAp over each unit\'s top images (hand-computed)', async () => {
    const c = identityNet();
    // 10 images; concept = label given. Unit 0's top-2 (20 %) images are #0 (0.9) and #1 (0.8).
    const px = [
      [0.9, 0, 0], [0.8, 0.1, 0], [0.1, 0.7, 0], [0, 0.9, 0], [0, 0.2, 0.5],
      [0, 0, 0.6], [0, 0, 0.1], [0.2, 0, 0], [0, 0.1, 0.9], [0.3, 0, 0],
    ];
    const labels = [0, 1, 1, 1, 2, 2, 2, 0, 2, 0];
    const x = tf.tensor4d(px.flat(), [10, 1, 3, 1]);
    const dist = [[0, 1, 3], [1, 0, 3], [3, 3, 0]];
    const r = await neuronConsistency(c, x, labels, x, labels, { layer: 'h', topFraction: 0.2, distance: dist });
    const A = conceptCorrelation(dist);
    // unit 0: top {#0 (c0), #1 (c1)} → p = [½, ½, 0] → ¼(A00 + 2A01 + A11)
    expect(r.consis[0]).toBeCloseTo(0.25 * (A[0][0] + 2 * A[0][1] + A[1][1]), 6);
    // unit 1: top {#3 (c1), #2 (c1)} → p = e1 → 1
    expect(r.consis[1]).toBeCloseTo(1, 6);
    // unit 2: top {#8 (c2), #5 (c2)} → 1
    expect(r.consis[2]).toBeCloseTo(1, 6);
    expect(r.topK).toBe(2);
    expect(r.meanConsis).toBeCloseTo((r.consis[0] + 2) / 3, 6);
    const png = await consistencyHistograms(r, 'test');
    expect(png.consis.subarray(1, 4).toString()).toBe('PNG');
    x.dispose();
  });

  it('adversarial sets on a trained net: consis_adv is computed on attacked images; no leaks', async () => {
    const mlp = await toyMlp(9);
    const { x, y } = toyData(60, 77);
    const adv = await adversarialSet(mlp, x, y, { perImage: 2, epsilon: 0.3, steps: 5 });
    expect(adv.images.shape[0]).toBe(120);
    expect(Array.from(adv.labels.slice(0, 60))).toEqual(Array.from(y));
    const r = await neuronConsistency(mlp, x, y, adv.images, adv.labels, { topFraction: 0.1 });
    expect(r.layer).toBe('h2');
    expect(r.consis.length).toBe(16);
    for (const v of [...r.consis, ...r.consisAdv]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1 + 1e-9);
    }
    const before = tf.memory().numTensors;
    await neuronConsistency(mlp, x, y, adv.images, adv.labels);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, adv.images]);
  });
});

describe('black-box surrogate attack', () => {
  it('a surrogate trained from 30 labelled queries with Jacobian augmentation transfers FGSM to the black box', async () => {
    const blackBox = await toyMlp(13);
    const seedSet = toyData(30, 1000).x;
    const s = await trainSurrogate(blackBox, seedSet, { rounds: 3, epochs: 15, learningRate: 3e-3 });
    expect(s.queries).toBe(30 + 30 + 60);
    expect(s.trainingSize).toBe(120);
    expect(s.agreement).toBeGreaterThan(0.8);
    const test = toyData(60, 2000);
    const rep = await transferAttack(blackBox, s.surrogate, test.x, test.y, { epsilon: 0.3 });
    // Random sign noise of the same size as a baseline.
    const noise = await runAttack(blackBox, test.x, test.y, (c, v) => tf.tidy(() => tf.clipByValue(tf.add(v, tf.mul(tf.sign(tf.randomUniform(v.shape, -1, 1, 'float32', 5)), 0.3)), 0, 1) as tf.Tensor4D));
    expect(rep.successRate).toBeGreaterThan(noise.successRate + 0.2);
    tf.dispose([seedSet, test.x]);
  });
});
