/**
 * Metrics against hand-computed cases: a linear model whose faithful ordering is known (gradient ×
 * input is each pixel's exact contribution), Gini and entropy of known vectors, conservation of
 * integrated gradients, wrong explanations (random, inverted) scoring worse, seeded determinism,
 * batching of the curves, no tensor leaks, and every classifier kind (layered, graph, function).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  initBackend, Classifier, evaluateMetric as evaluate, listMetrics, gini, entropy, effectiveComplexity, ssim, spearman, exportGraphModel, explain,
  type ExplainFunction,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend();
});

const NAMES = [
  'pixel-flipping', 'deletion', 'insertion', 'faithfulness-correlation', 'infidelity', 'max-sensitivity', 'avg-sensitivity', 'randomization',
  'random-logit', 'sparseness', 'complexity', 'completeness', 'input-invariance', 'mass-in-region', 'pointing-game',
];

/** logits = flatten(x)·W, 6×6×1 inputs, 3 classes, weights fixed by a formula (no bias). */
function linearClassifier(): { c: Classifier; w: Float32Array; calls: { n: number } } {
  const w = new Float32Array(36 * 3);
  for (let p = 0; p < 36; p++) for (let k = 0; k < 3; k++) w[p * 3 + k] = Math.sin(1.7 * p + 2.3 * k) * (1 + (p % 5));
  const calls = { n: 0 };
  const wt = tf.keep(tf.tensor2d(w, [36, 3]));
  const c = Classifier.fromFunction((x) => {
    calls.n++;
    return tf.matMul(tf.reshape(x, [x.shape[0], 36]), wt) as tf.Tensor2D;
  }, { inputShape: [6, 6, 1], numClasses: 3, name: 'linear' });
  return { c, w, calls };
}

function smallCnn(seed = 3): tfl.LayersModel {
  return tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1', kernelInitializer: tfl.initializers.heNormal({ seed }), biasInitializer: 'zeros' }),
    tfl.layers.maxPooling2d({ poolSize: 2, name: 'p1' }),
    tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2', kernelInitializer: tfl.initializers.heNormal({ seed: seed + 1 }) }),
    tfl.layers.flatten({ name: 'f' }),
    tfl.layers.dense({ units: 4, name: 'd', kernelInitializer: tfl.initializers.glorotNormal({ seed: seed + 2 }), biasInitializer: tfl.initializers.randomNormal({ seed: seed + 3, stddev: 0.1 }) }),
  ] });
}

const images = (n: number, h: number, w: number, seed = 1) => tf.randomUniform([n, h, w, 1], 0, 1, 'float32', seed) as tf.Tensor4D;

describe('registry', () => {
  it('lists exactly the documented names', () => {
    expect(listMetrics().map((m) => m.name).sort()).toEqual([...NAMES].sort());
  });
  it('rejects unknown metrics and options, and tensors for re-explaining metrics', async () => {
    const { c } = linearClassifier();
    const x = images(1, 6, 6);
    const a = tf.onesLike(x);
    await expect(evaluate('nope', c, x, a)).rejects.toThrow(/registered metrics/);
    await expect(evaluate('deletion', c, x, a, { options: { stepz: 3 } })).rejects.toThrow(/^expected an option of metric "deletion" \(.*\); got unknown option "stepz"$/);
    await expect(evaluate('max-sensitivity', c, x, a)).rejects.toThrow(/runs the explanation again/);
    await expect(evaluate('deletion', c, x, tf.ones([2, 6, 6, 1]) as tf.Tensor4D)).rejects.toThrow(/one map per image/);
    tf.dispose([x, a]);
  });
});

