import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { OptionError } from '../src/core/errors.js';
import { buildMlp, buildCnn, buildSeed001Cnn, buildConformanceCnn, countParams } from '../src/models/architectures.js';

beforeAll(async () => {
  await initBackend();
});

function weightNames(m: { weights: Array<{ originalName: string }> }): string[] {
  return m.weights.map((w) => w.originalName);
}

describe('buildMlp', () => {
  it('defaults are the conformance mnist_mlp (784-256-128-10, 235k parameters) with logits out', () => {
    const m = buildMlp();
    expect(m.inputs[0].shape).toEqual([null, 28, 28, 1]);
    expect(m.outputs[0].shape).toEqual([null, 10]);
    expect(weightNames(m)).toEqual(['fc1/kernel', 'fc1/bias', 'fc2/kernel', 'fc2/bias', 'fc3/kernel', 'fc3/bias']);
    expect(countParams(m)).toBe(784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    const c = Classifier.fromModel(m);
    expect(c.strippedSoftmax).toBe(false);
    expect(c.layers().map((l) => l.name)).toEqual(['flatten', 'fc1/preact', 'fc1', 'fc2/preact', 'fc2', 'fc3']);
    m.dispose();
  });

  it('bias: false has no bias weights at all', () => {
    const m = buildMlp({ bias: false, hidden: [32] });
    expect(weightNames(m)).toEqual(['fc1/kernel', 'fc2/kernel']);
    // A bias-free ReLU net is positively homogeneous: f(2x) = 2 f(x).
    const x = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 3);
    const [a, b] = tf.tidy(() => [tf.mul(m.predict(x) as tf.Tensor, 2), m.predict(tf.mul(x, 2)) as tf.Tensor]);
    const scale = tf.max(tf.abs(a)).dataSync()[0];
    expect(scale).toBeGreaterThan(0);
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-5 * scale + 1e-6);
    tf.dispose([x, a, b]);
    m.dispose();
  });

  it('input transform matches (invert ? 1 − x : x) · scale + offset', () => {
    const spec = { offset: -0.5, scale: 2, invert: true };
    const m = buildMlp({ hidden: [16], transform: spec, seed: 5 });
    const ref = buildMlp({ hidden: [16], seed: 5 }); // same seed → same dense weights
    expect(m.layers[0].name).toBe('input_transform');
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 7);
    const [got, want] = tf.tidy(() => [
      m.predict(x) as tf.Tensor,
      ref.predict(tf.add(tf.mul(tf.sub(1, x), 2), -0.5)) as tf.Tensor,
    ]);
    expect(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]).toBeLessThan(1e-5);
    const c = Classifier.fromModel(m);
    expect(c.domain.transform).toEqual(spec);
    tf.dispose([x, got, want]);
    m.dispose();
    ref.dispose();
  });

  it('same seed gives the same weights, a different seed different ones', () => {
    const a = buildMlp({ hidden: [32], seed: 11 });
    const b = buildMlp({ hidden: [32], seed: 11 });
    const c = buildMlp({ hidden: [32], seed: 12 });
    const wa = a.getWeights().map((t) => Array.from(t.dataSync()));
    const wb = b.getWeights().map((t) => Array.from(t.dataSync()));
    const wc = c.getWeights().map((t) => Array.from(t.dataSync()));
    expect(wb).toEqual(wa);
    expect(wc[0]).not.toEqual(wa[0]);
    // The two kernels of one model are drawn from different seeds.
    expect(wa[0].slice(0, 10)).not.toEqual(wa[2].slice(0, 10));
    [a, b, c].forEach((m) => m.dispose());
  });

  it('rejects bad options with a message saying what came', () => {
    expect(() => buildMlp({ numClasses: 1 })).toThrow(OptionError);
    expect(() => buildMlp({ inputShape: [28, 28] as unknown as [number, number, number] })).toThrow(/inputShape/);
    expect(() => buildMlp({ hidden: [0] })).toThrow(/got 0/);
    expect(() => buildMlp({ transform: { scale: 0 } })).toThrow(/scale 0/);
    expect(() => buildCnn({ convs: [] })).toThrow(/at least one conv/);
  });
});

describe('buildCnn', () => {
  it('builds conv/pool/flatten/dense with the stable names and shapes', () => {
    const m = buildConformanceCnn({ seed: 1 });
    expect(m.layers.map((l) => l.name)).toEqual(['conv1', 'pool1', 'conv2', 'pool2', 'flatten', 'fc1', 'fc2']);
    expect(weightNames(m)).toEqual(['conv1/kernel', 'conv1/bias', 'conv2/kernel', 'conv2/bias', 'fc1/kernel', 'fc1/bias', 'fc2/kernel', 'fc2/bias']);
    expect(m.getWeights().map((w) => w.shape)).toEqual([[5, 5, 1, 32], [32], [5, 5, 32, 64], [64], [3136, 128], [128], [128, 10], [10]]);
    // FORMAT.md §2.1: 455 k parameters.
    expect(countParams(m)).toBe(832 + 51264 + 401536 + 1290);
    const c = Classifier.fromModel(m);
    expect(c.convLayers()).toEqual(['conv1', 'conv2']);
    m.dispose();
  });

  it('bias-free CNN with offset has no biases and the offset layer first', () => {
    const m = buildCnn({ convs: [{ filters: 4, kernelSize: 3, pool: 2 }], dense: [8], bias: false, transform: { offset: -0.5 } });
    expect(weightNames(m)).toEqual(['conv1/kernel', 'fc1/kernel', 'fc2/kernel']);
    const c = Classifier.fromModel(m);
    expect(c.domain.transform).toEqual({ offset: -0.5, scale: 1, invert: false });
    expect(c.layers()[0].kind).toBe('transform');
    m.dispose();
  });

  it('seed 001 CNN: 5×5 valid convs with 10 and 20 filters, fc 50; 3380 flatten units on 64×64', () => {
    const m = buildSeed001Cnn();
    expect(m.getWeights().map((w) => w.shape)).toEqual([[5, 5, 1, 10], [10], [5, 5, 10, 20], [20], [320, 50], [50], [50, 10], [10]]);
    const big = buildSeed001Cnn({ inputShape: [64, 64, 1] });
    expect(big.getLayer('fc1').getWeights()[0].shape).toEqual([3380, 50]);
    m.dispose();
    big.dispose();
  });

  it('builders do not leak tensors once disposed', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const m = buildCnn({ convs: [{ filters: 4, kernelSize: 3, pool: 2 }], dense: [8], seed: i });
      const y = tf.tidy(() => m.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor);
      y.dispose();
      m.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
