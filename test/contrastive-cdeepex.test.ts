import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { explain } from '../src/core/registry.js';
import { OptionError } from '../src/core/errors.js';
import { contrastiveSearch, trueAndProbe, CDEEPEX_DEFAULTS } from '../src/counterfactual/cdeepex.js';
import { setGeneratorResolver } from '../src/counterfactual/latent.js';
import { makeFixture, type Fixture } from './support/generative-fixture.js';

let fx: Fixture;
let x: tf.Tensor4D;
beforeAll(async () => {
  await initBackend();
  fx = await makeFixture({ latentDim: 8 });
  x = tf.slice(fx.images, 0, 6);
});
afterAll(() => {
  x.dispose();
  fx.dispose();
});

// c0 = 10 (the seed's default is 1) converges in fewer multiplier updates; the constraints checked are the same.
const opts = { outerSteps: 60, innerSteps: 3, c0: 10 };

describe('cdeepex / xgems', () => {
  it('default probe is the second most likely class; a probe equal to the prediction also falls back to it', () => {
    expect(trueAndProbe([[0.1, 3, 2]], [1])).toEqual({ trueClass: [1], probe: [2] });
    expect(trueAndProbe([[0.1, 3, 2]], [0])).toEqual({ trueClass: [1], probe: [0] });
  });

  it('converged points satisfy llh(true) = llh(probe) within 1e-2 and every inequality; the attribution is G(ze) − G(z0)', async () => {
    const e = await explain('cdeepex', fx.classifier, x, { options: { generator: fx.vae, ...opts } });
    const ex = e.extras as Record<string, any>;
    const converged = ex.converged as boolean[];
    expect(converged.filter(Boolean).length).toBeGreaterThanOrEqual(2);
    const after = tf.logSoftmax(tf.tensor2d(e.logitsAfter!)).arraySync() as number[][];
    for (let i = 0; i < 6; i++) {
      expect(ex.probe[i]).not.toBe(ex.trueClass[i]);
      if (!converged[i]) continue;
      const llh = after[i];
      expect(Math.abs(llh[ex.trueClass[i]] - llh[ex.probe[i]])).toBeLessThan(1e-2);
      expect(Math.abs(ex.equalityResidual[i])).toBeLessThan(1e-2);
      for (let j = 0; j < 10; j++) {
        if (j === ex.trueClass[i] || j === ex.probe[i]) continue;
        expect(llh[ex.trueClass[i]] - llh[j]).toBeGreaterThanOrEqual(0.1 - 1e-3);
        expect(llh[ex.probe[i]] - llh[j]).toBeGreaterThanOrEqual(0.1 - 1e-3);
      }
      expect(ex.inequalityResidual[i]).toBeLessThanOrEqual(1e-3);
    }
    // attribution = G(ze) − G(z0) = counterfactual − x
    const ze = tf.tensor2d(ex.zE);
    const z0 = tf.tensor2d(ex.z0);
    const diff = tf.tidy(() => tf.sub(fx.vae.decode(ze), fx.vae.decode(z0)));
    expect(tf.max(tf.abs(tf.sub(diff, e.attribution))).dataSync()[0]).toBeLessThan(1e-5);
    expect(tf.max(tf.abs(tf.sub(tf.sub(ex.counterfactual, x), e.attribution))).dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([ze, z0, diff]);
    e.dispose();
  });

  it('xgems differs only by the missing inequality constraints: same path while they are inactive, different when they bind', async () => {
    const base = { ...CDEEPEX_DEFAULTS, generator: fx.vae, outerSteps: 20, innerSteps: 3 };
    const xi = tf.slice(x, 0, 6);
    const targets = new Array(6).fill(0).map((_, i) => i); // resolved to probes below
    const logits = fx.classifier.logits(xi).arraySync() as number[][];
    const { trueClass, probe } = trueAndProbe(logits, logits.map((r) => r.indexOf(Math.max(...r))));
    const a = await contrastiveSearch(fx.classifier, fx.vae, xi, probe, { ...base, margin: -1e6 }); // inequalities never bind
    const b = await contrastiveSearch(fx.classifier, fx.vae, xi, probe, { ...base, constraints: false });
    expect(a.trueClass).toEqual(trueClass);
    for (let i = 0; i < 6; i++) a.zE[i].forEach((v, j) => expect(v).toBeCloseTo(b.zE[i][j], 5));
    // A large margin makes the inequalities bind: the result moves away from xgems'.
    const c = await contrastiveSearch(fx.classifier, fx.vae, xi, probe, { ...base, margin: 3 });
    const moved = c.zE.some((r, i) => r.some((v, j) => Math.abs(v - b.zE[i][j]) > 1e-3));
    expect(moved).toBe(true);
    for (const r of [a, b, c]) tf.dispose([r.counterfactual, r.difference, r.logitsAfter]);
    xi.dispose();
  });

  it('a batch gives each image what it gets alone, though finished images leave the batch early', async () => {
    const o = { ...CDEEPEX_DEFAULTS, generator: fx.vae, ...opts };
    const probes = [3, 4, 5, 6, 7, 8];
    const batch = await contrastiveSearch(fx.classifier, fx.vae, x, probes, o);
    // The images finish at different multiplier updates, so the batch does shrink along the way.
    expect(new Set(batch.outerSteps).size).toBeGreaterThan(1);
    for (let i = 0; i < 6; i++) {
      const xi = tf.slice(x, i, 1);
      const one = await contrastiveSearch(fx.classifier, fx.vae, xi, [probes[i]], o);
      expect(one.outerSteps[0]).toBe(batch.outerSteps[i]);
      expect(one.converged[0]).toBe(batch.converged[i]);
      one.zE[0].forEach((v, j) => expect(v).toBeCloseTo(batch.zE[i][j], 3));
      expect(one.equalityResidual[0]).toBeCloseTo(batch.equalityResidual[i], 3);
      tf.dispose([xi, one.counterfactual, one.difference, one.logitsAfter]);
    }
    tf.dispose([batch.counterfactual, batch.difference, batch.logitsAfter]);
  });

  it('reports progress: non-decreasing fractions that end at 1', async () => {
    const seen: number[] = [];
    const e = await explain('cdeepex', fx.classifier, x, { options: { generator: fx.vae, ...opts }, context: { progress: (f) => seen.push(f) } });
    expect(seen.length).toBeGreaterThan(1);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]);
    expect(seen[seen.length - 1]).toBe(1);
    e.dispose();
  });

  it('a generator given by name comes from the resolver when one is set (how a browser page loads them), once per name', async () => {
    const asked: string[] = [];
    setGeneratorResolver(async (name) => {
      asked.push(name);
      return fx.vae;
    });
    try {
      const xi = tf.slice(x, 0, 1);
      for (let i = 0; i < 2; i++) (await explain('xgems', fx.classifier, xi, { options: { generator: 'from-the-page', outerSteps: 2 } })).dispose();
      expect(asked).toEqual(['from-the-page']);
      xi.dispose();
    } finally {
      setGeneratorResolver(undefined);
    }
  });

  it('Algorithm 2 inversion path (no encoder) runs and reports its method; seeded runs are reproducible', async () => {
    const noEnc = { kind: 'gan' as const, name: 'dec-only', latentDim: 8, outputShape: [28, 28, 1] as [number, number, number], info: {}, decode: (z: tf.Tensor2D) => fx.vae.decode(z), dispose() {} };
    const xi = tf.slice(x, 0, 2);
    const o = { generator: noEnc, outerSteps: 5, inversionSteps: 40, seed: 3 };
    const e1 = await explain('cdeepex', fx.classifier, xi, { options: o });
    const e2 = await explain('cdeepex', fx.classifier, xi, { options: o });
    expect(e1.extras.inversion).toBe('optimize');
    expect(e1.extras.zE).toEqual(e2.extras.zE);
    e1.dispose();
    e2.dispose();
    xi.dispose();
  });

  it('rejects bad options and does not leak tensors', async () => {
    const xi = tf.slice(x, 0, 2);
    await expect(explain('cdeepex', fx.classifier, xi, { options: { generator: fx.vae, beta: 0 } })).rejects.toThrow(OptionError);
    await expect(explain('xgems', fx.classifier, xi, { options: { generator: fx.vae, optimizer: 'lbfgs' } })).rejects.toThrow(OptionError);
    (await explain('cdeepex', fx.classifier, xi, { options: { generator: fx.vae, outerSteps: 3 } })).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) (await explain('cdeepex', fx.classifier, xi, { options: { generator: fx.vae, outerSteps: 3 } })).dispose();
    expect(tf.memory().numTensors).toBe(before);
    xi.dispose();
  });
});
