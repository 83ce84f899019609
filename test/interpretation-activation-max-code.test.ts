import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, explain, Classifier, hasDefaultModel, loadDefaultClassifier, getMethod, OptionError } from '../src/index.js';
import { hasDefaultGenerator, loadDefaultGenerator } from '../src/generative/io.js';
import { activationMaxCode } from '../src/interpretation/activation-max-code.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';

const shipped = hasDefaultModel('mnist-cnn') && hasDefaultGenerator('mnist-vae-10d') && hasDefaultGenerator('mnist-gan');
let cnn: Classifier;

beforeAll(async () => {
  await initBackend();
  if (!shipped) return;
  cnn = await loadDefaultClassifier('mnist-cnn');
  // Shipped generators are loaded once per process and kept: load them before counting tensors.
  await loadDefaultGenerator('mnist-vae-10d');
  await loadDefaultGenerator('mnist-gan');
});

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

describe.skipIf(!shipped)('activation-max-code (seed 003 Eq. 3.3) on the shipped mnist-cnn', () => {
  it('VAE decoder: class prototypes reach a high probability, the trace rises, codes and prior density are returned, no leaks', async () => {
    const before = tf.memory().numTensors;
    const classes = [1, 7];
    const r = await activationMaxCode(cnn, classes.map((c) => ({ class: c })), { steps: 60, generator: 'mnist-vae-10d' });
    expect(r.prototypes.shape).toEqual([2, 28, 28, 1]);
    expect(r.codes.shape).toEqual([2, 10]);
    classes.forEach((c, i) => {
      expect(r.probabilities[i][c]).toBeGreaterThan(0.8);
      expect(mean(r.trace[i].slice(-5))).toBeGreaterThan(r.trace[i][0]);
      expect(r.objective[i]).toBeCloseTo(Math.log(r.probabilities[i][c]), 3);
    });
    // The prototype is the decoder's image of the code, and the density is log N(z; 0, I).
    const dec = await loadDefaultGenerator('mnist-vae-10d');
    const again = tf.tidy(() => tf.max(tf.abs(tf.sub(dec.decode(r.codes), r.prototypes))));
    expect(again.dataSync()[0]).toBeLessThan(1e-5);
    const z = (await r.codes.array()) as number[][];
    z.forEach((row, i) => expect(r.priorLogDensity[i]).toBeCloseTo(-0.5 * row.reduce((s, v) => s + v * v, 0) - 5 * Math.log(2 * Math.PI), 3));
    again.dispose();
    r.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('with λ large the code goes to the prior mode 0; deterministic with a seed', async () => {
    // From a N(0, I) draw (|z| up to ~2) to within Adam's step size of 0.
    const big = await activationMaxCode(cnn, [{ class: 3 }], { steps: 100, lambda: 1000, learningRate: 0.05 });
    const m = tf.max(tf.abs(big.codes));
    expect(m.dataSync()[0]).toBeLessThan(0.1);
    tf.dispose(m);
    big.dispose();
    const opts = { steps: 5, seed: 3, jitter: 1 };
    const [a, b, c] = [
      await activationMaxCode(cnn, [{ class: 2 }], opts), await activationMaxCode(cnn, [{ class: 2 }], opts),
      await activationMaxCode(cnn, [{ class: 2 }], { ...opts, seed: 4 }),
    ];
    expect(await a.codes.array()).toEqual(await b.codes.array());
    expect(await a.codes.array()).not.toEqual(await c.codes.array());
    [a, b, c].forEach((r) => r.dispose());
  });

  it('GAN generator works (noise start); start given needs an encoder; registered in family interpretation', async () => {
    const g = await activationMaxCode(cnn, [{ class: 0 }], { steps: 40, generator: 'mnist-gan' });
    expect(g.probabilities[0][0]).toBeGreaterThan(0.8);
    expect(g.trace[0].at(-1)!).toBeGreaterThan(g.trace[0][0]);
    g.dispose();
    const x = tf.fill([1, 28, 28, 1], 0.1) as tf.Tensor4D;
    await expect(activationMaxCode(cnn, [{ class: 0 }], { steps: 1, generator: 'mnist-gan', start: 'given' }, x)).rejects.toThrow(/needs an encoder/);
    expect(getMethod('activation-max-code').family).toBe('interpretation');
    const before = tf.memory().numTensors;
    const e = await explain('activation-max-code', cnn, x, { target: [6], options: { steps: 30, start: 'given' } });
    expect(e.attribution.shape).toEqual([1, 28, 28, 1]);
    expect((e.extras.probabilities as number[][])[0][6]).toBeGreaterThan(0.5);
    expect(e.extras.priorLogDensity as number[]).toHaveLength(1);
    e.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(explain('activation-max-code', cnn, x, { options: { lambda: -1 } })).rejects.toThrow(OptionError);
    x.dispose();
  });

  it('refuses a classifier whose input the generator does not make, with a typed reason', async () => {
    const model = buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 1, lastFilters: 32, numClasses: 5, seed: 3 });
    const mb = Classifier.fromModel(model, { name: 'mb' });
    const x = tf.fill([1, 32, 32, 3], 0.5) as tf.Tensor4D;
    await expect(explain('activation-max-code', mb, x, { options: { steps: 2 } }))
      .rejects.toThrow(/generator .* makes images 28×28×1, but classifier .* takes 32×32×3: pass option generator, a generator of 32×32×3 images/);
    x.dispose();
    model.dispose();
  });
});
