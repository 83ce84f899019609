import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, explain, InputTransform, UnsupportedLayerError, OptionError } from '../src/index.js';
import '../src/attribution/index.js';
import {
  propagate, compositeByName, weightCacheSize, clearWeightCache, uniformComposite, zPlusRule, alphaBetaRule, epsilonRule, defineComposite, convTranspose, ruleByName, flatRule,
  signedZPlusRule, applyRule, type LinearOp,
} from '../src/attribution/propagation/index.js';

const seedInit = (seed: number) => tfl.initializers.glorotUniform({ seed });
const biasInit = (seed: number) => tfl.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed });

function cnn(opts: { bias: boolean; offset?: number; seed?: number; pool?: 'max' | 'avg' }): tfl.Sequential {
  const s = opts.seed ?? 1;
  const b = opts.bias;
  const layers: tfl.layers.Layer[] = [];
  if (opts.offset !== undefined) layers.push(new InputTransform({ inputShape: [12, 12, 1], offset: opts.offset }));
  const first = { filters: 4, kernelSize: 3, padding: 'same' as const, activation: 'relu' as const, useBias: b, kernelInitializer: seedInit(s), biasInitializer: biasInit(s + 10) };
  layers.push(tfl.layers.conv2d(opts.offset === undefined ? { inputShape: [12, 12, 1], ...first } : first));
  layers.push(opts.pool === 'avg' ? tfl.layers.averagePooling2d({ poolSize: 2 }) : tfl.layers.maxPooling2d({ poolSize: 2 }));
  layers.push(tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', useBias: b, kernelInitializer: seedInit(s + 1), biasInitializer: biasInit(s + 11) }));
  layers.push(tfl.layers.flatten());
  layers.push(tfl.layers.dense({ units: 8, activation: 'relu', useBias: b, kernelInitializer: seedInit(s + 2), biasInitializer: biasInit(s + 12) }));
  layers.push(tfl.layers.dense({ units: 3, useBias: b, kernelInitializer: seedInit(s + 3), biasInitializer: biasInit(s + 13) }));
  return tfl.sequential({ layers });
}

function mlp(bias: boolean, seed = 5): tfl.Sequential {
  return tfl.sequential({ layers: [
    tfl.layers.flatten({ inputShape: [6, 6, 1] }),
    tfl.layers.dense({ units: 10, activation: 'relu', useBias: bias, kernelInitializer: seedInit(seed), biasInitializer: biasInit(seed + 1) }),
    tfl.layers.dense({ units: 7, activation: 'relu', useBias: bias, kernelInitializer: seedInit(seed + 2), biasInitializer: biasInit(seed + 3) }),
    tfl.layers.dense({ units: 4, useBias: bias, kernelInitializer: seedInit(seed + 4), biasInitializer: biasInit(seed + 5) }),
  ] });
}

const images = (n: number, h: number, seed = 3) => tf.randomUniform([n, h, h, 1], 0, 1, 'float32', seed) as tf.Tensor4D;

function relL2(a: Float32Array | number[], b: Float32Array | number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

async function map(method: string, c: Classifier, x: tf.Tensor4D, options: Record<string, unknown> = {}, target: number | 'predicted' = 'predicted') {
  const e = await explain(method, c, x, { options, target });
  const data = (await e.attribution.data()) as Float32Array;
  const extras = e.extras;
  e.dispose();
  return { data, extras };
}

describe('propagation rules', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('LRP-0 equals gradient × input on bias-free ReLU nets (CNN with max pooling, MLP), and conserves Σ R = f(x)', async () => {
    const overlapping = tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [9, 9, 1], filters: 3, kernelSize: 3, activation: 'relu', useBias: false, kernelInitializer: seedInit(41) }),
      tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, useBias: false, kernelInitializer: seedInit(42) }),
    ] });
    for (const c of [Classifier.fromModel(cnn({ bias: false })), Classifier.fromModel(mlp(false)), Classifier.fromModel(overlapping)]) {
      const x = images(3, c.inputShape[0]);
      const lrp0 = await map('lrp', c, x, { rule: 'lrp-0' });
      const gxi = await map('gradient-x-input', c, x);
      expect(relL2(lrp0.data, gxi.data)).toBeLessThan(1e-4);
      for (const err of lrp0.extras.conservationError as number[]) expect(err).toBeLessThan(1e-3);
      x.dispose();
    }
  });

  it('conserves relevance for z+ and ε→0 on bias-free nets, not for ε on a net with biases', async () => {
    const c = Classifier.fromModel(cnn({ bias: false, seed: 7 }));
    const x = images(4, 12, 9);
    for (const opts of [{ rule: 'zplus' }, { rule: 'epsilon', epsilon: 1e-9 }, { composite: 'deep-taylor' }]) {
      const r = await map('lrp', c, x, opts);
      for (const err of r.extras.conservationError as number[]) expect(err, JSON.stringify(opts)).toBeLessThan(1e-3);
    }
    const biased = Classifier.fromModel(cnn({ bias: true, seed: 7 }));
    const rb = await map('lrp', biased, x, { rule: 'epsilon' });
    expect(Math.max(...(rb.extras.conservationError as number[]))).toBeGreaterThan(1e-3); // biases absorb relevance
    x.dispose();
  });

  it('αβ with α=1, β=0 equals z+ (seed 003); αβ(2,1) differs; α−β≠1 is rejected', async () => {
    const c = Classifier.fromModel(cnn({ bias: true, seed: 4 }));
    const x = images(2, 12, 5);
    const zp = await map('lrp', c, x, { rule: 'zplus' });
    const ab10 = await map('lrp', c, x, { rule: 'alpha-beta', alpha: 1, beta: 0 });
    const ab21 = await map('lrp', c, x, { rule: 'alpha-beta', alpha: 2, beta: 1 });
    expect(relL2(ab10.data, zp.data)).toBeLessThan(1e-6);
    expect(relL2(ab21.data, zp.data)).toBeGreaterThan(1e-2);
    await expect(explain('lrp', c, x, { options: { rule: 'alpha-beta', alpha: 3, beta: 1 } })).rejects.toBeInstanceOf(OptionError);
    x.dispose();
  });

  it('ε rule on a one-layer net matches a hand computation, with relevance starting at the logit', async () => {
    // logits = x·W + b for a 2×2 image flattened to 4 inputs, 2 classes
    const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [2, 2, 1] }), tfl.layers.dense({ units: 2 })] });
    const W = [[1, -1], [2, 0.5], [-1, 1], [0.5, 2]];
    const bvec = [0.1, -0.2];
    model.layers[1].setWeights([tf.tensor2d(W), tf.tensor1d(bvec)]);
    const c = Classifier.fromModel(model);
    const xs = [0.2, 0.9, 0.4, 0.7];
    const x = tf.tensor4d(xs, [1, 2, 2, 1]);
    const eps = 0.01;
    const r = await map('lrp', c, x, { rule: 'epsilon', epsilon: eps }, 1);
    const z = xs.reduce((s, v, i) => s + v * W[i][1], bvec[1]);
    const expected = xs.map((v, i) => (v * W[i][1] * z) / (z + eps * Math.sign(z)));
    expect(relL2(r.data, expected)).toBeLessThan(1e-5);
    // z^B with the domain [0, 1]: (x w − l w⁺ − h w⁻) / Σ(…) · z
    const zb = await map('lrp', c, x, { rule: 'zb' }, 1);
    const num = xs.map((v, i) => v * W[i][1] - 0 * Math.max(W[i][1], 0) - 1 * Math.min(W[i][1], 0));
    const den = num.reduce((a, b) => a + b, 0);
    expect(relL2(zb.data, num.map((v) => (v / den) * z))).toBeLessThan(1e-5);
    x.dispose();
  });

  it('z^B takes its bounds from the input transform (offset/scale) and conserves', async () => {
    const model = tfl.sequential({ layers: [
      new InputTransform({ inputShape: [2, 2, 1], offset: -0.5, scale: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2, useBias: false }),
    ] });
    const W = [[1, -1], [2, 0.5], [-1, 1], [0.5, 2]];
    model.layers[2].setWeights([tf.tensor2d(W)]);
    const c = Classifier.fromModel(model);
    const xs = [0.2, 0.9, 0.4, 0.7];
    const x = tf.tensor4d(xs, [1, 2, 2, 1]);
    const t = xs.map((v) => v * 2 - 0.5); // transformed input, bounds [−0.5, 1.5]
    const z = t.reduce((s, v, i) => s + v * W[i][0], 0);
    const num = t.map((v, i) => v * W[i][0] + 0.5 * Math.max(W[i][0], 0) - 1.5 * Math.min(W[i][0], 0));
    const den = num.reduce((a, b) => a + b, 0);
    const r = await map('deep-taylor', c, x, {}, 0);
    expect(relL2(r.data, num.map((v) => (v / den) * z))).toBeLessThan(1e-5);
    expect((r.extras.conservationError as number[])[0]).toBeLessThan(1e-5);
    x.dispose();
  });

  it('max pooling: winner-take-all routes to the first maximum in row-major order; proportional splits by value', async () => {
    // identity-like net: maxpool 2×2 → flatten → dense with weights 1 to a single class
    const model = tfl.sequential({ layers: [
      tfl.layers.maxPooling2d({ inputShape: [2, 4, 1], poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2, useBias: false, kernelInitializer: 'ones' }),
    ] });
    const c = Classifier.fromModel(model);
    const x = tf.tensor4d([0.5, 0.5, 0.2, 0.1, 0.5, 0.1, 0.3, 0.3], [1, 2, 4, 1]);
    const win = await map('lrp', c, x, { rule: 'lrp-0' }, 0);
    // window 1 = [0.5 0.5; 0.5 0.1] (ties: first = top-left), window 2 = [0.2 0.1; 0.3 0.3] (max 0.3, first = bottom-left)
    expect(Array.from(win.data).map((v) => +v.toFixed(5))).toEqual([0.5, 0, 0, 0, 0, 0, 0.3, 0]);
    const prop = await map('lrp', c, x, { rule: 'lrp-0', maxPool: 'proportional' }, 0);
    const w1 = [0.5, 0.5, 0.5, 0.1];
    const w2 = [0.2, 0.1, 0.3, 0.3];
    const s1 = 1.6;
    const s2 = 0.9;
    const expected = [w1[0] / s1 * 0.5, w1[1] / s1 * 0.5, w2[0] / s2 * 0.3, w2[1] / s2 * 0.3, w1[2] / s1 * 0.5, w1[3] / s1 * 0.5, w2[2] / s2 * 0.3, w2[3] / s2 * 0.3];
    expect(relL2(prop.data, expected)).toBeLessThan(1e-5);
    x.dispose();
  });

  it('average pooling, global average pooling and Add split relevance in proportion and conserve on bias-free nets', async () => {
    const input = tfl.input({ shape: [8, 8, 1] });
    const a = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', useBias: false, kernelInitializer: seedInit(21) }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 3, kernelSize: 1, activation: 'relu', useBias: false, kernelInitializer: seedInit(22) }).apply(input) as tfl.SymbolicTensor;
    const s = tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor;
    const p = tfl.layers.averagePooling2d({ poolSize: 2 }).apply(s) as tfl.SymbolicTensor;
    const g = tfl.layers.globalAveragePooling2d({}).apply(p) as tfl.SymbolicTensor;
    // positive output weights: z⁺ needs a positive contribution to redistribute the target logit
    const out = tfl.layers.dense({ units: 2, useBias: false, kernelInitializer: tfl.initializers.randomUniform({ minval: 0.1, maxval: 1, seed: 23 }) }).apply(g) as tfl.SymbolicTensor;
    const c = Classifier.fromModel(tfl.model({ inputs: input, outputs: out }));
    const x = images(2, 8, 4);
    for (const rule of ['lrp-0', 'zplus']) {
      const r = await map('lrp', c, x, { rule });
      for (const err of r.extras.conservationError as number[]) expect(err, rule).toBeLessThan(1e-3);
    }
    x.dispose();
  });

  it('Concatenate, ZeroPadding2D, Reshape, Dropout, GlobalMaxPooling2D and DepthwiseConv2D move relevance exactly (LRP-0 = gradient × input, conservation)', async () => {
    const input = tfl.input({ shape: [8, 8, 2] });
    const p0 = tfl.layers.zeroPadding2d({ padding: 1 }).apply(input) as tfl.SymbolicTensor;
    const a = tfl.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu', useBias: false, kernelInitializer: seedInit(61) }).apply(p0) as tfl.SymbolicTensor;
    const b = tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu', useBias: false, depthwiseInitializer: seedInit(62) }).apply(input) as tfl.SymbolicTensor;
    const cat = tfl.layers.concatenate().apply([a, b]) as tfl.SymbolicTensor;
    const d = tfl.layers.dropout({ rate: 0.5 }).apply(cat) as tfl.SymbolicTensor;
    const r = tfl.layers.reshape({ targetShape: [8, 8, 7] }).apply(d) as tfl.SymbolicTensor;
    const g = tfl.layers.globalMaxPooling2d({}).apply(r) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, useBias: false, kernelInitializer: tfl.initializers.randomUniform({ minval: 0.1, maxval: 1, seed: 63 }) }).apply(g) as tfl.SymbolicTensor;
    const c = Classifier.fromModel(tfl.model({ inputs: input, outputs: out }));
    const x = tf.randomUniform([2, 8, 8, 2], 0, 1, 'float32', 64) as tf.Tensor4D;
    const l0 = await map('lrp', c, x, { rule: 'lrp-0' });
    // the plain gradient of a depthwise conv needs a kernel stock wasm lacks (Glasswing's wasm kernels add it)
    if (tf.getKernel('DepthwiseConv2dNativeBackpropInput', tf.getBackend())) {
      const gxi = await map('gradient-x-input', c, x);
      expect(relL2(l0.data, gxi.data)).toBeLessThan(1e-4);
    }
    for (const rule of ['lrp-0', 'zplus']) {
      const m = await map('lrp', c, x, { rule });
      for (const err of m.extras.conservationError as number[]) expect(err, rule).toBeLessThan(1e-3);
    }
    x.dispose();
  });

  it('the conv transpose (forward-conv formulation) matches tf.conv2dTranspose for strides, padding and odd sizes', () => {
    const cases: Array<[number[], number[], [number, number], 'same' | 'valid']> = [
      [[2, 7, 7, 3], [3, 3, 3, 4], [1, 1], 'same'],
      [[1, 7, 6, 2], [3, 3, 2, 5], [2, 2], 'same'],
      [[1, 8, 8, 2], [5, 5, 2, 3], [2, 2], 'same'],
      [[1, 9, 8, 2], [3, 2, 2, 3], [2, 3], 'valid'],
      [[1, 6, 6, 1], [2, 2, 1, 1], [2, 2], 'valid'],
    ];
    for (const [xs, ws, st, pad] of cases) {
      const err = tf.tidy(() => {
        const x = tf.randomNormal(xs, 0, 1, 'float32', 1) as tf.Tensor4D;
        const w = tf.randomNormal(ws, 0, 1, 'float32', 2) as tf.Tensor4D;
        const y = tf.conv2d(x, w, st, pad);
        const g = tf.randomNormal(y.shape, 0, 1, 'float32', 3) as tf.Tensor4D;
        const mine = convTranspose(g, w, xs, st, pad);
        const ref = tf.conv2dTranspose(g, w, xs as [number, number, number, number], st, pad);
        return tf.div(tf.norm(tf.sub(mine, ref)), tf.norm(ref)).dataSync()[0];
      });
      expect(err, JSON.stringify([xs, ws, st, pad])).toBeLessThan(1e-5);
    }
  });

  it('composites assign rules per layer (kind, first layer, name) and report them', async () => {
    const c = Classifier.fromModel(cnn({ bias: true, seed: 2 }));
    const x = images(1, 12, 2);
    const names = c.layers().filter((l) => l.kind === 'conv2d' || l.kind === 'dense').map((l) => l.name);
    const epf = await map('lrp', c, x, { composite: 'epsilon-plus-flat' });
    const rules = epf.extras.rules as Record<string, string>;
    expect(names.map((n) => rules[n])).toEqual(['flat', 'zplus', 'epsilon', 'epsilon']);
    const dt = await map('lrp', c, x, { composite: 'deep-taylor' });
    expect(names.map((n) => (dt.extras.rules as Record<string, string>)[n])).toEqual(['zb', 'zplus', 'zplus', 'zplus']);
    const ab = await map('lrp', c, x, { composite: 'alpha2-beta1', layerRules: { [names[3]]: 'epsilon' } });
    expect(names.map((n) => (ab.extras.rules as Record<string, string>)[n])).toEqual(['zb', 'alpha-beta', 'alpha-beta', 'epsilon']);
    const l0 = await map('lrp', c, x, { composite: 'lrp-0' });
    expect(new Set(Object.values(l0.extras.rules as Record<string, string>))).toEqual(new Set(['lrp-0']));
    // a user composite object: flat everywhere spreads relevance uniformly — never negative
    const user = defineComposite('mine', [{ names: [names[0]], rule: flatRule() }, { kinds: ['conv2d'], rule: zPlusRule() }, { rule: epsilonRule(0.1) }]);
    const u = await map('lrp', c, x, { composite: user });
    expect(names.map((n) => (u.extras.rules as Record<string, string>)[n])).toEqual(['flat', 'zplus', 'epsilon', 'epsilon']);
    // deep-taylor method = deep-taylor composite
    const dtm = await map('deep-taylor', c, x);
    expect(relL2(dtm.data, dt.data)).toBeLessThan(1e-6);
    await expect(explain('lrp', c, x, { options: { composite: 'nope' } })).rejects.toBeInstanceOf(OptionError);
    await expect(explain('lrp', c, x, { options: { rule: 'nope' } })).rejects.toBeInstanceOf(OptionError);
    expect(() => ruleByName('z+')).not.toThrow();
    x.dispose();
  });

  it('flat: the direct path equals the rule declaration (dense, conv with strides/padding/dilation)', async () => {
    const dil = tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [11, 11, 2], filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'relu', kernelInitializer: seedInit(51) }),
      tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', kernelInitializer: seedInit(52) }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, kernelInitializer: seedInit(53) }),
    ] });
    const declared = { ...flatRule(), direct: undefined };
    for (const model of [dil, cnn({ bias: true, seed: 9 }), mlp(true, 9)]) {
      const c = Classifier.fromModel(model);
      const x = tf.randomUniform([2, ...c.inputShape], 0, 1, 'float32', 3) as tf.Tensor4D;
      const a = await map('lrp', c, x, { composite: uniformComposite(flatRule()) });
      const b = await map('lrp', c, x, { composite: uniformComposite(declared) });
      expect(relL2(a.data, b.data)).toBeLessThan(1e-5);
      expect(Math.max(...(a.extras.conservationError as number[]))).toBeLessThan(1e-3); // flat conserves, biases ignored
      x.dispose();
    }
  });

  it('cached modified weights follow weight updates (setWeights) and clearWeightCache', async () => {
    const model = cnn({ bias: true, seed: 14 });
    const c = Classifier.fromModel(model);
    const x = images(1, 12, 2);
    const a = await map('lrp', c, x, { rule: 'alpha-beta' }, 0);
    const conv = model.layers.find((l) => l.getClassName() === 'Conv2D')!;
    const [k, b] = conv.getWeights();
    conv.setWeights([tf.mul(k, -1.5), b]);
    const after = await map('lrp', c, x, { rule: 'alpha-beta' }, 0);
    clearWeightCache();
    expect(weightCacheSize()).toBe(0);
    const fresh = await map('lrp', c, x, { rule: 'alpha-beta' }, 0);
    expect(relL2(after.data, fresh.data)).toBeLessThan(1e-6);
    expect(relL2(after.data, a.data)).toBeGreaterThan(1e-2);
    x.dispose();
  });

  it('γ rule: γ=0 equals LRP-0 (for positive-output layers) and large γ approaches z+', async () => {
    const c = Classifier.fromModel(cnn({ bias: false, seed: 12 }));
    const x = images(2, 12, 8);
    const g0 = await map('lrp', c, x, { rule: 'gamma', gamma: 0 });
    const l0 = await map('lrp', c, x, { rule: 'lrp-0' });
    expect(relL2(g0.data, l0.data)).toBeLessThan(1e-4);
    const gBig = await map('lrp', c, x, { rule: 'gamma', gamma: 1e4 });
    const zp = await map('lrp', c, x, { rule: 'zplus' });
    expect(relL2(gBig.data, zp.data)).toBeLessThan(1e-2);
    x.dispose();
  });

  it('w² and flat rules are independent of the first layer input; deep-taylor accepts firstRule w2', async () => {
    const model = mlp(false, 31);
    const last = model.layers[3];
    last.setWeights([tf.abs(last.getWeights()[0])]); // z⁺ conserves when the target has positive contributions
    const c = Classifier.fromModel(model);
    const x = images(1, 6, 1);
    const a = await map('lrp', c, x, { composite: defineComposite('w2-first', [{ first: true, rule: ruleByName('w2') }, { rule: zPlusRule() }]) }, 0);
    const b = await map('deep-taylor', c, x, { firstRule: 'w2' }, 0);
    expect(relL2(a.data, b.data)).toBeLessThan(1e-5);
    for (const err of b.extras.conservationError as number[]) expect(err).toBeLessThan(1e-3);
    x.dispose();
  });

  it('unsupported nodes fail with UnsupportedLayerError naming the node; plain-function classifiers are refused', async () => {
    const model = tfl.sequential({ layers: [
      tfl.layers.flatten({ inputShape: [4, 4, 1] }),
      tfl.layers.dense({ units: 5, activation: 'softmax', name: 'middle_softmax' }),
      tfl.layers.dense({ units: 2 }),
    ] });
    const c = Classifier.fromModel(model);
    const x = images(1, 4);
    await expect(explain('lrp', c, x)).rejects.toThrow(UnsupportedLayerError);
    await expect(explain('lrp', c, x)).rejects.toThrow(/middle_softmax/);
    const f = Classifier.fromFunction((v) => tf.reshape(v, [v.shape[0], 16]) as tf.Tensor2D, { inputShape: [4, 4, 1], numClasses: 16 });
    await expect(explain('lrp', f, x)).rejects.toThrow(/layered model/);
    expect(() => propagate(f, x, [0], { composite: compositeByName('epsilon') })).toThrow(UnsupportedLayerError);
    x.dispose();
  });

  it('is scoped to the call: the plain gradient after lrp is unchanged, and no tensors leak (lrp, deep-taylor)', async () => {
    const c = Classifier.fromModel(cnn({ bias: true, seed: 3, offset: -0.5 }));
    const x = images(2, 12, 6);
    const before = await map('gradient', c, x);
    await map('lrp', c, x, { composite: 'epsilon-plus-flat' });
    await map('deep-taylor', c, x);
    const after = await map('gradient', c, x);
    expect(relL2(after.data, before.data)).toBe(0);
    const n0 = tf.memory().numTensors - weightCacheSize(); // cached derived weights are owned by the cache
    for (let i = 0; i < 3; i++) {
      for (const [m, o] of [['lrp', { composite: 'epsilon-plus-flat' }], ['lrp', { rule: 'gamma' }], ['lrp', { rule: 'alpha-beta', maxPool: 'proportional' }], ['deep-taylor', {}]] as const) {
        const e = await explain(m, c, x, { options: o });
        e.dispose();
      }
      const r = propagate(c, x, [0, 1], { composite: uniformComposite(alphaBetaRule(1, 0)) });
      r.relevance.dispose();
    }
    expect(tf.memory().numTensors - weightCacheSize()).toBe(n0);
    x.dispose();
  });

  it('zplus-signed by hand: z⁺ on the active half of an unrectified unit (positive contributions where z ≥ 0, negative ones where z < 0)', async () => {
    // x = [1, 2, 1]; unit 0: contributions [1, −6, −1], z = −6 → its relevance follows [−6, −1];
    // unit 1: contributions [2, 2, −1], z = 3 → follows [2, 2]. Logit = z0 + z1 = −3, so R = [−6, 3].
    const input = tfl.input({ shape: [1, 1, 3] });
    const lin = tfl.layers.dense({ units: 2, useBias: false, name: 'lin' }).apply(input) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, useBias: false, name: 'out' }).apply(tfl.layers.flatten().apply(lin) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    const w = [tf.tensor2d([[1, 2], [-3, 1], [-1, -1]]), tf.tensor2d([[1, 0], [1, 0]])];
    model.getLayer('lin').setWeights([w[0]]);
    model.getLayer('out').setWeights([w[1]]);
    const c = Classifier.fromModel(model);
    const x = tf.tensor4d([[[[1, 2, 1]]]]);
    const run = async (rule: string) => {
      const e = await explain('lrp', c, x, { target: [0], skipRangeCheck: true, options: { composite: 'epsilon', layerRules: { lin: rule } } });
      const v = Array.from(await e.attribution.data());
      e.dispose();
      return v;
    };
    const signed = await run('zplus-signed');
    const want = [1.5, (-6 * 6) / 7 + 1.5, -6 / 7];
    signed.forEach((v, i) => expect(v).toBeCloseTo(want[i], 4));
    // plain z⁺ sends unit 0's relevance to its only positive contribution (x0)
    const plain = await run('zplus');
    [-6 + 1.5, 1.5, 0].forEach((v, i) => expect(plain[i]).toBeCloseTo(v, 4));
    tf.dispose([x, ...w]);
    model.dispose();
    // the negative half derived from the layer's output equals the one computed by its own product
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const W = tf.randomNormal([6, 5], 0, 1, 'float32', 1);
      const B = tf.randomNormal([5], 0, 1, 'float32', 2);
      const op: LinearOp = {
        kind: 'dense', kernel: () => W, bias: () => B,
        forward: (v, k, bb) => (bb ? tf.add(tf.matMul(v as tf.Tensor2D, k as tf.Tensor2D), bb) : tf.matMul(v as tf.Tensor2D, k as tf.Tensor2D)),
        transpose: (g, k) => tf.matMul(g as tf.Tensor2D, k as tf.Tensor2D, false, true),
      };
      const xv = tf.randomNormal([3, 6], 0, 1, 'float32', 3);
      const R = tf.randomNormal([3, 5], 0, 1, 'float32', 4);
      const y = op.forward(xv, W, B);
      for (const bias of [true, false]) {
        const rule = signedZPlusRule({ bias });
        const ctx = { node: 'd', nonNegativeInput: false };
        const derived = applyRule(rule, op, xv, R, ctx, y).dataSync();
        const computed = applyRule(rule, op, xv, R, ctx).dataSync();
        derived.forEach((v, i) => expect(v).toBeCloseTo(computed[i], 4));
        // conservation per unit: every unit's relevance is placed (bias false), up to the stabiliser
        if (!bias) expect(Array.from(derived).reduce((a, v) => a + v, 0)).toBeCloseTo(Array.from(R.dataSync()).reduce((a, v) => a + v, 0), 3);
      }
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it("explicitPadding 'implicit': a ZeroPadding2D + 'valid' conv gives the map of the same conv with 'same' padding (flat, z^B); 'input' loses the border's share", async () => {
    const build = (explicit: boolean) => {
      const input = tfl.input({ shape: [6, 6, 1] });
      const k = { filters: 3, kernelSize: 3, activation: 'relu' as const, useBias: false, kernelInitializer: seedInit(41), name: 'conv' };
      const y = explicit
        ? tfl.layers.conv2d({ ...k, padding: 'valid' }).apply(tfl.layers.zeroPadding2d({ padding: 1 }).apply(input) as tfl.SymbolicTensor)
        : tfl.layers.conv2d({ ...k, padding: 'same' }).apply(input);
      const f = tfl.layers.flatten().apply(y as tfl.SymbolicTensor) as tfl.SymbolicTensor;
      return tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 2, useBias: false, kernelInitializer: seedInit(42) }).apply(f) as tfl.SymbolicTensor });
    };
    const padded = Classifier.fromModel(build(true));
    const same = Classifier.fromModel(build(false));
    const x = images(2, 6, 7);
    for (const [method, options] of [['lrp', { composite: 'epsilon-plus-flat' }], ['deep-taylor', {}]] as const) {
      const a = await map(method, padded, x, { ...options, explicitPadding: 'implicit' });
      const b = await map(method, same, x, options);
      expect(relL2(a.data, b.data), method).toBeLessThan(1e-5);
      const e = await explain(method, padded, x, { target: [0, 1], options: { ...options, explicitPadding: 'input' } });
      const err = e.extras.conservationError as number[];
      e.dispose();
      expect(Math.max(...err), method).toBeGreaterThan(1e-2);
      const ok = await explain(method, padded, x, { target: [0, 1], options });
      for (const v of ok.extras.conservationError as number[]) expect(v, method).toBeLessThan(1e-4);
      ok.dispose();
    }
    await expect(explain('lrp', padded, x, { options: { explicitPadding: 'border' } })).rejects.toThrow(OptionError);
    await expect(explain('lrp', padded, x, { options: { unrectified: 'zplus' } })).rejects.toThrow(OptionError);
    x.dispose();
    padded.model!.dispose();
    same.model!.dispose();
  });
});
