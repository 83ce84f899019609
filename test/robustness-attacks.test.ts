import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, explain, Classifier } from '../src/index.js';
import { fgsm, minimalFgsm } from '../src/robustness/fgsm.js';
import { pgd } from '../src/robustness/pgd.js';
import { runAttack, attacks } from '../src/robustness/attack-runner.js';
import { toyMlp, toyData } from './support/geometry-fixtures.js';

let mlp: Classifier;
let x: tf.Tensor4D;
let y: number[];

beforeAll(async () => {
  await initBackend();
  mlp = await toyMlp(7);
  const d = toyData(60, 123);
  x = d.x;
  y = Array.from(d.y);
});

function linear2(w: number[]): Classifier {
  const wt = tf.keep(tf.tensor2d(w.map((v) => [v, 0]), [4, 2]));
  return Classifier.fromFunction((v) => tf.matMul(tf.reshape(v, [-1, 4]), wt) as tf.Tensor2D, { inputShape: [1, 4, 1], numClasses: 2 });
}

describe('fgsm and pgd', () => {
  it('FGSM on a linear model: x − ε·sign(w) away from class 0, clipped to [0, 1] (hand-computed)', () => {
    const c = linear2([1, -2, 0.5, 0]);
    const x1 = tf.tensor4d([0.5, 0.5, 0.95, 0.5], [1, 1, 4, 1]);
    // ∂CE(label 0)/∂x = (p0 − 1)·w ⇒ sign = −sign(w); w_3 = 0 gives sign 0.
    const adv = fgsm(c, x1, [0], { epsilon: 0.1 }).dataSync();
    const exp = [0.4, 0.6, 0.85, 0.5];
    for (let j = 0; j < 4; j++) expect(adv[j]).toBeCloseTo(exp[j], 6);
    // Targeted towards class 1: the same direction (down the loss of class 1).
    const advT = fgsm(c, x1, [1], { epsilon: 0.1, targeted: true }).dataSync();
    for (let j = 0; j < 4; j++) expect(advT[j]).toBeCloseTo(exp[j], 6);
    // L2: ε·g/‖g‖ with g ∝ −w.
    const advL2 = fgsm(c, x1, [0], { epsilon: 0.1, norm: 'l2' }).dataSync();
    const nw = Math.sqrt(1 + 4 + 0.25);
    expect(advL2[1]).toBeCloseTo(0.5 + (0.1 * 2) / nw, 5);
    // Clipping: ε = 1 pushes pixel 1 to 1.5 → 1.
    expect(fgsm(c, x1, [0], { epsilon: 1 }).dataSync()[1]).toBe(1);
    x1.dispose();
  });

  it('FGSM and PGD lower the accuracy of a trained net; PGD stays in the ε-ball and is stronger', async () => {
    const clean = await runAttack(mlp, x, y, (c, v) => tf.clone(v), { name: 'none' });
    expect(clean.cleanAccuracy).toBeGreaterThan(0.9);
    expect(clean.successRate).toBe(0);
    expect(clean.rhoAdv).toBe(0);
    expect(clean.adversarialAccuracy).toBe(clean.cleanAccuracy);
    const f = await runAttack(mlp, x, y, attacks.fgsm({ epsilon: 0.25 }), { name: 'fgsm' });
    const p = await runAttack(mlp, x, y, attacks.pgd({ epsilon: 0.25, stepSize: 0.02, steps: 20 }), { name: 'pgd' });
    expect(f.adversarialAccuracy).toBeLessThan(clean.cleanAccuracy);
    expect(p.adversarialAccuracy).toBeLessThanOrEqual(f.adversarialAccuracy);
    expect(p.meanLinf).toBeLessThanOrEqual(0.25 + 1e-6);
    expect(f.meanLinf).toBeLessThanOrEqual(0.25 + 1e-6);
    expect(f.rhoAdv).toBeGreaterThan(0);
    // ρ_adv = mean ‖r‖₂/‖x‖₂: check against a direct computation for FGSM.
    const adv = fgsm(mlp, x, y, { epsilon: 0.25 });
    const rho = tf.mean(tf.div(tf.norm(tf.reshape(tf.sub(adv, x), [60, -1]), 2, 1), tf.norm(tf.reshape(x, [60, -1]), 2, 1))).dataSync()[0];
    expect(f.rhoAdv).toBeCloseTo(rho, 4);
    adv.dispose();
    // L2 PGD: ‖r‖₂ ≤ ε.
    const p2 = await pgd(mlp, x, y, { norm: 'l2', epsilon: 1, stepSize: 0.2, steps: 10 });
    const n2 = tf.max(tf.norm(tf.reshape(tf.sub(p2, x), [60, -1]), 2, 1)).dataSync()[0];
    expect(n2).toBeLessThanOrEqual(1 + 1e-4);
    p2.dispose();
  });

  it('PGD: targeted reaches the target; random start is seeded', async () => {
    const pred = await mlp.predictClasses(x);
    const t = pred.map((p) => (p + 2) % 3);
    const adv = await pgd(mlp, x, t, { targeted: true, epsilon: 0.5, stepSize: 0.05, steps: 30 });
    const after = await mlp.predictClasses(adv);
    expect(after.filter((a, i) => a === t[i]).length).toBeGreaterThan(50);
    const a1 = await pgd(mlp, x, y, { steps: 2, seed: 3 });
    const a2 = await pgd(mlp, x, y, { steps: 2, seed: 3 });
    const a3 = await pgd(mlp, x, y, { steps: 2, seed: 4 });
    expect(tf.max(tf.abs(tf.sub(a1, a2))).dataSync()[0]).toBe(0);
    expect(tf.max(tf.abs(tf.sub(a1, a3))).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([adv, a1, a2, a3]);
  });

  it('minimal FGSM ε flips the label at ε and (mostly) not at 0.9ε', async () => {
    const xs = tf.slice(x, 0, 12) as tf.Tensor4D;
    const ys = y.slice(0, 12);
    const { epsilon, adversarial } = await minimalFgsm(mlp, xs, ys);
    const after = await mlp.predictClasses(adversarial);
    let flips = 0;
    let below = 0;
    for (let i = 0; i < 12; i++) {
      if (!Number.isFinite(epsilon[i])) continue;
      flips++;
      expect(after[i]).not.toBe(ys[i]);
      const a = fgsm(mlp, tf.slice(xs, i, 1) as tf.Tensor4D, [ys[i]], { epsilon: 0.9 * epsilon[i] });
      if ((await mlp.predictClasses(a))[0] === ys[i]) below++;
      a.dispose();
    }
    expect(flips).toBeGreaterThan(8);
    expect(below).toBeGreaterThanOrEqual(flips - 1);
    tf.dispose([xs, adversarial]);
  });

  it('registered fgsm, pgd and DeepFool-in-the-runner; no leaks', async () => {
    const e = await explain('fgsm', mlp, x, { options: { epsilon: 0.2 } });
    expect(tf.max(tf.abs(e.attribution)).dataSync()[0]).toBeLessThanOrEqual(0.2 + 1e-6);
    expect(e.logitsAfter!.length).toBe(60);
    e.dispose();
    const df = await runAttack(mlp, x, y, attacks.deepfool(), { name: 'deepfool', batchSize: 32 });
    expect(df.successRate).toBe(1);
    expect(df.rhoAdv).toBeGreaterThan(0);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      (await explain('pgd', mlp, x, { options: { steps: 3 } })).dispose();
      (await explain('fgsm', mlp, x, { target: 1 })).dispose();
      await runAttack(mlp, x, y, attacks.pgd({ steps: 2 }), { batchSize: 25 });
      const m = await minimalFgsm(mlp, x, y, { gridSteps: 3, bisections: 1 });
      m.adversarial.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
