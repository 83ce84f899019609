/**
 * Model-parameter randomization and random logit: a map that provably depends on the weights (the
 * gradient of a dense net) decorrelates; a map that ignores the model (the input itself, an "edge
 * detector") scores perfect similarity — the failure Adebayo et al. found. The model's weights are
 * bit-identical afterwards, also when the method throws on a randomized copy.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, evaluateMetric as evaluate, explain, randomizedClassifier, weightNodes, type ExplainFunction } from '../src/index.js';

beforeAll(async () => {
  await initBackend();
});

function dense(seed = 1): tfl.LayersModel {
  return tfl.sequential({ layers: [
    tfl.layers.flatten({ inputShape: [8, 8, 1], name: 'flat' }),
    tfl.layers.dense({ units: 16, activation: 'relu', name: 'h1', kernelInitializer: tfl.initializers.heNormal({ seed }), biasInitializer: tfl.initializers.constant({ value: 0.1 }) }),
    tfl.layers.dense({ units: 5, name: 'out', kernelInitializer: tfl.initializers.glorotNormal({ seed: seed + 1 }) }),
  ] });
}

async function weightsOf(model: tfl.LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array).map(async (p) => (await p).slice()));
}

describe('randomization', () => {
  it('gradient maps decorrelate; an input-copy "explanation" does not (scores worse); weights untouched', async () => {
    const model = dense();
    const c = Classifier.fromModel(model);
    const before = await weightsOf(model);
    const x = tf.randomUniform([3, 8, 8, 1], 0.1, 1, 'float32', 2) as tf.Tensor4D;
    const tensorsBefore = tf.memory().numTensors;
    for (const mode of ['cascading', 'independent'] as const) {
      const g = await evaluate('randomization', c, x, 'gradient', { options: { mode, similarity: 'spearman', abs: false } });
      expect(g.curves[0].labels).toEqual(['out', 'h1/preact']);
      // randomizing the output layer already replaces the gradient by another random direction
      g.curves[0].y.forEach((y) => expect(Math.abs(y[0])).toBeLessThan(0.6));
      const copy: ExplainFunction = (_c, xs) => tf.clone(xs);
      const id = await evaluate('randomization', c, x, copy, { options: { mode } });
      id.scores.forEach((s) => expect(s).toBeCloseTo(1, 10));
      for (const cv of id.curves) cv.mean.forEach((v) => expect(v).toBeCloseTo(1, 6));
      expect(g.mean).toBeLessThan(id.mean - 0.3);
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    const after = await weightsOf(model);
    after.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(before[i])));
    x.dispose();
    model.dispose();
  });

  it('weights are identical after a method throws on a randomized copy, and nothing leaks', async () => {
    const model = dense(4);
    const c = Classifier.fromModel(model);
    const before = await weightsOf(model);
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const logitsBefore = await c.logits(x).array();
    let calls = 0;
    const failing: ExplainFunction = async (cl, xs, ts) => {
      if (calls++ > 0) throw new Error('method failed on the randomized copy');
      return (await explain('gradient', cl, xs, { target: ts })).attribution;
    };
    const n = tf.memory().numTensors;
    await expect(evaluate('randomization', c, x, failing)).rejects.toThrow(/randomized copy/);
    expect(tf.memory().numTensors).toBe(n);
    const after = await weightsOf(model);
    after.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(before[i])));
    expect(await c.logits(x).array()).toEqual(logitsBefore);
    x.dispose();
    model.dispose();
  });

  it('randomized copies are seeded and change only the chosen layers', async () => {
    const model = dense(7);
    const c = Classifier.fromModel(model);
    expect(weightNodes(c)).toEqual(['h1/preact', 'out']);
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const a = randomizedClassifier(c, ['out'], 3);
    const b = randomizedClassifier(c, ['out'], 3);
    const d = randomizedClassifier(c, ['out'], 4);
    const [la, lb, ld, l0] = await Promise.all([a, b, d].map((v) => v.classifier.logits(x).array()).concat([c.logits(x).array()]));
    expect(la).toEqual(lb);
    expect(la).not.toEqual(ld);
    expect(la).not.toEqual(l0);
    // the hidden layer is shared: activations of h1 equal the original's
    const ha = a.classifier.activations(x, ['h1']).get('h1')!;
    const h0 = c.activations(x, ['h1']).get('h1')!;
    expect(await ha.array()).toEqual(await h0.array());
    tf.dispose([ha, h0]);
    [a, b, d].forEach((v) => v.dispose());
    x.dispose();
    model.dispose();
  });
});

describe('random logit', () => {
  it('a class-specific map differs for another class; a class-blind one does not', async () => {
    const model = dense(2);
    const c = Classifier.fromModel(model);
    const x = tf.randomUniform([3, 8, 8, 1], 0, 1, 'float32', 6) as tf.Tensor4D;
    const g = await evaluate('random-logit', c, x, 'gradient', { options: { similarity: 'spearman' } });
    const blind = await evaluate('random-logit', c, x, ((_c: Classifier, xs: tf.Tensor4D) => tf.clone(xs)) as ExplainFunction, { options: { similarity: 'spearman' } });
    blind.scores.forEach((s) => expect(s).toBeCloseTo(1, 10));
    g.scores.forEach((s) => expect(s).toBeLessThan(0.8));
    (g.extras.otherClass as number[]).forEach((k, i) => expect(k).not.toBe(g.target[i]));
    x.dispose();
    model.dispose();
  });
});
