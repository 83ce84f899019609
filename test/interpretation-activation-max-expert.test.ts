import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, explain, Classifier, hasDefaultModel, loadDefaultClassifier, getMethod, OptionError } from '../src/index.js';
import { activationMax } from '../src/interpretation/activation-max.js';
import { activationMaxExpert, defaultDensityExpert, trainDensityExpert, setDensityExpertData } from '../src/interpretation/activation-max-expert.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';

const shipped = hasDefaultModel('mnist-cnn');
let cnn: Classifier;

beforeAll(async () => {
  await initBackend();
  if (!shipped) return;
  cnn = await loadDefaultClassifier('mnist-cnn');
  // The default expert is trained once per process and kept: train it before counting tensors.
  await defaultDensityExpert();
});

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const v = d.dataSync()[0];
  d.dispose();
  return v;
};

describe.skipIf(!shipped)('activation-max-expert (seed 003 Eq. 3.2) on the shipped mnist-cnn', () => {
  it('the expert makes prototypes more likely under it than the plain ones; the class still rises; no leaks', async () => {
    const before = tf.memory().numTensors;
    const classes = [0, 3, 7];
    const objectives = classes.map((c) => ({ class: c }));
    const ex = await activationMaxExpert(cnn, objectives, { steps: 60 });
    const plain = await activationMax(cnn, objectives, { steps: 60, lambda: 0 });
    const rbm = await defaultDensityExpert();
    const ldPlain = tf.tidy(() => rbm.logDensity(plain.prototypes));
    const lp = (await ldPlain.data()) as Float32Array;
    classes.forEach((c, i) => {
      expect(ex.logDensity[i]).toBeGreaterThan(lp[i] + 50);
      // From a uniform start (p ≈ 0.1) up, though the expert (β = 1) holds it back.
      expect(ex.probabilities[i][c]).toBeGreaterThan(0.25);
      expect(ex.trace[i].at(-1)!).toBeGreaterThan(ex.trace[i][0]);
    });
    ldPlain.dispose();
    ex.dispose();
    plain.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a small expert weight keeps the classifier in charge; weight 0 is activation-max with λ = 0 exactly', async () => {
    const small = await activationMaxExpert(cnn, [{ class: 5 }], { steps: 60, expertWeight: 0.01 });
    expect(small.probabilities[0][5]).toBeGreaterThan(0.9);
    small.dispose();
    const opts = { steps: 10, jitter: 1, seed: 3 };
    const zero = await activationMaxExpert(cnn, [{ class: 2 }], { ...opts, expertWeight: 0 });
    const plain = await activationMax(cnn, [{ class: 2 }], { ...opts, lambda: 0 });
    expect(maxAbsDiff(zero.prototypes, plain.prototypes)).toBeLessThan(1e-6);
    const again = await activationMaxExpert(cnn, [{ class: 2 }], { ...opts, expertWeight: 0 });
    expect(maxAbsDiff(zero.prototypes, again.prototypes)).toBe(0);
    [zero, plain, again].forEach((r) => r.dispose());
  });

  it('takes a given expert; registered in family interpretation; refuses other input shapes without one', async () => {
    const own = await trainDensityExpert({ images: 200, epochs: 1, hidden: 16 });
    const r = await activationMaxExpert(cnn, [{ class: 1 }], { steps: 5, expert: own });
    const ld = tf.tidy(() => own.logDensity(r.prototypes));
    expect(ld.dataSync()[0]).toBeCloseTo(r.logDensity[0], 1);
    tf.dispose(ld);
    r.dispose();
    own.dispose();
    expect(getMethod('activation-max-expert').family).toBe('interpretation');
    const x = tf.fill([1, 28, 28, 1], 0.1) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const e = await explain('activation-max-expert', cnn, x, { target: [4], options: { steps: 20, expertWeight: 0.1 } });
    expect(e.attribution.shape).toEqual([1, 28, 28, 1]);
    expect((e.extras.probabilities as number[][])[0][4]).toBeGreaterThan(0.5);
    expect(e.extras.logDensity as number[]).toHaveLength(1);
    e.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(explain('activation-max-expert', cnn, x, { options: { expertWeight: -1 } })).rejects.toThrow(OptionError);
    x.dispose();
    const model = buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 1, lastFilters: 32, numClasses: 5, seed: 3 });
    const mb = Classifier.fromModel(model, { name: 'mb' });
    const xc = tf.fill([1, 32, 32, 3], 0.5) as tf.Tensor4D;
    await expect(explain('activation-max-expert', mb, xc, { options: { steps: 2 } })).rejects.toThrow(/default density expert models 28×28×1 MNIST images, but classifier "mb" takes 32×32×3: pass option expert/);
    xc.dispose();
    model.dispose();
  });

  it('setDensityExpertData supplies the training images where MNIST is not on disk (the browser explorer); a wrong shape is a typed error', async () => {
    const asked: number[] = [];
    const bright = tf.fill([1, 28, 28, 1], 0.9) as tf.Tensor4D;
    const dark = tf.fill([1, 28, 28, 1], 0.1) as tf.Tensor4D;
    // How much more the expert trained on the provider's images prefers bright over dark images.
    const preference = async (value: number) => {
      setDensityExpertData(async (count) => {
        asked.push(count);
        return tf.fill([2, 28, 28, 1], value) as tf.Tensor4D;
      });
      const rbm = await trainDensityExpert({ images: 40, epochs: 3 });
      const [lb, ld] = [rbm.logDensity(bright), rbm.logDensity(dark)];
      const p = lb.dataSync()[0] - ld.dataSync()[0];
      tf.dispose([lb, ld]);
      rbm.dispose();
      return p;
    };
    try {
      const fromBright = await preference(0.9);
      const fromDark = await preference(0.1);
      expect(asked).toEqual([40, 40]);
      expect(fromBright).toBeGreaterThan(fromDark);
      setDensityExpertData(async () => tf.zeros([2, 32, 32, 1]) as tf.Tensor4D);
      await expect(trainDensityExpert({ images: 2 })).rejects.toThrow(/expected setDensityExpertData to give 28×28×1 images; got 32×32×1/);
    } finally {
      setDensityExpertData(undefined);
      tf.dispose([bright, dark]);
    }
  });
});
