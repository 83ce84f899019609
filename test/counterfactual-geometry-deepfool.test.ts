import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, explain, Classifier } from '../src/index.js';
import { deepfool } from '../src/counterfactual/deepfool.js';
import { toyMlp, toyData, toyCnn } from './support/geometry-fixtures.js';

let mlp: Classifier;
let x: tf.Tensor4D;

beforeAll(async () => {
  await initBackend();
  mlp = await toyMlp(3);
  x = toyData(12, 99).x;
});

function argmaxRow(r: number[]): number {
  return r.indexOf(Math.max(...r));
}

function sorted2(row: number[]): [number, number] {
  const s = row.slice().sort((a, b) => b - a);
  return [s[0], s[1]];
}

describe('deepfool', () => {
  it('the toy net is trained (the test is meaningful)', async () => {
    const { y } = toyData(12, 99);
    const pred = await mlp.predictClasses(x);
    expect(pred.filter((p, i) => p === y[i]).length).toBeGreaterThanOrEqual(11);
  });

  it('changes the label, and x + r (no overshoot) lies on the decision boundary', async () => {
    const r = await deepfool(mlp, x);
    const after = await mlp.predictClasses(r.adversarial);
    const before = await mlp.predictClasses(x);
    for (let i = 0; i < 12; i++) {
      expect(r.fooled[i]).toBe(true);
      expect(after[i]).not.toBe(before[i]);
      expect(r.newClass[i]).toBe(after[i]);
      expect(r.iterations[i]).toBeGreaterThanOrEqual(1);
      expect(r.iterations[i]).toBeLessThan(10);
    }
    // The label flips along the segment x + t·r between t = 0.5 and t = 1.02 (curvature moves the
    // boundary; for a linear model it is exactly at t = 1, tested below).
    const l0 = (await mlp.logits(x).array()) as number[][];
    for (const [t, flippedExpected] of [[0.5, false], [1.02, true]] as const) {
      const xt = tf.add(x, tf.mul(r.rTotal, t));
      const p = await mlp.predictClasses(xt);
      const flips = p.filter((c, i) => c !== argmaxRow(l0[i])).length;
      if (flippedExpected) expect(flips).toBe(12);
      else expect(flips).toBeLessThanOrEqual(1);
      xt.dispose();
    }
    // Perturbation = (1 + 0.02)·rTotal without clipping.
    const diff = tf.max(tf.abs(tf.sub(r.perturbation, tf.mul(r.rTotal, 1.02)))).dataSync()[0];
    expect(diff).toBeLessThan(1e-5);
    r.dispose();
  });

  it('on a linear classifier, x + r (no overshoot) lies on the decision boundary after one step', async () => {
    const lin = Classifier.fromModel(tfl.sequential({ layers: [
      tfl.layers.flatten({ inputShape: [8, 8, 1] }),
      tfl.layers.dense({ units: 4, kernelInitializer: tfl.initializers.randomNormal({ seed: 4, stddev: 0.5 }), biasInitializer: 'zeros' }),
    ] }));
    const r = await deepfool(lin, x);
    const onPlane = tf.add(x, r.rTotal);
    const l1 = (await lin.logits(onPlane).array()) as number[][];
    const l0 = (await lin.logits(x).array()) as number[][];
    for (let i = 0; i < 12; i++) {
      expect(r.iterations[i]).toBe(1);
      const [a, b] = sorted2(l1[i]);
      const [a0, b0] = sorted2(l0[i]);
      expect(a - b).toBeLessThan(1e-3 * (a0 - b0) + 1e-3);
      expect(r.fooled[i]).toBe(true);
    }
    onPlane.dispose();
    r.dispose();
  });

  it('is the same image by image as in a batch, and L∞ moves every pixel by the same amount', async () => {
    const r = await deepfool(mlp, x, { batchSize: 5 });
    const one = await deepfool(mlp, tf.slice(x, 7, 1) as tf.Tensor4D);
    expect(one.l2[0]).toBeCloseTo(r.l2[7], 4);
    expect(one.newClass[0]).toBe(r.newClass[7]);
    const li = await deepfool(mlp, x, { norm: 'linf' });
    expect(li.fooled.every(Boolean)).toBe(true);
    // One L∞ step is c·sign(w): with a single iteration every pixel moves by ±‖r‖∞ (or 0).
    const p = await li.perturbation.array();
    const i0 = li.iterations.findIndex((v) => v === 1);
    expect(i0).toBeGreaterThanOrEqual(0);
    const vals = (p[i0].flat(2) as number[]).map(Math.abs).filter((v) => v > 0);
    expect(Math.max(...vals) - Math.min(...vals)).toBeLessThan(1e-5);
    // L∞ perturbations are smaller in L∞ than the L2 ones, L2 ones smaller in L2.
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(li.linf)).toBeLessThan(mean(r.linf));
    expect(mean(r.l2)).toBeLessThan(mean(li.l2));
    [r, one, li].forEach((v) => v.dispose());
  });

  it('targeted: reaches the requested class; clip keeps the domain', async () => {
    const pred = await mlp.predictClasses(x);
    const targets = pred.map((p) => (p + 1) % 3);
    const r = await deepfool(mlp, x, { targets, clip: true });
    const after = await mlp.predictClasses(r.adversarial);
    expect(after.filter((a, i) => a === targets[i]).length).toBeGreaterThanOrEqual(11);
    expect(tf.min(r.adversarial).dataSync()[0]).toBeGreaterThanOrEqual(0);
    expect(tf.max(r.adversarial).dataSync()[0]).toBeLessThanOrEqual(1);
    r.dispose();
  });

  it('registered method: attribution = perturbation, logitsAfter, extras; works on a CNN; no leaks', async () => {
    const e = await explain('deepfool', mlp, x);
    expect(e.attribution.shape).toEqual(x.shape);
    expect(e.logitsAfter!.length).toBe(12);
    expect((e.extras.newClass as number[]).length).toBe(12);
    e.dispose();
    const cnn = toyCnn(2);
    const e2 = await explain('deepfool', cnn, tf.slice(x, 0, 3) as tf.Tensor4D);
    expect((e2.extras.fooled as boolean[]).every(Boolean)).toBe(true);
    e2.dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      (await explain('deepfool', mlp, x, { options: { norm: 'linf' } })).dispose();
      (await deepfool(cnn, x, { maxIterations: 3 })).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
