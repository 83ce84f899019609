import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, explain, Classifier } from '../src/index.js';
import { geosal, closestAdversarial } from '../src/counterfactual/geosal.js';
import { toyMlp, toyData, toyCnn } from './support/geometry-fixtures.js';

let mlp: Classifier;
let x: tf.Tensor4D;

beforeAll(async () => {
  await initBackend();
  mlp = await toyMlp(5);
  x = toyData(6, 42).x;
});

/** A linear 2-class classifier on 1×4×1 images: logits = [x·w + b, 0]. */
function linear2(w: number[], b: number): Classifier {
  const wt = tf.keep(tf.tensor2d(w.map((v) => [v, 0]), [4, 2]));
  const bt = tf.keep(tf.tensor1d([b, 0]));
  return Classifier.fromFunction((v) => tf.add(tf.matMul(tf.reshape(v, [-1, 4]), wt), bt) as tf.Tensor2D, { inputShape: [1, 4, 1], numClasses: 2 });
}

describe('geosal', () => {
  it('without clipping, the closest adversarial example of a linear model is the projection on the plane', async () => {
    const w = [1, -2, 0.5, 3];
    const c = linear2(w, -1);
    const xv = [0.6, 0.2, 0.9, 0.5];
    const x1 = tf.tensor4d(xv, [1, 1, 4, 1]);
    const y = xv.reduce((s, v, i) => s + v * w[i], -1); // y' = y_0 − y_1 = x·w − 1 > 0
    expect(y).toBeGreaterThan(0);
    const [r] = await closestAdversarial(c, x1, [{ image: 0, p: 0, q: 1 }], { clip: false, overshoot: 0 });
    const n2 = w.reduce((s, v) => s + v * v, 0);
    // With overshoot 0 the guess lands on the plane (a tie), so the walk ends at the iteration limit
    // or crosses by rounding; the point is the projection either way.
    for (let j = 0; j < 4; j++) expect(r.point[j]).toBeCloseTo(xv[j] - (y / n2) * w[j], 5);
    expect(r.l2).toBeCloseTo(y / Math.sqrt(n2), 5);
    const [r2] = await closestAdversarial(c, x1, [{ image: 0, p: 0, q: 1 }], { clip: false });
    expect(r2.reached).toBe(true);
    expect(r2.iterations).toBe(1);
    x1.dispose();
  });

  it('clipping to the box: the geometric-series shortcut ends the walk at the exact constrained point', async () => {
    // Pixel 0 carries most of the weight and has little headroom: every projection pushes it past 1,
    // so plain iteration closes only the fraction ‖w_F‖²/‖w‖² = 3/103 of the gap per step.
    const w = [10, 1, 1, 1];
    const c = linear2(w, -10.8);
    const xv = [0.95, 0.1, 0.1, 0.1];
    const x1 = tf.tensor4d(xv, [1, 1, 4, 1]); // x·w − 10.8 = −1: class 1; reaching class 0 needs +1
    const [r] = await closestAdversarial(c, x1, [{ image: 0, p: 1, q: 0 }], { overshoot: 1e-5 });
    expect(r.reached).toBe(true);
    expect(r.shortcuts).toBe(1);
    expect(r.iterations).toBeLessThanOrEqual(4);
    // The constrained optimum: pixel 0 at its bound (+0.5), the other three share the remaining 0.5.
    const exp = [1, 0.1 + 0.5 / 3, 0.1 + 0.5 / 3, 0.1 + 0.5 / 3];
    for (let j = 0; j < 4; j++) expect(r.point[j]).toBeCloseTo(exp[j], 4);
    const [without] = await closestAdversarial(c, x1, [{ image: 0, p: 1, q: 0 }], { repeats: 0, maxIterations: 8 });
    expect(without.reached).toBe(false);
    expect(without.point[0]).toBe(1);
    // Unclipped, the projection leaves the box.
    const [free] = await closestAdversarial(c, x1, [{ image: 0, p: 1, q: 0 }], { clip: false });
    expect(free.point[0]).toBeGreaterThan(1);
    x1.dispose();
  });

  it('on a trained MLP: every reached adversarial example flips P vs Q, and the map is Σ y_Q·|x − x\'_Q|', async () => {
    const g = await geosal(mlp, x);
    const probs = (await mlp.probabilities(x).array()) as number[][];
    const xs = (await x.array()) as number[][][][];
    const attr = (await g.attribution.array()) as number[][][][];
    for (let i = 0; i < 6; i++) {
      const P = probs[i].indexOf(Math.max(...probs[i]));
      expect(g.comparisons[i].length).toBe(2);
      expect(probs[i][g.comparisons[i][0]]).toBeGreaterThanOrEqual(probs[i][g.comparisons[i][1]]);
      const adv = g.adversarial[i];
      const la = (await mlp.logits(adv).array()) as number[][];
      const advArr = (await adv.array()) as number[][][][];
      const expected = xs[i].map((row) => row.map((px) => px.map(() => 0)));
      g.comparisons[i].forEach((q, j) => {
        expect(g.reached[i][j]).toBe(true);
        expect(la[j][q]).toBeGreaterThan(la[j][P]);
        // In the box.
        for (const v of advArr[j].flat(2)) {
          expect(v).toBeGreaterThanOrEqual(0);
          expect(v).toBeLessThanOrEqual(1);
        }
        for (let h = 0; h < 8; h++) for (let c = 0; c < 8; c++) expected[h][c][0] += probs[i][q] * Math.abs(xs[i][h][c][0] - advArr[j][h][c][0]);
      });
      for (let h = 0; h < 8; h++) for (let c = 0; c < 8; c++) expect(attr[i][h][c][0]).toBeCloseTo(expected[h][c][0], 5);
      // Closest = the smaller of the two L2 distances.
      expect(g.closestL2[i]).toBeCloseTo(Math.min(...g.l2[i]), 6);
    }
    g.dispose();
  });

  it('signed, two-class and threshold options', async () => {
    const abs = await geosal(mlp, x);
    const signed = await geosal(mlp, x, undefined, { mode: 'signed' });
    const a = abs.attribution.dataSync();
    const s = signed.attribution.dataSync();
    let differs = false;
    for (let i = 0; i < a.length; i++) {
      expect(Math.abs(s[i])).toBeLessThanOrEqual(a[i] + 1e-6);
      if (Math.abs(Math.abs(s[i]) - a[i]) > 1e-4) differs = true;
    }
    expect(differs || s.some((v) => v < 0)).toBe(true);
    // Two-class view: unweighted x − x' for that class.
    const pred = await mlp.predictClasses(x);
    const q = (pred[0] + 1) % 3;
    const one = await geosal(mlp, tf.slice(x, 0, 1) as tf.Tensor4D, undefined, { compareTo: q, mode: 'signed' });
    const j = abs.comparisons[0].indexOf(q);
    const adv = tf.slice(abs.adversarial[0], j, 1);
    const diff = tf.sub(tf.slice(x, 0, 1), adv);
    expect(tf.max(tf.abs(tf.sub(one.attribution, diff))).dataSync()[0]).toBeLessThan(1e-5);
    // Threshold 0.5 leaves no comparison (all other classes are unlikely): a zero map.
    const none = await geosal(mlp, x, undefined, { threshold: 0.5 });
    expect(none.comparisons.every((c) => c.length === 0)).toBe(true);
    expect(tf.max(tf.abs(none.attribution)).dataSync()[0]).toBe(0);
    tf.dispose([adv, diff]);
    [abs, signed, one, none].forEach((r) => r.dispose());
    await expect(geosal(mlp, x, undefined, { compareTo: 7 })).rejects.toThrow(/compareTo/);
  });

  it('registered method on MLP and CNN; no leaks', async () => {
    const e = await explain('geosal', mlp, x);
    expect(e.attribution.shape).toEqual([6, 8, 8, 1]);
    const es = await explain('geosal-signed', mlp, x);
    const direct = await geosal(mlp, x, undefined, { mode: 'signed' });
    expect(tf.max(tf.abs(tf.sub(es.attribution, direct.attribution))).dataSync()[0]).toBe(0);
    es.dispose();
    direct.dispose();
    expect(e.logitsAfter!.length).toBe(6);
    e.dispose();
    const cnn = toyCnn(4);
    const e2 = await explain('geosal', cnn, x, { options: { maxIterations: 20 } });
    const reached = (e2.extras.reached as boolean[][]).flat();
    expect(reached.filter(Boolean).length).toBeGreaterThan(reached.length / 2);
    e2.dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      (await explain('geosal', mlp, x, { options: { mode: 'signed' } })).dispose();
      (await geosal(cnn, x, undefined, { maxIterations: 3 })).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
