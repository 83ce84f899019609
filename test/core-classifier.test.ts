import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  initBackend, Classifier, InputTransform, InvalidInputError, UnsupportedLayerError, OptionError, firstLayerBounds,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend();
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function functionalNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 2] });
  const c1 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1', seed: 1 } as any).apply(input) as tfl.SymbolicTensor;
  const bn = tfl.layers.batchNormalization({ name: 'bn' }).apply(c1) as tfl.SymbolicTensor;
  const r = tfl.layers.activation({ activation: 'relu', name: 'r' }).apply(bn) as tfl.SymbolicTensor;
  const c2 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }).apply(r) as tfl.SymbolicTensor;
  const add = tfl.layers.add({ name: 'add' }).apply([r, c2]) as tfl.SymbolicTensor;
  const cat = tfl.layers.concatenate({ name: 'cat' }).apply([add, c1]) as tfl.SymbolicTensor;
  const pool = tfl.layers.averagePooling2d({ poolSize: 2, name: 'pool' }).apply(cat) as tfl.SymbolicTensor;
  const drop = tfl.layers.dropout({ rate: 0.5, name: 'drop' }).apply(pool) as tfl.SymbolicTensor;
  const flat = tfl.layers.flatten({ name: 'flat' }).apply(drop) as tfl.SymbolicTensor;
  const resh = tfl.layers.reshape({ targetShape: [128], name: 'resh' }).apply(flat) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 5, activation: 'softmax', name: 'out' }).apply(resh) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  // Non-trivial batch-norm statistics so folding mistakes show.
  const bnLayer = model.getLayer('bn');
  const [g, b] = [tf.randomUniform([4], 0.5, 1.5, 'float32', 2), tf.randomNormal([4], 0, 0.3, 'float32', 3)];
  const [m, v] = [tf.randomNormal([4], 0, 0.5, 'float32', 4), tf.randomUniform([4], 0.2, 2, 'float32', 5)];
  bnLayer.setWeights([g, b, m, v]);
  tf.dispose([g, b, m, v]);
  return model;
}

describe('Classifier', () => {
  it('reproduces predict on a functional model with BatchNorm, Add, Concatenate, pooling, Dropout, Reshape', () => {
    const model = functionalNet();
    const c = Classifier.fromModel(model);
    const x = tf.randomUniform([3, 8, 8, 2], 0, 1, 'float32', 7);
    const probs = model.predict(x) as tf.Tensor;
    const viaLogits = tf.softmax(c.logits(x));
    expect(c.strippedSoftmax).toBe(true);
    expect(maxAbsDiff(probs, viaLogits)).toBeLessThan(1e-5);
    // logits are not probabilities: softmax was stripped
    const rowSums = tf.sum(c.logits(x), 1).dataSync();
    expect(Array.from(rowSums).some((s) => Math.abs(s - 1) > 1e-3)).toBe(true);
    tf.dispose([x, probs, viaLogits]);
    model.dispose();
  });

  it('lists layers, splits fused activations, and returns activations', () => {
    const model = functionalNet();
    const c = Classifier.fromModel(model);
    const names = c.layers().map((l) => l.name);
    expect(names).toContain('c2/preact');
    expect(names).toContain('c2');
    expect(c.convLayers()).toEqual(['c1', 'c2']);
    const x = tf.randomUniform([2, 8, 8, 2], 0, 1, 'float32', 8);
    const acts = c.activations(x, ['c2', 'c2/preact']);
    const pre = acts.get('c2/preact')!;
    const post = acts.get('c2')!;
    expect(post.shape).toEqual([2, 8, 8, 4]);
    expect(maxAbsDiff(tf.relu(pre), post)).toBe(0);
    tf.dispose([x, ...acts.values()]);
    model.dispose();
  });

  it('split: tail(head(x)) equals the logits, and skip connections need x', () => {
    const model = functionalNet();
    const c = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 8, 8, 2], 0, 1, 'float32', 9);
    const logits = c.logits(x);
    const sCut = c.split('pool');
    expect(sCut.isCut).toBe(true);
    expect(maxAbsDiff(sCut.tail(sCut.head(x)), logits)).toBeLessThan(1e-5);
    const sSkip = c.split('c2');
    expect(sSkip.isCut).toBe(false);
    expect(() => sSkip.tail(sSkip.head(x))).toThrow(OptionError);
    expect(maxAbsDiff(sSkip.tail(sSkip.head(x), x), logits)).toBeLessThan(1e-5);
    // The tail really depends on the activation: changing it changes the logits.
    const changed = sSkip.tail(tf.zerosLike(sSkip.head(x)), x);
    expect(maxAbsDiff(changed, logits)).toBeGreaterThan(1e-4);
    expect(() => c.split('nope')).toThrow(OptionError);
    tf.dispose([x, logits, changed]);
    model.dispose();
  });

  it('knows the input transform and the bounds the first layer sees', () => {
    const model = tfl.sequential({ layers: [
      new InputTransform({ inputShape: [4, 4, 1], offset: -0.5, scale: 2, invert: false }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3 }),
    ] });
    const c = Classifier.fromModel(model);
    expect(c.domain.transform).toEqual({ offset: -0.5, scale: 2, invert: false });
    expect(firstLayerBounds(c.domain)).toEqual({ low: -0.5, high: 1.5 });
    const x = tf.randomUniform([2, 4, 4, 1], 0, 1, 'float32', 3);
    expect(maxAbsDiff(c.logits(x), model.predict(x) as tf.Tensor)).toBeLessThan(1e-5);
    tf.dispose(x);
    model.dispose();
  });

  it('validates input shape, channels, NaN and range', () => {
    const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 4, 1] }), tfl.layers.dense({ units: 2 })] });
    const c = Classifier.fromModel(model);
    const bad = [
      tf.zeros([4, 4, 1]),
      tf.zeros([1, 5, 4, 1]),
      tf.zeros([1, 4, 4, 3]),
      tf.fill([1, 4, 4, 1], NaN),
      tf.fill([1, 4, 4, 1], Infinity),
      tf.fill([1, 4, 4, 1], 3),
    ];
    for (const b of bad) expect(() => c.validateInput(b)).toThrow(InvalidInputError);
    expect(() => c.validateInput(tf.fill([1, 4, 4, 1], 0.5))).not.toThrow();
    tf.dispose(bad);
    model.dispose();
  });

  it('rejects unsupported layer types with the layer named', () => {
    const model = tfl.sequential({ layers: [
      tfl.layers.flatten({ inputShape: [4, 4, 1] }),
      tfl.layers.repeatVector({ n: 2, name: 'rep' }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2 }),
    ] });
    expect(() => Classifier.fromModel(model)).toThrow(UnsupportedLayerError);
    expect(() => Classifier.fromModel(model)).toThrow(/rep.*RepeatVector/);
    model.dispose();
  });

  it('wraps a plain function', async () => {
    const w = tf.randomNormal([16, 3], 0, 1, 'float32', 1);
    const c = Classifier.fromFunction((x) => tf.matMul(tf.reshape(x, [-1, 16]), w) as tf.Tensor2D, { inputShape: [4, 4, 1], numClasses: 3 });
    const x = tf.randomUniform([2, 4, 4, 1], 0, 1, 'float32', 2);
    expect(c.logits(x).shape).toEqual([2, 3]);
    expect((await c.predictClasses(x)).length).toBe(2);
    expect(() => c.layers()).toThrow(UnsupportedLayerError);
    tf.dispose([w, x]);
  });
});