describe('hand-computed: a linear model', () => {
  it('deletion follows the contributions exactly; gradient × input is the best ordering', async () => {
    const { c, w } = linearClassifier();
    const x = images(2, 6, 6, 7);
    const xv = await x.data();
    const gxi = await explain('gradient-x-input', c, x, { target: [0, 2] });
    const opts = { target: [0, 2], options: { steps: 36, output: 'logit' } };
    const r = await evaluate('deletion', c, x, gxi.attribution, opts);
    // By hand: removing pixels in descending x·w order; logit after k removals = Σ of the rest.
    for (const [i, t] of [[0, 0], [1, 2]] as const) {
      const contrib = Array.from({ length: 36 }, (_, p) => xv[i * 36 + p] * w[p * 3 + t]);
      const order = contrib.map((v, p) => [v, p] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      let f = contrib.reduce((a, b) => a + b, 0);
      const curve = [f];
      for (const [v] of order) curve.push((f -= v));
      r.curves[0].y[i].forEach((v, k) => expect(v).toBeCloseTo(curve[k], 4));
    }
    // Wrong explanations: random and inverted maps delete worse (higher AUC), insert worse, flip worse.
    const rnd = tf.randomNormal(x.shape, 0, 1, 'float32', 5) as tf.Tensor4D;
    const inv = tf.neg(gxi.attribution) as tf.Tensor4D;
    const grad = await explain('gradient', c, x, { target: [0, 2] });
    const score = async (m: string, a: tf.Tensor4D, o: Record<string, unknown> = {}) => (await evaluate(m, c, x, a, { target: [0, 2], options: { output: 'logit', ...o } })).scores;
    for (const [metric, better] of [['deletion', -1], ['insertion', 1], ['pixel-flipping', 1]] as const) {
      const o = metric === 'insertion' ? { start: 'baseline' } : {};
      const best = await score(metric, gxi.attribution, o);
      for (const wrong of [rnd, inv, grad.attribution]) {
        const s = await score(metric, wrong, o);
        for (let i = 0; i < 2; i++) expect(better * (best[i] - s[i])).toBeGreaterThan(0);
      }
    }
    // faithfulness correlation is exactly 1 for the exact contributions of a linear model (baseline 0).
    const fc = await evaluate('faithfulness-correlation', c, x, gxi.attribution, { target: [0, 2], options: { output: 'logit', samples: 30 } });
    fc.scores.forEach((s) => expect(s).toBeCloseTo(1, 5));
    // infidelity: Iᵀ(w ⊙ 1) = f(x) − f(x − I) exactly for the gradient of a linear model → 0.
    const inf = await evaluate('infidelity', c, x, grad.attribution, { target: [0, 2], options: { samples: 16 } });
    inf.scores.forEach((s) => expect(s).toBeLessThan(1e-8));
    const infRnd = await evaluate('infidelity', c, x, rnd, { target: [0, 2], options: { samples: 16 } });
    infRnd.scores.forEach((s) => expect(s).toBeGreaterThan(0.5));
    // completeness: gradient × input of a bias-free linear model sums to the logit.
    const comp = await evaluate('completeness', c, x, gxi.attribution, { target: [0, 2] });
    comp.scores.forEach((s) => expect(s).toBeLessThan(1e-4));
    tf.dispose([x, rnd, inv]);
    gxi.dispose();
    grad.dispose();
  });

  it('a 100-step curve is batched forward passes, not 100 calls', async () => {
    const { c, calls } = linearClassifier();
    const x = images(3, 6, 6, 2);
    const a = tf.randomNormal(x.shape, 0, 1, 'float32', 3) as tf.Tensor4D;
    await evaluate('sparseness', c, x, a); // measures the memory footprint once (forward and gradient calls)
    calls.n = 0;
    await evaluate('pixel-flipping', c, x, a, { options: { steps: 100, order: 'both' } });
    // 1 for the targets + 2 curves of 3·101 rows at ≤ 256 rows per pass.
    expect(calls.n).toBeLessThanOrEqual(1 + 2 * Math.ceil(303 / 256));
    tf.dispose([x, a]);
  });

  it('input invariance: gradient is invariant, gradient × input is not', async () => {
    const { c } = linearClassifier();
    const x = images(2, 6, 6, 4);
    const g = await evaluate('input-invariance', c, x, 'gradient');
    g.scores.forEach((s) => expect(s).toBeLessThan(1e-5));
    expect(g.extras.invariant).toEqual([true, true]);
    const gx = await evaluate('input-invariance', c, x, 'gradient-x-input');
    gx.scores.forEach((s) => expect(s).toBeGreaterThan(0.1));
    x.dispose();
  });
});

describe('complexity measures of known vectors', () => {
  it('Gini', () => {
    expect(gini([1, 0, 0, 0])).toBeCloseTo(0.75, 12);
    expect(gini([2, 2, 2, 2])).toBeCloseTo(0, 12);
    expect(gini([0, 0, 0])).toBe(0);
    // sorted [1,2,3,4]: Σ(2i−n−1)a_i = (−3·1 −1·2 +1·3 +3·4) = 10; /(4·10) = 0.25
    expect(gini([4, -1, 3, 2])).toBeCloseTo(0.25, 12);
  });
  it('entropy and effective complexity', () => {
    expect(entropy([1, 1, 1, 1])).toBeCloseTo(Math.log(4), 12);
    expect(entropy([0, 5, 0])).toBe(0);
    expect(entropy([1, -1, 2])).toBeCloseTo(-(0.5 * Math.log(0.25) + 0.5 * Math.log(0.5)), 12);
    expect(effectiveComplexity([1, 0.001, 0.5, 0], 0.01)).toBe(2);
  });
  it('through evaluate: a one-pixel map is sparse and simple, a flat map is not', async () => {
    const { c } = linearClassifier();
    const x = images(2, 6, 6);
    const a = tf.tensor4d(Array.from({ length: 72 }, (_, i) => (i < 36 ? (i === 7 ? 3 : 0) : 1)), [2, 6, 6, 1]);
    const sp = await evaluate('sparseness', c, x, a);
    expect(sp.scores[0]).toBeCloseTo(35 / 36, 10);
    expect(sp.scores[1]).toBeCloseTo(0, 10);
    const cx = await evaluate('complexity', c, x, a);
    expect(cx.scores[0]).toBeCloseTo(0, 10);
    expect(cx.scores[1]).toBeCloseTo(Math.log(36), 10);
    expect(cx.extras.effectiveComplexity).toEqual([1, 36]);
    tf.dispose([x, a]);
  });
  it('similarities of known maps', () => {
    const a = Float64Array.from({ length: 64 }, (_, i) => Math.sin(i));
    expect(ssim(a, a, 8, 8)).toBeCloseTo(1, 10);
    expect(spearman(a, a.map((v) => v * 3 + 1))).toBeCloseTo(1, 12);
    expect(spearman(a, a.map((v) => -v))).toBeCloseTo(-1, 12);
  });
});

describe('localisation on the biased-MNIST square', () => {
  it('mass in the 6×6 top-left square and the pointing game', async () => {
    const { c } = linearClassifier();
    const x = tf.tidy(() => tf.pad(tf.randomUniform([2, 6, 6, 1], 0, 1, 'float32', 1), [[0, 0], [0, 6], [0, 6], [0, 0]])) as tf.Tensor4D;
    const big = Classifier.fromFunction((v) => tf.tile(tf.sum(v, [1, 2]), [1, 3]) as tf.Tensor2D, { inputShape: [12, 12, 1], numClasses: 3 });
    const m = new Float32Array(2 * 144);
    m[0 * 144 + 2 * 12 + 3] = 3; // image 0: everything at (2,3), inside the square
    m[0 * 144 + 10 * 12 + 10] = 1; // and a quarter outside
    m[1 * 144 + 8 * 12 + 8] = 5; // image 1: peak outside
    m[1 * 144 + 0] = -4; // negative evidence inside does not count
    const a = tf.tensor4d(m, [2, 12, 12, 1]);
    const mass = await evaluate('mass-in-region', big, x, a);
    expect(mass.scores[0]).toBeCloseTo(0.75, 6);
    expect(mass.scores[1]).toBeCloseTo(0, 6);
    const pg = await evaluate('pointing-game', big, x, a);
    expect(pg.scores).toEqual([1, 0]);
    const pgTol = await evaluate('pointing-game', big, x, a, { options: { tolerance: 3 } });
    expect(pgTol.scores).toEqual([1, 1]);
    const region = tf.tidy(() => tf.reshape(tf.oneHot(tf.tensor1d([8 * 12 + 8], 'int32'), 144), [1, 12, 12, 1]));
    expect((await evaluate('mass-in-region', big, x, a, { options: { region } })).scores).toEqual([0, 1]);
    tf.dispose([x, a, region]);
    void c;
  });
});

describe('a small CNN (layered), its graph-model export and a function classifier', () => {
  it('integrated gradients conserves (completeness ≈ 0); plain gradient does not', async () => {
    const model = smallCnn();
    const c = Classifier.fromModel(model);
    const x = images(2, 8, 8, 9);
    const ig = await evaluate('completeness', c, x, 'integrated-gradients', { methodOptions: { steps: 64 } });
    ig.scores.forEach((s, i) => expect(s).toBeLessThan(0.02 * Math.max(1, Math.abs((ig.extras.delta as number[])[i]))));
    const g = await evaluate('completeness', c, x, 'gradient');
    expect(g.mean).toBeGreaterThan(ig.mean * 5);
    x.dispose();
    model.dispose();
  });

  it('seeded metrics repeat exactly with a seed and differ with another', async () => {
    const model = smallCnn();
    const c = Classifier.fromModel(model);
    const x = images(2, 8, 8, 4);
    for (const [metric, options] of [
      ['faithfulness-correlation', { samples: 12 }], ['infidelity', { samples: 8 }], ['max-sensitivity', { samples: 3 }],
      ['pixel-flipping', { replacement: 'uniform', steps: 8 }], ['random-logit', {}],
    ] as const) {
      const run = (seed: number) => evaluate(metric, c, x, 'gradient', { options: { ...options, seed } });
      const [a, b, d] = [await run(1), await run(1), await run(2)];
      expect(a.scores).toEqual(b.scores);
      expect(d.scores).not.toEqual(a.scores);
    }
    x.dispose();
    model.dispose();
  });

  it('every metric runs with a method, and none leaks tensors', async () => {
    const model = smallCnn();
    const c = Classifier.fromModel(model);
    const x = images(2, 8, 8, 5);
    const small: Record<string, Record<string, unknown>> = {
      'pixel-flipping': { steps: 8 }, deletion: { steps: 8 }, insertion: { steps: 8 }, 'faithfulness-correlation': { samples: 6 }, infidelity: { samples: 4 },
      'max-sensitivity': { samples: 2 }, 'avg-sensitivity': { samples: 2 },
    };
    for (const name of NAMES) {
      // warm-up: footprints, LRP's derived-weight cache
      for (const method of ['gradient', 'grad-cam', 'lrp']) await evaluate(name, c, x, method, { options: small[name] });
      const before = tf.memory().numTensors;
      for (const method of ['gradient', 'grad-cam', 'lrp']) {
        const r = await evaluate(name, c, x, method, { options: small[name] });
        expect(r.scores).toHaveLength(2);
        r.scores.forEach((s) => expect(Number.isFinite(s) || s === Infinity).toBe(true));
        if (method === 'grad-cam') expect(r.resampled).toBe(false); // grad-cam upsamples itself
      }
      expect(tf.memory().numTensors, name).toBe(before);
    }
    // a layer attribution ([N,h,w,c] of a conv layer) is brought to the input grid
    const lr = await evaluate('deletion', c, x, 'layer-gradient-x-activation', { methodOptions: { layer: 'c2' }, options: { steps: 4 } });
    expect(lr.resampled).toBe(true);
    x.dispose();
    model.dispose();
  });

  it('graph models and function classifiers work through the Classifier API', async () => {
    const model = smallCnn(11);
    const art = exportGraphModel(model);
    const g = await Classifier.fromGraphModel({ modelJson: art.modelJson, weights: art.shards });
    const layered = Classifier.fromModel(model);
    const f = Classifier.fromFunction((v) => layered.logits(v), { inputShape: [8, 8, 1], numClasses: 4 });
    const x = images(2, 8, 8, 6);
    for (const c of [g, f]) {
      const before = tf.memory().numTensors;
      const del = await evaluate('deletion', c, x, 'gradient-x-input', { options: { steps: 10 } });
      expect(del.curves[0].y[0]).toHaveLength(11);
      const sens = await evaluate('avg-sensitivity', c, x, 'gradient', { options: { samples: 2 } });
      expect(sens.scores.every(Number.isFinite)).toBe(true);
      const inv = await evaluate('input-invariance', c, x, 'gradient');
      inv.scores.forEach((s) => expect(s).toBeLessThan(1e-3));
      expect(tf.memory().numTensors).toBe(before);
    }
    const rg = await evaluate('randomization', g, x, 'gradient');
    expect(rg.curves.map((cv) => cv.name)).toEqual(['spearman', 'ssim', 'hog']);
    await expect(evaluate('randomization', f, x, 'gradient')).rejects.toThrow(/layers of the model/);
    x.dispose();
    g.dispose();
    model.dispose();
  });

  it('a user tensor with an explain function drives re-explaining metrics', async () => {
    const { c } = linearClassifier();
    const x = images(2, 6, 6, 8);
    const fn: ExplainFunction = async (cl, xs, ts) => (await explain('gradient', cl, xs, { target: ts, skipRangeCheck: true })).attribution;
    const e = await explain('gradient', c, x);
    const r = await evaluate('max-sensitivity', c, x, e.attribution, { explain: fn, options: { samples: 3 } });
    r.scores.forEach((s) => expect(s).toBeLessThan(1e-5)); // a linear model's gradient does not move
    e.dispose();
    x.dispose();
  });
});

describe('the offset-shifted twin', () => {
  it('gives the same logits at x + m: through the input transform (plain and inverted) and through an input_shift node', async () => {
    const { buildCnn, shiftedTwin } = await import('../src/index.js');
    const x = images(3, 8, 8, 12);
    for (const transform of [undefined, { offset: -0.5, scale: 2, invert: false }, { offset: 0.25, scale: 0.5, invert: true }]) {
      const model = buildCnn({ inputShape: [8, 8, 1], numClasses: 3, convs: [{ filters: 3, kernelSize: 3, pool: 2 }], dense: [5], transform, seed: 2 });
      const c = Classifier.fromModel(model);
      const twin = shiftedTwin(c, -0.3);
      expect(twin.classifier.domain.low).toBeCloseTo(-0.3, 12);
      expect(Boolean(twin.classifier.graph!.byName.get('input_shift'))).toBe(transform === undefined);
      const shifted = tf.sub(x, 0.3);
      const [a, b] = [c.logits(x), twin.classifier.logits(shifted)];
      expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-5);
      // the original is untouched
      expect(c.graph!.byName.has('input_shift')).toBe(false);
      tf.dispose([a, b, shifted]);
      twin.dispose();
      model.dispose();
    }
    x.dispose();
  });
});

