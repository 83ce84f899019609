import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, explain } from '../src/index.js';
import { gaussLegendre, integrationPoints } from '../src/attribution/math.js';

beforeAll(async () => {
  await initBackend();
});

/** A linear classifier: logits = flatten(x) · W + b, so ∂logit_c/∂x = W[:, c]. */
function linearClassifier(h: number, w: number, c: number, k: number, seed = 1) {
  const W = tf.randomNormal([h * w * c, k], 0, 1, 'float32', seed) as tf.Tensor2D;
  const b = tf.randomNormal([k], 0, 1, 'float32', seed + 1);
  const clf = Classifier.fromFunction((x) => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), W), b) as tf.Tensor2D, {
    inputShape: [h, w, c], numClasses: k,
  });
  return { clf, W, b };
}

function smoothCnn(seed = 3): tfl.LayersModel {
  return tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [10, 10, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'tanh', kernelInitializer: tfl.initializers.glorotNormal({ seed }) }),
    tfl.layers.averagePooling2d({ poolSize: 2 }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 3, activation: 'softplus', kernelInitializer: tfl.initializers.randomNormal({ stddev: 1, seed: seed + 1 }) }),
    tfl.layers.dense({ units: 4, kernelInitializer: tfl.initializers.randomNormal({ stddev: 1, seed: seed + 2 }) }),
  ] });
}

function reluCnn(seed = 5, c = 1): tfl.LayersModel {
  return tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [8, 8, c], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1', kernelInitializer: tfl.initializers.glorotNormal({ seed }), biasInitializer: tfl.initializers.constant({ value: 0.05 }) }),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2', kernelInitializer: tfl.initializers.glorotNormal({ seed: seed + 1 }) }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 5, kernelInitializer: tfl.initializers.glorotNormal({ seed: seed + 2 }) }),
  ] });
}

