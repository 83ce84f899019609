/**
 * LSE's two presets on a case computed by hand: an identity generator (g(z) = z, e(x) = x, so
 * x' = x + ε) and a linear classifier whose class-1 logit is a·(x₁ − ½) (class 0's is 0). For the
 * target y = 1 the cross-entropy is softplus(−a·u) with u = x'₁ − ½, its gradient in ε₁ is
 * −a·σ(−a·u) and 0 in ε₂, so seed 000's descent is the scalar recurrence
 *     u ← u + λ·a·σ(−a·u),   stopping at the first u > 0,
 * and the smallest ε that changes the class is |u₀| along e₁ (closed form: the distance to the plane).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { explain } from '../src/core/registry.js';
import { Classifier } from '../src/core/classifier.js';
import { OptionError } from '../src/core/errors.js';
import { latentSearch, LSE_DEFAULTS, resolveLseOptions } from '../src/counterfactual/lse.js';
import type { Generator } from '../src/generative/types.js';

const A = 2;
const identity: Generator = {
  kind: 'ae', name: 'identity-2', latentDim: 2, outputShape: [1, 1, 2], info: {},
  decode: (z) => tf.reshape(z, [z.shape[0], 1, 1, 2]) as tf.Tensor4D,
  encode: (x) => tf.reshape(x, [x.shape[0], 2]) as tf.Tensor2D,
  dispose: () => {},
};
const linear = Classifier.fromFunction((x) => tf.tidy(() => {
  const u = tf.sub(tf.reshape(tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 1]), [-1, 1]), 0.5);
  return tf.concat([tf.zerosLike(u), tf.mul(u, A)], 1) as tf.Tensor2D;
}), { name: 'linear', inputShape: [1, 1, 2], numClasses: 2 });

/** The descent by hand (float64): u_n for n = 0 … the first n with u_n > 0. */
function byHand(u0: number, lambda: number): number[] {
  const us = [u0];
  while (us[us.length - 1] <= 0) {
    const u = us[us.length - 1];
    us.push(u + lambda * A / (1 + Math.exp(A * u)));
  }
  return us;
}

const x1s = [0.25, 0.4, 0.1];
let x: tf.Tensor4D;
beforeAll(async () => {
  await initBackend();
  x = tf.tensor4d(x1s.flatMap((v) => [v, 0.7]), [3, 1, 1, 2]);
});

describe('lse presets on a linear latent classifier', () => {
  it("preset 'seed': constant λ = 0.1 steps, ε at the first step with c(x') = y, ‖ε‖ between the closed-form minimum and one step past it", async () => {
    const r = await latentSearch(linear, identity, x, [1, 1, 1], { ...LSE_DEFAULTS, generator: identity, preset: 'seed', maxSteps: 200 });
    for (const [i, x1] of x1s.entries()) {
      const us = byHand(x1 - 0.5, 0.1);
      const n = us.length - 1;
      expect(r.success[i]).toBe(true);
      expect(r.steps[i]).toBe(n);
      // Every recorded step is the recurrence's, along e₁ only.
      expect(r.path[i].length).toBe(n + 1);
      for (let k = 0; k <= n; k++) {
        expect(r.path[i][k][0] - 0.5).toBeCloseTo(us[k], 5);
        expect(r.path[i][k][1]).toBeCloseTo(0.7, 6);
      }
      const minimal = 0.5 - x1;
      expect(r.epsNorm[i]).toBeCloseTo(us[n] - us[0], 5);
      expect(r.epsNorm[i]).toBeGreaterThan(minimal);
      expect(r.epsNorm[i] - minimal).toBeLessThanOrEqual(us[n] - us[n - 1] + 1e-6);
      expect(r.epsNormAtStop[i]).toBe(r.epsNorm[i]);
      expect(r.predicted[i]).toBe(1);
    }
    tf.dispose([r.perturbed, r.perturbation, r.logitsAfter]);
  });

  it("preset 'seed' pins λ = 0.1, refine 0 and no clipping whatever is passed", async () => {
    expect(resolveLseOptions({ ...LSE_DEFAULTS, preset: 'seed', stepSize: 0.5, refine: 7, clip: true })).toMatchObject({ stepSize: 0.1, refine: 0, clip: false });
    const a = await latentSearch(linear, identity, x, [1, 1, 1], { ...LSE_DEFAULTS, generator: identity, preset: 'seed', stepSize: 0.5 });
    expect(a.steps).toEqual(x1s.map((v) => byHand(v - 0.5, 0.1).length - 1));
    tf.dispose([a.perturbed, a.perturbation, a.logitsAfter]);
  });

  it("default preset: the same descent, its last step bisected to within 2^−refine of a step of the plane", async () => {
    const r = await latentSearch(linear, identity, x, [1, 1, 1], { ...LSE_DEFAULTS, generator: identity, maxSteps: 200 });
    for (const [i, x1] of x1s.entries()) {
      const us = byHand(x1 - 0.5, 0.1);
      const n = us.length - 1;
      const minimal = 0.5 - x1;
      expect(r.steps[i]).toBe(n);
      expect(r.epsNormAtStop[i]).toBeCloseTo(us[n] - us[0], 5);
      expect(r.epsNorm[i]).toBeGreaterThan(minimal - 1e-6);
      expect(r.epsNorm[i] - minimal).toBeLessThanOrEqual((us[n] - us[n - 1]) / 2 ** LSE_DEFAULTS.refine + 1e-5);
      expect(r.epsNorm[i]).toBeLessThan(r.epsNormAtStop[i]);
      expect(r.predicted[i]).toBe(1); // still on the target's side
    }
    // x' = g(z + ε) + x − g(z) = x + ε with the refined ε.
    const xp = await r.perturbed.array() as number[][][][];
    for (const [i, x1] of x1s.entries()) expect(xp[i][0][0][0]).toBeCloseTo(x1 + r.epsilon[i][0], 5);
    tf.dispose([r.perturbed, r.perturbation, r.logitsAfter]);
  });

  it('success at step 0 is not refined, a failed search is not refined, and nothing leaks', async () => {
    const before = tf.memory().numTensors;
    const y = [0, 1, 1]; // image 0 already class 0; image 2 (u₀ = −0.4) needs more than the 1 step allowed
    const r = await latentSearch(linear, identity, x, y, { ...LSE_DEFAULTS, generator: identity, maxSteps: 1 });
    expect(r.steps[0]).toBe(0);
    expect(r.epsNorm[0]).toBe(0);
    expect(byHand(-0.4, 0.1).length - 1).toBeGreaterThan(1);
    expect(r.success[2]).toBe(false);
    expect(r.epsNorm[2]).toBeCloseTo(r.epsNormAtStop[2], 6);
    expect(r.epsNorm[2]).toBeGreaterThan(0);
    tf.dispose([r.perturbed, r.perturbation, r.logitsAfter]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('explain: preset and refine are registered options, checked', async () => {
    const e = await explain('lse', linear, x, { target: 1, options: { generator: identity, preset: 'seed' } });
    expect(e.extras.steps).toEqual(x1s.map((v) => byHand(v - 0.5, 0.1).length - 1));
    e.dispose();
    await expect(explain('lse', linear, x, { target: 1, options: { generator: identity, preset: 'paper' } })).rejects.toThrow(OptionError);
    await expect(explain('lse', linear, x, { target: 1, options: { generator: identity, refine: -1 } })).rejects.toThrow(OptionError);
  });
});