describe('ROAD imputation (replacement "road")', () => {
  it('fills a removed pixel of a linear ramp with the ramp (plus small noise), unlike a baseline', async () => {
    // logit 0 = the pixel at (3, 3); the map removes exactly that pixel first
    const c = Classifier.fromFunction((v) => tf.tidy(() => {
      const p = tf.reshape(tf.slice(v, [0, 3, 3, 0], [-1, 1, 1, 1]), [-1, 1]);
      return tf.concat([p, tf.zerosLike(p), tf.zerosLike(p)], 1) as tf.Tensor2D;
    }), { inputShape: [8, 8, 1], numClasses: 3 });
    const ramp = tf.tidy(() => tf.reshape(tf.tensor1d(Array.from({ length: 64 }, (_, i) => (Math.floor(i / 8) + (i % 8)) / 14)), [1, 8, 8, 1])) as tf.Tensor4D;
    const a = tf.tidy(() => tf.reshape(tf.oneHot(tf.tensor1d([27], 'int32'), 64), [1, 8, 8, 1])) as tf.Tensor4D;
    const opts = (replacement: string) => ({ target: 0, options: { replacement, steps: 64, output: 'logit' } });
    const road = await evaluate('deletion', c, ramp, a, opts('road'));
    const base = await evaluate('deletion', c, ramp, a, opts('baseline'));
    expect(road.curves[0].y[0][0]).toBeCloseTo(6 / 14, 5);
    expect(Math.abs(road.curves[0].y[0][1] - 6 / 14)).toBeLessThan(0.04);
    expect(base.curves[0].y[0][1]).toBe(0);
    const before = tf.memory().numTensors;
    const again = await evaluate('deletion', c, ramp, a, opts('road'));
    expect(again.scores).toEqual(road.scores);
    await evaluate('pixel-flipping', c, ramp, a, { options: { replacement: 'road', steps: 8 } });
    await evaluate('faithfulness-correlation', c, ramp, a, { options: { replacement: 'road', samples: 5 } });
    expect(tf.memory().numTensors).toBe(before);
    await expect(evaluate('insertion', c, ramp, a, { options: { start: 'road' } })).rejects.toThrow(/option start/);
    tf.dispose([ramp, a]);
  });
});
