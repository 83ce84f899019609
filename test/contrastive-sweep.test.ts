import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/engine/backend.js';
import { explain } from '../src/core/registry.js';
import { Classifier } from '../src/core/classifier.js';
import { OptionError } from '../src/core/errors.js';
import '../src/attribution/gradient.js';
import '../src/counterfactual/contrast.js';
import { sweepWeights } from '../src/counterfactual/contrast.js';

let model: tfl.LayersModel;
let c: Classifier;
let W: number[][];
beforeAll(async () => {
  await initBackend();
  model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 4, 1] }), tfl.layers.dense({ units: 3, name: 'd' })] });
  const w = tf.randomNormal([16, 3], 0, 1, 'float32', 3);
  model.getLayer('d').setWeights([w, tf.zeros([3])]);
  W = (await w.array()) as number[][];
  w.dispose();
  c = Classifier.fromModel(model);
});
afterAll(() => model.dispose());

describe('contrast sweep', () => {
  it('weights run 0.005..2 in steps of 0.005 (400 maps)', () => {
    const w = sweepWeights({ weightStart: 0.005, weightEnd: 2, weightStep: 0.005 });
    expect(w.length).toBe(400);
    expect(w[0]).toBe(0.005);
    expect(w[399]).toBe(2);
    expect(() => sweepWeights({ weightStart: 1, weightEnd: 0, weightStep: 0.1 })).toThrow(OptionError);
  });

  it('on a linear model: the result is the mean of the kept normalised maps w·W_probe − W_true, each satisfying the keep rule', async () => {
    const x = tf.fill([1, 4, 4, 1], 0.5) as tf.Tensor4D;
    const e = await explain('contrast', c, x, { options: { method: 'gradient', strength: 0.05 } });
    const [t, p] = [(e.extras.trueClass as number[])[0], (e.extras.probe as number[])[0]];
    const keptWeights = (e.extras.keptWeights as number[][])[0];
    expect(keptWeights.length).toBeGreaterThan(0);
    const probs0 = tf.softmax(c.logits(x)).arraySync() as number[][];
    const expected = new Array(16).fill(0);
    for (const w of keptWeights) {
      const m = W.map((row) => w * row[p] - row[t]);
      const mx = Math.max(...m.map(Math.abs));
      const xi = tf.tensor4d(m.map((v) => Math.min(1, Math.max(0, 0.5 + (0.05 * v) / mx))), [1, 4, 4, 1]);
      const pr = tf.softmax(c.logits(xi)).arraySync() as number[][];
      expect(pr[0][t]).toBeLessThan(probs0[0][t]);
      expect(pr[0][p]).toBeGreaterThan(probs0[0][p]);
      m.forEach((v, j) => (expected[j] += v / mx / keptWeights.length));
      xi.dispose();
    }
    const got = Array.from(e.attribution.dataSync());
    got.forEach((v, j) => expect(v).toBeCloseTo(expected[j], 4));
    e.dispose();
    x.dispose();
  });

  it('does not leak tensors and rejects wrapping itself', async () => {
    const x = tf.randomUniform([2, 4, 4, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
    (await explain('contrast', c, x, { options: { weightStep: 0.1 } })).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) (await explain('contrast', c, x, { options: { weightStep: 0.1 } })).dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(explain('contrast', c, x, { options: { method: 'contrast' } })).rejects.toThrow(OptionError);
    x.dispose();
  });
});
