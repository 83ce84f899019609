import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  initBackend, Classifier, explain, parseTarget, resolveTargets, listMethods,
  TargetError, UnknownMethodError, InvalidInputError, OptionError,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend();
});

/** A linear classifier y = flatten(x)·W + b: its input gradient for class c is column c of W. */
function linear(): { c: Classifier; w: tf.Tensor2D; model: tfl.LayersModel } {
  const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [3, 3, 1] }), tfl.layers.dense({ units: 4, name: 'd' })] });
  const w = tf.randomNormal([9, 4], 0, 1, 'float32', 11) as tf.Tensor2D;
  model.getLayer('d').setWeights([w, tf.tensor1d([0.1, -0.2, 0.3, 0])]);
  return { c: Classifier.fromModel(model), w, model };
}

describe('targets', () => {
  it('parses CLI target specs', () => {
    expect(parseTarget('3')).toBe(3);
    expect(parseTarget('predicted')).toBe('predicted');
    expect(parseTarget('second')).toBe('second');
    expect(parseTarget('1,predicted')).toEqual([1, 'predicted']);
    expect(() => parseTarget('x')).toThrow(TargetError);
  });
  it('resolves predicted, second and indices; rejects out-of-range', () => {
    const logits = [0.1, 0.9, 0.5, /* */ 2, 1, 3];
    expect(resolveTargets('predicted', logits, 2, 3)).toEqual([1, 2]);
    expect(resolveTargets('second', logits, 2, 3)).toEqual([2, 0]);
    expect(resolveTargets([0, 'second'], logits, 2, 3)).toEqual([0, 0]);
    expect(() => resolveTargets(3, logits, 2, 3)).toThrow(TargetError);
    expect(() => resolveTargets(-1, logits, 2, 3)).toThrow(TargetError);
    expect(() => resolveTargets([1], logits, 2, 3)).toThrow(TargetError);
  });
});

describe('explain', () => {
  it('gradient of a linear model is the weight column of the target; gradient×input multiplies by x', async () => {
    const { c, w, model } = linear();
    const x = tf.randomUniform([2, 3, 3, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const e = await explain('gradient', c, x, { target: [2, 0] });
    const g = (await e.attribution.array()) as number[][][][];
    const wv = (await w.array()) as number[][];
    for (let i = 0; i < 9; i++) {
      expect(g[0][Math.floor(i / 3)][i % 3][0]).toBeCloseTo(wv[i][2], 5);
      expect(g[1][Math.floor(i / 3)][i % 3][0]).toBeCloseTo(wv[i][0], 5);
    }
    expect(e.target).toEqual([2, 0]);
    expect(e.logits.length).toBe(2);
    const gx = await explain('gradient-x-input', c, x, { target: [2, 0] });
    const expected = tf.mul(x, e.attribution);
    expect(tf.max(tf.abs(tf.sub(expected, gx.attribution))).dataSync()[0]).toBeLessThan(1e-6);
    e.dispose(); gx.dispose();
    tf.dispose([x, w, expected]);
    model.dispose();
  });

  it('bad input gives typed errors', async () => {
    const { c, w, model } = linear();
    const good = tf.zeros([1, 3, 3, 1]) as tf.Tensor4D;
    await expect(explain('no-such-method', c, good)).rejects.toThrow(UnknownMethodError);
    await expect(explain('gradient', c, good, { target: 7 })).rejects.toThrow(TargetError);
    await expect(explain('gradient', c, tf.fill([1, 3, 3, 1], NaN) as tf.Tensor4D)).rejects.toThrow(InvalidInputError);
    await expect(explain('gradient', c, tf.zeros([1, 3, 3, 2]) as tf.Tensor4D)).rejects.toThrow(/expected 1 channel; got 2/);
    await expect(explain('gradient', c, tf.zeros([1, 4, 3, 1]) as tf.Tensor4D)).rejects.toThrow(InvalidInputError);
    await expect(explain('gradient', c, good, { options: { bogus: 1 } })).rejects.toThrow(OptionError);
    tf.dispose([good, w]);
    model.dispose();
  });

  it('releases every tensor over 100 calls (gradient, gradient-x-input)', async () => {
    const { c, w, model } = linear();
    const x = tf.randomUniform([2, 3, 3, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    for (const method of ['gradient', 'gradient-x-input']) {
      (await explain(method, c, x)).dispose(); // warm-up: first calls may allocate caches
      const before = tf.memory().numTensors;
      for (let i = 0; i < 100; i++) (await explain(method, c, x, { target: 'second' })).dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    tf.dispose([x, w]);
    model.dispose();
  });

  it('every registered method has a name, family and description', () => {
    const names = listMethods().map((m) => m.name);
    expect(names).toContain('gradient');
    expect(names).toContain('gradient-x-input');
    for (const m of listMethods()) expect(m.description.length).toBeGreaterThan(5);
  });
});