async function arr(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

describe('integration rules (Captum conventions)', () => {
  it('Gauss–Legendre nodes and weights match closed forms', () => {
    const g3 = gaussLegendre(3);
    expect(g3.nodes[0]).toBeCloseTo(-Math.sqrt(3 / 5), 14);
    expect(g3.nodes[1]).toBeCloseTo(0, 14);
    expect(g3.weights[0]).toBeCloseTo(5 / 9, 14);
    expect(g3.weights[1]).toBeCloseTo(8 / 9, 14);
    const g50 = gaussLegendre(50);
    expect(g50.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(2, 12);
    // exact for polynomials of degree ≤ 99: ∫_{-1}^{1} t^98 = 2/99
    expect(g50.nodes.reduce((s, t, i) => s + g50.weights[i] * t ** 98, 0)).toBeCloseTo(2 / 99, 12);
  });
  it('Riemann rules use step 1/n; trapezoid halves the ends (Σ = (n−1)/n)', () => {
    const t = integrationPoints('riemann-trapezoid', 50);
    expect(t.alphas[0]).toBe(0);
    expect(t.alphas[49]).toBe(1);
    expect(t.weights[0]).toBeCloseTo(0.01, 15);
    expect(t.weights[1]).toBeCloseTo(0.02, 15);
    expect(t.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(49 / 50, 14);
    expect(integrationPoints('riemann-left', 4).alphas).toEqual([0, 0.25, 0.5, 0.75]);
    expect(integrationPoints('riemann-right', 4).alphas).toEqual([0.25, 0.5, 0.75, 1]);
    expect(integrationPoints('riemann-middle', 4).alphas.map((a) => +a.toFixed(10))).toEqual([0.125, 0.375, 0.625, 0.875]);
  });
});

describe('gradient family on a linear model (hand-computed)', () => {
  it('saliency, sensitivity, IG rules equal closed forms', async () => {
    const { clf, W, b } = linearClassifier(4, 4, 2, 3);
    const x = tf.randomUniform([2, 4, 4, 2], 0, 1, 'float32', 7) as tf.Tensor4D;
    const targets = [2, 0];
    const Wd = await arr(W);
    const col = (t: number) => Float32Array.from({ length: 32 }, (_, i) => Wd[i * 3 + t]);
    const xs = await arr(x);
    const sal = await explain('saliency', clf, x, { target: targets, options: { channels: 'keep' } });
    const sen = await explain('sensitivity', clf, x, { target: targets });
    const salMax = await explain('saliency', clf, x, { target: targets });
    const sa = await arr(sal.attribution);
    const se = await arr(sen.attribution);
    const sm = await arr(salMax.attribution);
    for (let i = 0; i < 2; i++) {
      const g = col(targets[i]);
      for (let j = 0; j < 32; j++) {
        expect(sa[i * 32 + j]).toBeCloseTo(Math.abs(g[j]), 5);
        expect(se[i * 32 + j]).toBeCloseTo(g[j] ** 2, 5);
        const pix = j - (j % 2);
        expect(sm[i * 32 + j]).toBeCloseTo(Math.max(Math.abs(g[pix]), Math.abs(g[pix + 1])), 5);
      }
    }
    for (const [rule, scale] of [['gauss-legendre', 1], ['riemann-trapezoid', 49 / 50], ['riemann-left', 1], ['riemann-middle', 1], ['riemann-right', 1]] as const) {
      const e = await explain('integrated-gradients', clf, x, { target: targets, options: { rule, steps: 50, baseline: 'constant', baselineValue: 0.25 } });
      const a = await arr(e.attribution);
      for (let i = 0; i < 2; i++) {
        const g = col(targets[i]);
        for (let j = 0; j < 32; j++) expect(a[i * 32 + j]).toBeCloseTo(scale * (xs[i * 32 + j] - 0.25) * g[j], 5);
      }
      const ce = e.extras.completenessError as number[];
      const sd = e.extras.scoreDifference as number[];
      for (let i = 0; i < 2; i++) expect(Math.abs(ce[i] - (scale - 1) * sd[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(sd[i])));
      e.dispose();
    }
    [sal, sen, salMax].forEach((e) => e.dispose());
    tf.dispose([x, W, b]);
  });
});

describe('integrated gradients', () => {
  it('completeness within 1e-3 relative with Gauss–Legendre at 50 steps, for every baseline kind', async () => {
    const model = smoothCnn();
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([3, 10, 10, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
    const tensorBase = tf.randomUniform([10, 10, 1], 0, 1, 'float32', 12);
    for (const baseline of ['zeros', 'constant', 'blurred', tensorBase] as const) {
      const e = await explain('integrated-gradients', clf, x, { target: [0, 1, 3], options: { baseline, baselineValue: 0.5, blurSigma: 2, steps: 50, rule: 'gauss-legendre' } });
      const ce = e.extras.completenessError as number[];
      const sd = e.extras.scoreDifference as number[];
      for (let i = 0; i < 3; i++) {
        expect(Math.abs(sd[i])).toBeGreaterThan(1e-2);
        expect(Math.abs(ce[i]) / Math.abs(sd[i])).toBeLessThan(1e-3);
      }
      e.dispose();
    }
    tf.dispose([x, tensorBase]);
    model.dispose();
  });
  it('internalBatchSize does not change the result', async () => {
    const model = smoothCnn(9);
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([3, 10, 10, 1], 0, 1, 'float32', 13) as tf.Tensor4D;
    const a = await explain('integrated-gradients', clf, x, { options: { steps: 20, internalBatchSize: 7 } });
    const b = await explain('integrated-gradients', clf, x, { options: { steps: 20, internalBatchSize: 200 } });
    expect(maxRelDiff(await arr(a.attribution), await arr(b.attribution))).toBeLessThan(1e-5);
    a.dispose();
    b.dispose();
    x.dispose();
    model.dispose();
  });
  it('rejects a baseline of the wrong shape and an unknown rule', async () => {
    const model = smoothCnn();
    const clf = Classifier.fromModel(model);
    const x = tf.zeros([1, 10, 10, 1]) as tf.Tensor4D;
    const bad = tf.zeros([5, 5, 1]);
    await expect(explain('integrated-gradients', clf, x, { options: { baseline: bad } })).rejects.toThrow(/baseline tensor of shape/);
    await expect(explain('integrated-gradients', clf, x, { options: { rule: 'simpson' } })).rejects.toThrow(/rule/);
    tf.dispose([x, bad]);
    model.dispose();
  });
});

describe('smoothgrad', () => {
  it('with zero noise equals its base method (gradient, guided-backprop, integrated-gradients)', async () => {
    const model = reluCnn();
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 21) as tf.Tensor4D;
    for (const [method, methodOptions] of [['gradient', {}], ['guided-backprop', {}], ['integrated-gradients', { steps: 8 }]] as const) {
      const base = await explain(method, clf, x, { target: [1, 3], options: methodOptions });
      const sg = await explain('smoothgrad', clf, x, { target: [1, 3], options: { method, methodOptions, noiseLevel: 0, samples: 3 } });
      expect(maxRelDiff(await arr(sg.attribution), await arr(base.attribution))).toBeLessThan(1e-5);
      const vg = await explain('smoothgrad', clf, x, { target: [1, 3], options: { method, methodOptions, noiseLevel: 0, samples: 3, variant: 'vargrad' } });
      expect(Math.max(...(await arr(vg.attribution)))).toBeLessThan(1e-6);
      const sq = await explain('smoothgrad', clf, x, { target: [1, 3], options: { method, methodOptions, noiseLevel: 0, samples: 2, variant: 'squared' } });
      const b2 = (await arr(base.attribution)).map((v) => v * v);
      expect(maxRelDiff(await arr(sq.attribution), b2)).toBeLessThan(1e-5);
      [base, sg, vg, sq].forEach((e) => e.dispose());
    }
    x.dispose();
    model.dispose();
  });
  it('is seeded: same seed same map, another seed another map; noise scales with the input range', async () => {
    const model = reluCnn();
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 22) as tf.Tensor4D;
    const a = await explain('smoothgrad', clf, x, { options: { samples: 5, seed: 1 } });
    const b = await explain('smoothgrad', clf, x, { options: { samples: 5, seed: 1 } });
    const c = await explain('smoothgrad', clf, x, { options: { samples: 5, seed: 2 } });
    expect(maxRelDiff(await arr(a.attribution), await arr(b.attribution))).toBe(0);
    expect(maxRelDiff(await arr(c.attribution), await arr(a.attribution))).toBeGreaterThan(1e-3);
    expect(a.extras.sigma).toBeCloseTo(0.15, 10);
    [a, b, c].forEach((e) => e.dispose());
    await expect(explain('smoothgrad', clf, x, { options: { method: 'occlusion' } })).rejects.toThrow(/gradient-type/);
    x.dispose();
    model.dispose();
  });
});

describe('guided backprop and deconvnet', () => {
  it('modify only the ReLU backward, for this call only', async () => {
    const model = reluCnn(31);
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 32) as tf.Tensor4D;
    const g1 = await explain('gradient', clf, x, { target: [0, 2] });
    const gb = await explain('guided-backprop', clf, x, { target: [0, 2] });
    const dc = await explain('deconvnet', clf, x, { target: [0, 2] });
    const g2 = await explain('gradient', clf, x, { target: [0, 2] });
    const [a1, ab, ad, a2] = await Promise.all([g1, gb, dc, g2].map((e) => arr(e.attribution)));
    expect(maxRelDiff(a2, a1)).toBe(0); // plain gradient right after is unchanged
    expect(maxRelDiff(ab, a1)).toBeGreaterThan(1e-3);
    expect(maxRelDiff(ad, ab)).toBeGreaterThan(1e-3);
    // Hand check of the guided rule through the last ReLU: with a model whose only ReLU precedes a
    // linear read-out, guided = relu(w_c) · 1[z>0] · ∂z/∂x, i.e. equal to the gradient of the
    // model with negative read-out weights zeroed.
    [g1, gb, dc, g2].forEach((e) => e.dispose());
    x.dispose();
    model.dispose();
  });
  it('on a one-ReLU network equal the gradient with negative read-out weights removed', async () => {
    const dense1 = tfl.layers.dense({ inputShape: [12], units: 6, activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed: 41 }), biasInitializer: tfl.initializers.constant({ value: 0.1 }) });
    const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [2, 3, 2] }), dense1, tfl.layers.dense({ units: 2, kernelInitializer: tfl.initializers.glorotNormal({ seed: 42 }) })] });
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([3, 2, 3, 2], -1, 1, 'float32', 43) as tf.Tensor4D;
    const [W1, b1, W2] = model.getWeights();
    const t = 1;
    const gb = await explain('guided-backprop', clf, x, { target: t, skipRangeCheck: true });
    const dc = await explain('deconvnet', clf, x, { target: t, skipRangeCheck: true });
    const W1d = await arr(W1);
    const W2d = await arr(W2);
    const z = await arr(tf.add(tf.matMul(tf.reshape(x, [3, 12]), W1), b1));
    const ga = await arr(gb.attribution);
    const da = await arr(dc.attribution);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 12; j++) {
        let g = 0;
        let d = 0;
        for (let u = 0; u < 6; u++) {
          const w2 = W2d[u * 2 + t];
          if (w2 > 0 && z[i * 6 + u] > 0) g += w2 * W1d[j * 6 + u];
          if (w2 > 0) d += w2 * W1d[j * 6 + u];
        }
        expect(ga[i * 12 + j]).toBeCloseTo(g, 5);
        expect(da[i * 12 + j]).toBeCloseTo(d, 5);
      }
    }
    gb.dispose();
    dc.dispose();
    x.dispose();
    model.dispose();
  });
});

describe('grad-cam', () => {
  it('works on a functional model with a skip connection (hand-computed CAM)', async () => {
    const inp = tfl.input({ shape: [8, 8, 1] });
    const c1 = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1', kernelInitializer: tfl.initializers.glorotNormal({ seed: 51 }) }).apply(inp) as tfl.SymbolicTensor;
    const c2 = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2', kernelInitializer: tfl.initializers.glorotNormal({ seed: 52 }) }).apply(c1) as tfl.SymbolicTensor;
    const add = tfl.layers.add({ name: 'add' }).apply([c1, c2]) as tfl.SymbolicTensor;
    const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(add) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 4, name: 'out', kernelInitializer: tfl.initializers.glorotNormal({ seed: 53 }) }).apply(gap) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: inp, outputs: out });
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 54) as tf.Tensor4D;
    const targets = [1, 3];
    // Default layer: the last conv block's output (the residual add), not the bypassed conv.
    const d = await explain('grad-cam', clf, x, { target: targets });
    expect(d.extras.layer).toBe('add');
    // c2 is bypassed by the skip: the tail is run from c2 with the c1 path held constant.
    const e = await explain('grad-cam', clf, x, { target: targets, options: { layer: 'c2' } });
    expect(e.extras.layer).toBe('c2');
    const Wd = await arr(model.getWeights()[4]);
    const acts = clf.activations(x, ['c2', 'add']);
    for (const [ex, name] of [[e, 'c2'], [d, 'add']] as const) {
      const raw = ex.extras.raw as tf.Tensor4D;
      expect(raw.shape).toEqual([2, 8, 8, 1]);
      // ∂y/∂A = W[:, t] / 64 everywhere for both layers, so cam = relu(Σ_c W[c,t]/64 · A_c).
      const A = await arr(acts.get(name)!);
      const got = await arr(raw);
      for (let i = 0; i < 2; i++) {
        for (let p = 0; p < 64; p++) {
          let s = 0;
          for (let c = 0; c < 3; c++) s += (Wd[c * 4 + targets[i]] / 64) * A[(i * 64 + p) * 3 + c];
          expect(got[i * 64 + p]).toBeCloseTo(Math.max(0, s), 5);
        }
      }
    }
    d.dispose();
    acts.get('add')!.dispose();
    // Same size as the input: upsampling is the identity; relu off keeps negative values.
    const noRelu = await explain('grad-cam', clf, x, { target: targets, options: { relu: false } });
    expect(Math.min(...(await arr(noRelu.attribution)))).toBeLessThanOrEqual(0);
    const gg = await explain('guided-grad-cam', clf, x, { target: targets });
    expect(gg.attribution.shape).toEqual([2, 8, 8, 1]);
    [e, noRelu, gg].forEach((v) => v.dispose());
    acts.get('c2')!.dispose();
    x.dispose();
    model.dispose();
  });
  it('upsamples bilinearly with half-pixel centres and rejects non-spatial layers', async () => {
    const model = reluCnn(61, 3);
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([1, 8, 8, 3], 0, 1, 'float32', 62) as tf.Tensor4D;
    const e = await explain('grad-cam', clf, x, { options: { layer: 'c2' } });
    const raw = await arr(e.extras.raw as tf.Tensor);
    const up = await arr(e.attribution);
    expect(e.attribution.shape).toEqual([1, 8, 8, 3]);
    // 4→8 with half-pixel centres: output (0,0) = raw(0,0); output (1,1) = 0.75²·r00 + 0.75·0.25·(r01 + r10) + 0.25²·r11
    expect(up[0]).toBeCloseTo(raw[0], 6);
    const r = (a: number, b: number) => raw[a * 4 + b];
    expect(up[(1 * 8 + 1) * 3]).toBeCloseTo(0.5625 * r(0, 0) + 0.1875 * (r(0, 1) + r(1, 0)) + 0.0625 * r(1, 1), 5);
    e.dispose();
    await expect(explain('grad-cam', clf, x, { options: { layer: 'dense_Dense1' } })).rejects.toThrow();
    const flatName = clf.layers().find((l) => l.kind === 'flatten')!.name;
    await expect(explain('grad-cam', clf, x, { options: { layer: flatName } })).rejects.toThrow(/spatial output/);
    x.dispose();
    model.dispose();
  });
});
