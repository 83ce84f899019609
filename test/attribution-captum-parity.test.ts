import { describe, it, expect, beforeAll } from 'vitest';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';
import { scoreCamMasks } from '../src/attribution/score-cam.js';
import { firstComponentProjection } from '../src/attribution/eigen-cam.js';
import { initBackend, currentBackend, Classifier, explain, OptionError, MemoryBudgetError, footprint } from '../src/index.js';
import { runConformance, readBundle, loadFixtureClassifier, loadFixtureModelDir, type ConformanceResult } from '../src/conformance/index.js';

const ROOT = path.resolve(__dirname, 'fixtures', 'conformance');

/**
 * Documented float32 kink (FORMAT.md §4.1): gradient_shap_fixed on mnist_cnn, image 1, sample 19 —
 * a pool2 window whose two largest values differ by 7e-8 in float64 (3e-8 here, one float32 ulp),
 * which float32 rounding swaps (the reference's own float32 rerun is 4.1e-3 off). Only that image may
 * exceed the tolerance, by less than 2e-2; cpu and wasm agree on it (8.8e-3).
 */
const KNOWN_FLIPS: Record<string, Record<string, number[]>> = { mnist_cnn: { gradient_shap_fixed: [1] } };

function table(r: ConformanceResult, fixture: string): string {
  return `${fixture} (${currentBackend()}):\n` + r.rows.map((row) => `  ${row.method.padEnd(34)} ${row.error.toExponential(2)} ≤ ${row.tolerance.toExponential(1)} ${row.pass ? 'pass' : 'FAIL'} ${row.ms.toFixed(0)} ms`).join('\n');
}

let cnn: Classifier;
let mobilenet: Classifier;
let digits: tf.Tensor4D;
let digitBaselines: tf.Tensor4D;
let photos: tf.Tensor4D;

beforeAll(async () => {
  await initBackend();
  cnn = loadFixtureClassifier(path.join(ROOT, 'mnist_cnn', 'weights'), 'mnist_cnn');
  mobilenet = Classifier.fromModel(await loadFixtureModelDir(path.join(ROOT, 'mobilenet_small', 'model')), { name: 'mobilenet_small' });
  const inp = readBundle(path.join(ROOT, 'mnist_cnn', 'input'));
  digits = inp.tensor('input') as tf.Tensor4D;
  digitBaselines = inp.tensor('baselines') as tf.Tensor4D;
  photos = readBundle(path.join(ROOT, 'mobilenet_small', 'input')).tensor('input') as tf.Tensor4D;
});

/** Largest |Σ attr − (f(x) − f(b))| / |f(x) − f(b)| over the images of an explanation. */
function relativeCompleteness(e: { extras: Record<string, unknown> }): number {
  const err = e.extras.completenessError as number[];
  const diff = e.extras.scoreDifference as number[];
  return Math.max(...err.map((v, i) => Math.abs(v) / Math.max(Math.abs(diff[i]), 1e-6)));
}

describe('Captum parity: conformance of the new methods', () => {
  for (const [fixture, only] of [
    ['mnist_cnn', ['deeplift', 'deeplift_delta', 'deeplift_shap', 'gradient_shap_fixed', 'feature_ablation', 'shapley_values', 'layer_integrated_gradients_conv1', 'layer_conductance_conv2']],
    ['mnist_mlp', ['deeplift', 'deeplift_delta', 'deeplift_shap', 'gradient_shap_fixed', 'feature_ablation', 'shapley_values']],
    ['resnet_small', ['deeplift', 'deeplift_delta']],
    ['inception_small', ['deeplift', 'deeplift_delta']],
  ] as const) {
    it(`${fixture}: ${only.join(', ')} within tolerance per image`, async () => {
      const r = await runConformance(path.join(ROOT, fixture), { only: [...only] });
      console.log(table(r, fixture));
      expect(r.rows.map((x) => x.method).sort()).toEqual([...only].sort());
      for (const row of r.rows) {
        const known = KNOWN_FLIPS[fixture]?.[row.method] ?? [];
        row.perImage.forEach((v, i) => {
          if (known.includes(i)) expect(v, `${row.method} image ${i}`).toBeLessThan(2e-2);
          else expect(v, `${row.method} image ${i}`).toBeLessThanOrEqual(row.tolerance);
        });
      }
    });
  }
});

describe('deeplift', () => {
  it('summation-to-delta: Σ attr = f(x) − f(b) with the max-pool rule, for zero, constant, blurred and tensor baselines; Captum 0.8 as it runs breaks it', async () => {
    for (const [baseline, extra] of [['zeros', {}], ['constant', { baselineValue: 0.3 }], ['blurred', { blurSigma: 2 }]] as const) {
      const e = await explain('deeplift', cnn, digits, { options: { baseline, ...extra } });
      expect(relativeCompleteness(e), baseline).toBeLessThan(2e-4);
      e.dispose();
    }
    const b = tf.slice(digitBaselines, 0, 4);
    const t = await explain('deeplift', cnn, digits, { options: { baseline: b } });
    expect(relativeCompleteness(t)).toBeLessThan(2e-4);
    t.dispose();
    // Captum 0.8's max-pool bypass after a ReLU: the map changes and the sum is off (FORMAT.md §4)
    const c = await explain('deeplift', cnn, digits, { options: { baseline: b, maxPoolRule: 'captum' } });
    expect(relativeCompleteness(c)).toBeGreaterThan(1e-3);
    c.dispose();
    b.dispose();
  });
  it('reveal-cancel: summation-to-delta holds (conv, dense, BN-folded ReLU6), it differs from Rescale, and equals it on a one-layer linear-ReLU model where positive and negative parts never mix', async () => {
    for (const [clf, x, opts] of [[cnn, digits, { baseline: 'blurred', blurSigma: 2 }], [mobilenet, photos, { baseline: 'blurred', blurSigma: 3 }]] as const) {
      const rc = await explain('deeplift', clf, x, { options: { ...opts, rule: 'reveal-cancel' } });
      const rs = await explain('deeplift', clf, x, { options: opts });
      expect(relativeCompleteness(rc)).toBeLessThan(1e-3);
      const rel = tf.tidy(() => tf.div(tf.norm(tf.sub(rc.attribution, rs.attribution)), tf.norm(rs.attribution)).dataSync()[0]);
      expect(rel).toBeGreaterThan(1e-3);
      rc.dispose();
      rs.dispose();
    }
    // one input pixel per unit (a 1×1 conv on one channel): Δz has a single contribution, Δz⁻ or Δz⁺ is 0, and
    // Reveal-Cancel's multiplier is Rescale's
    const model = tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [4, 4, 1], filters: 3, kernelSize: 1, activation: 'relu', name: 'c', kernelInitializer: tfl.initializers.randomNormal({ seed: 3 }), biasInitializer: tfl.initializers.randomNormal({ seed: 4 }) }),
      tfl.layers.flatten({}),
      tfl.layers.dense({ units: 2, kernelInitializer: tfl.initializers.randomNormal({ seed: 5 }) }),
    ] });
    const one = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 4, 4, 1], 0, 1, 'float32', 6) as tf.Tensor4D;
    const a = await explain('deeplift', one, x, { options: { rule: 'reveal-cancel', baseline: 'constant', baselineValue: 0.5 } });
    const b = await explain('deeplift', one, x, { options: { baseline: 'constant', baselineValue: 0.5 } });
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a.attribution, b.attribution))).dataSync()[0])).toBeLessThan(1e-6);
    [a, b].forEach((e) => e.dispose());
    x.dispose();
    model.dispose();
  });
  it('ReLU6 (MobileNetV2-style) is rescaled: summation-to-delta holds; with the plain ReLU6 gradient it would not', async () => {
    const e = await explain('deeplift', mobilenet, photos, { options: { baseline: 'blurred', blurSigma: 3 } });
    expect(relativeCompleteness(e)).toBeLessThan(1e-3);
    const g = await explain('gradient-x-input', mobilenet, photos);
    const sumT = tf.sum(g.attribution, [1, 2, 3]);
    const sums = sumT.arraySync() as number[];
    sumT.dispose();
    const diffs = e.extras.scoreDifference as number[];
    // x·∇f is not conservative on this net (the check above is not vacuous)
    expect(Math.max(...sums.map((v, i) => Math.abs(v - diffs[i]) / Math.abs(diffs[i])))).toBeGreaterThan(1e-2);
    e.dispose();
    g.dispose();
  });
  it('leaves no tensors behind and is batch-independent (batch 1 = batch N)', async () => {
    (await explain('deeplift', cnn, digits, { options: { baseline: 'blurred', blurSigma: 2 } })).dispose(); // warm-up (footprint, caches)
    const before = tf.memory().numTensors;
    const all = await explain('deeplift', cnn, digits, { options: { baseline: 'blurred', blurSigma: 2 } });
    const x2 = tf.slice(digits, 2, 1);
    const one = await explain('deeplift', cnn, x2, { options: { baseline: 'blurred', blurSigma: 2, batchSize: 1 } });
    const a = tf.slice(all.attribution, 2, 1);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, one.attribution))).arraySync() as number);
    expect(diff).toBeLessThan(1e-6);
    tf.dispose([a, x2]);
    all.dispose();
    one.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** Per-image feature values of a painted map (pixel values of the first pixel of each feature). */
function featureValues(map: tf.Tensor4D, labels: Int32Array, count: number, image: number): number[] {
  const [, h, w, c] = map.shape;
  const data = map.dataSync();
  const out = new Array(count).fill(NaN);
  for (let p = 0; p < h * w; p++) if (Number.isNaN(out[labels[p]])) out[labels[p]] = data[image * h * w * c + p * c];
  return out;
}

describe('shapley and ablation', () => {
  it('shapley-exact: efficiency, and symmetry on a mirror-symmetric model and image (not on an asymmetric image)', async () => {
    const mirror = Classifier.fromFunction((v) => tf.tidy(() => tf.add(cnn.logits(v), cnn.logits(tf.reverse(v, 2)))), { inputShape: [28, 28, 1], numClasses: 10 });
    const sym = tf.tidy(() => tf.div(tf.add(digits, tf.reverse(digits, 2)), 2) as tf.Tensor4D);
    const e = await explain('shapley-exact', mirror, sym, { options: { featureMask: 'grid', gridSize: [2, 2] } });
    const err = e.extras.completenessError as number[];
    const diff = e.extras.scoreDifference as number[];
    err.forEach((v, i) => expect(Math.abs(v)).toBeLessThan(1e-9 + 1e-12 * Math.abs(diff[i])));
    const labels = new Int32Array(28 * 28).map((_, p) => (Math.floor(p / 28) < 14 ? 0 : 2) + ((p % 28) < 14 ? 0 : 1));
    for (let i = 0; i < 4; i++) {
      const [tl, tr, bl, br] = featureValues(e.attribution, labels, 4, i);
      const scale = Math.abs(tl) + Math.abs(bl) + 1e-6;
      expect(Math.abs(tl - tr) / scale).toBeLessThan(1e-4);
      expect(Math.abs(bl - br) / scale).toBeLessThan(1e-4);
    }
    const a = await explain('shapley-exact', mirror, digits, { options: { featureMask: 'grid', gridSize: [2, 2] } });
    const asym = [0, 1, 2, 3].map((i) => { const [tl, tr] = featureValues(a.attribution, labels, 4, i); return Math.abs(tl - tr) / (Math.abs(tl) + 1e-6); });
    expect(Math.max(...asym)).toBeGreaterThan(1e-2);
    tf.dispose([sym]);
    e.dispose();
    a.dispose();
  });
  it('kernel-shap and shapley-sampling converge to the exact Shapley values as samples grow (6 features)', async () => {
    const opts = { featureMask: 'grid', gridSize: [2, 3] };
    const two = tf.slice(digits, 1, 2);
    const exact = await explain('shapley-exact', cnn, two, { options: opts });
    const relErr = async (method: string, samples: number) => {
      const e = await explain(method, cnn, two, { options: { ...opts, samples, seed: 3 } });
      const r = tf.tidy(() => tf.div(tf.norm(tf.sub(e.attribution, exact.attribution)), tf.norm(exact.attribution)).dataSync()[0]);
      e.dispose();
      return r;
    };
    const k = [await relErr('kernel-shap', 8), await relErr('kernel-shap', 100), await relErr('kernel-shap', 2000)];
    console.log('kernel-shap rel. error at 8 / 100 / 2000 coalitions:', k.map((v) => v.toExponential(2)).join(' / '));
    expect(k[0]).toBeGreaterThan(k[2]);
    expect(k[1]).toBeGreaterThan(k[2]);
    expect(k[2]).toBeLessThan(4e-2);
    const s = [await relErr('shapley-sampling', 2), await relErr('shapley-sampling', 200)];
    console.log('shapley-sampling rel. error at 2 / 200 orderings:', s.map((v) => v.toExponential(2)).join(' / '));
    expect(s[1]).toBeLessThan(s[0]);
    expect(s[1]).toBeLessThan(8e-2);
    exact.dispose();
    two.dispose();
  });
  it('feature-ablation over non-overlapping patches equals occlusion with window = stride = patch; feature-permutation is seeded and works on one image', async () => {
    const fa = await explain('feature-ablation', cnn, digits, { options: { featureMask: 'patches', patchSize: 4 } });
    const oc = await explain('occlusion', cnn, digits, { options: { window: 4, stride: 4, baseline: 0 } });
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(fa.attribution, oc.attribution))).dataSync()[0]);
    expect(d).toBeLessThan(1e-6);
    // the same patches given as a label map (any ids) [H,W]
    const labels = tf.tensor2d(Array.from({ length: 784 }, (_, p) => 100 + Math.floor(Math.floor(p / 28) / 4) * 7 + Math.floor((p % 28) / 4)), [28, 28], 'int32');
    const given = await explain('feature-ablation', cnn, digits, { options: { featureMask: labels } });
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(given.attribution, fa.attribution))).dataSync()[0])).toBeLessThan(1e-6);
    expect(given.extras.featureCount).toEqual([49, 49, 49, 49]);
    given.dispose();
    labels.dispose();
    fa.dispose();
    oc.dispose();
    const p1 = await explain('feature-permutation', cnn, digits, { options: { seed: 5 } });
    const p2 = await explain('feature-permutation', cnn, digits, { options: { seed: 5 } });
    const p3 = await explain('feature-permutation', cnn, digits, { options: { seed: 6 } });
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(p1.attribution, p2.attribution))).dataSync()[0])).toBe(0);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(p1.attribution, p3.attribution))).dataSync()[0])).toBeGreaterThan(0);
    [p1, p2, p3].forEach((e) => e.dispose());
    // one image: each feature's pixels shuffled among themselves (a batch permutation would be the identity)
    const one = tf.slice(digits, 0, 1);
    const s1 = await explain('feature-permutation', cnn, one, { options: { seed: 5 } });
    const s2 = await explain('feature-permutation', cnn, one, { options: { seed: 5 } });
    expect(tf.tidy(() => tf.max(tf.abs(s1.attribution)).dataSync()[0])).toBeGreaterThan(0);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(s1.attribution, s2.attribution))).dataSync()[0])).toBe(0);
    [s1, s2].forEach((e) => e.dispose());
    one.dispose();
  });
});

describe('layer and neuron methods', () => {
  it('results keep the layer layout; LIG is complete in activation space; neuron methods at the logit layer equal the input gradient / IG of that class', async () => {
    const lig = await explain('layer-integrated-gradients', cnn, digits, { options: { layer: 'conv2', steps: 16 } });
    expect(lig.attribution.shape).toEqual([4, 14, 14, 64]);
    const diff = await explain('layer-integrated-gradients', cnn, digits, { options: { layer: 'conv2', steps: 2, rule: 'riemann-left' } });
    (lig.extras.completenessError as number[]).forEach((v) => expect(Math.abs(v)).toBeLessThan(2e-3));
    expect(Math.max(...(diff.extras.completenessError as number[]).map(Math.abs))).toBeGreaterThan(1e-3);
    lig.dispose();
    diff.dispose();
    // without convolutions the default layer is the last hidden activation
    const mlp = loadFixtureClassifier(path.join(ROOT, 'mnist_mlp', 'weights'), 'mnist_mlp');
    const m = await explain('layer-gradient-x-activation', mlp, digits);
    expect(m.extras.layer).toBe('fc2');
    expect(m.attribution.shape).toEqual([4, 1, 1, 128]);
    m.dispose();
    mlp.model?.dispose();
    const cond = await explain('layer-conductance', cnn, digits, { options: { layer: 'fc1', steps: 8 } });
    expect(cond.attribution.shape).toEqual([4, 1, 1, 128]);
    cond.dispose();
    // at the logit layer: A·∂y/∂A = y_target on the target unit, 0 elsewhere
    const gxa = await explain('layer-gradient-x-activation', cnn, digits, { options: { layer: 'fc2' } });
    const logits = cnn.logits(digits);
    const want = tf.tidy(() => tf.sum(tf.mul(logits, tf.oneHot(tf.tensor1d(gxa.target, 'int32'), 10)), 1));
    const got = tf.tidy(() => tf.sum(gxa.attribution, [1, 2, 3]));
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(want, got))).dataSync()[0])).toBeLessThan(1e-6);
    tf.dispose([logits, want, got]);
    gxa.dispose();
    const ng = await explain('neuron-gradient', cnn, digits, { options: { layer: 'fc2', neuron: 3 } });
    const g = await explain('gradient', cnn, digits, { target: 3 });
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(ng.attribution, g.attribution))).dataSync()[0])).toBeLessThan(1e-7);
    const nig = await explain('neuron-integrated-gradients', cnn, digits, { options: { layer: 'fc2', neuron: [0, 0, 3], steps: 8 } });
    const ig = await explain('integrated-gradients', cnn, digits, { target: 3, options: { steps: 8 } });
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(nig.attribution, ig.attribution))).dataSync()[0])).toBeLessThan(1e-6);
    const conv = await explain('neuron-integrated-gradients', cnn, digits, { options: { layer: 'conv2', neuron: 'max', steps: 32 } });
    (conv.extras.completenessError as number[]).forEach((v) => expect(Math.abs(v)).toBeLessThan(5e-3));
    [ng, g, nig, ig, conv].forEach((e) => e.dispose());
  });
});

describe('class activation maps', () => {
  it('grad-cam-plus-plus equals grad-cam where its weights reduce to the same (GAP head, non-negative weights), differs on the CNN', async () => {
    const model = tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [12, 12, 1], filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
      tfl.layers.globalAveragePooling2d({}),
      tfl.layers.dense({ units: 3, name: 'head', kernelInitializer: tfl.initializers.randomUniform({ minval: 0.1, maxval: 1, seed: 2 }) }),
    ] });
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([3, 12, 12, 1], 0, 1, 'float32', 4) as tf.Tensor4D;
    const pp = await explain('grad-cam-plus-plus', clf, x, { options: { layer: 'c1' } });
    const gc = await explain('grad-cam', clf, x, { options: { layer: 'c1' } });
    const scale = tf.tidy(() => tf.max(gc.attribution).dataSync()[0]);
    expect(scale).toBeGreaterThan(0);
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(pp.attribution, gc.attribution))).dataSync()[0])).toBeLessThan(1e-5 * scale);
    [pp, gc].forEach((e) => e.dispose());
    x.dispose();
    model.dispose();
    const a = await explain('grad-cam-plus-plus', cnn, digits);
    const b = await explain('grad-cam', cnn, digits);
    const rel = tf.tidy(() => tf.div(tf.norm(tf.sub(a.attribution, b.attribution)), tf.norm(b.attribution)).dataSync()[0]);
    expect(rel).toBeGreaterThan(1e-2);
    [a, b].forEach((e) => e.dispose());
  });
  it('score-cam channel weights equal the target probability of the input masked by each normalised upsampled channel, computed by hand', async () => {
    const e = await explain('score-cam', cnn, digits, { options: { layer: 'conv2', maxChannels: 6 } });
    const chans = e.extras.channels as number[][];
    const weights = e.extras.channelWeights as number[][];
    expect(chans[0].length).toBe(6);
    const act = cnn.activations(digits, ['conv2']).get('conv2')! as tf.Tensor4D;
    for (const i of [0, 3]) {
      for (const j of [0, 5]) {
        const c = chans[i][j];
        const byHand = tf.tidy(() => {
          const a = tf.slice(act, [i, 0, 0, c], [1, -1, -1, 1]);
          const up = tf.image.resizeBilinear(a as tf.Tensor4D, [28, 28], false, true);
          const m = tf.div(tf.sub(up, tf.min(up)), tf.add(tf.sub(tf.max(up), tf.min(up)), 1e-7));
          const p = tf.softmax(cnn.logits(tf.mul(tf.slice(digits, i, 1), m)));
          return p.dataSync()[e.target[i]];
        });
        expect(Math.abs(byHand - weights[i][j])).toBeLessThan(1e-6);
      }
    }
    // the cam is relu(Σ_c w_c A_c) over the kept channels
    const raw = e.extras.raw as tf.Tensor4D;
    const want = tf.tidy(() => tf.relu(tf.sum(tf.mul(tf.gather(tf.slice(act, 0, 1), chans[0], 3), tf.tensor1d(weights[0])), 3, true)));
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(raw, 0, 1), want))).dataSync()[0])).toBeLessThan(1e-6);
    const m = scoreCamMasks(tf.slice(act, 0, 1) as tf.Tensor4D, [0, 1], [28, 28]);
    expect(m.shape).toEqual([2, 28, 28, 1]);
    tf.dispose([act, want, m]);
    e.dispose();
  });
  it('eigen-cam projects on the first principal component; layer-cam is relu(Σ relu(∂y/∂A) ⊙ A)', async () => {
    // rank-one activations (plus a channel offset): the projection is ± the centred position profile
    const p = 6;
    const c = 4;
    const u = [0.1, 2, -1, 0.5, 3, -2];
    const v = [1, -2, 0.5, 2];
    const a = new Float64Array(p * c).map((_, k) => u[Math.floor(k / c)] * v[k % c] + (k % c));
    const proj = firstComponentProjection(a, p, c);
    const mu = u.reduce((s, t) => s + t, 0) / p;
    const nv = Math.hypot(...v);
    const ratio = proj.map((t, i) => t / ((u[i] - mu) * nv));
    ratio.forEach((r) => expect(Math.abs(Math.abs(r) - 1)).toBeLessThan(1e-9));
    const e = await explain('eigen-cam', cnn, digits);
    expect(e.attribution.shape).toEqual([4, 28, 28, 1]);
    expect(tf.tidy(() => tf.min(e.attribution).dataSync()[0])).toBeGreaterThanOrEqual(0);
    e.dispose();
    const lc = await explain('layer-cam', cnn, digits, { options: { layer: 'conv1' } });
    const act = cnn.activations(digits, ['conv1']).get('conv1')!;
    const split = cnn.split('conv1');
    const want = tf.tidy(() => {
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(split.tail(t), tf.oneHot(tf.tensor1d(lc.target, 'int32'), 10))))(act);
      return tf.relu(tf.sum(tf.mul(tf.relu(g), act), 3, true));
    });
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(lc.extras.raw as tf.Tensor, want))).dataSync()[0])).toBeLessThan(1e-6);
    tf.dispose([act, want]);
    lc.dispose();
  });
});

describe('every new method on a small MobileNetV2-shaped model (ReLU6, depthwise, BN, residual Add)', () => {
  const NEW_METHODS: Array<[string, Record<string, unknown>]> = [
    ['deeplift', { baseline: 'blurred', blurSigma: 2 }],
    ['deeplift-shap', { numBaselines: 2 }],
    ['gradient-shap', { samples: 4, stdev: 0.05 }],
    ['feature-ablation', {}],
    ['feature-permutation', { featureMask: 'grid', gridSize: [2, 2] }],
    ['shapley-exact', { featureMask: 'grid', gridSize: [2, 2] }],
    ['shapley-sampling', { samples: 2, gridSize: [2, 2] }],
    ['kernel-shap', { samples: 16, nSegments: 8 }],
    ['layer-integrated-gradients', { steps: 4 }],
    ['layer-conductance', { steps: 4 }],
    ['layer-gradient-x-activation', {}],
    // the most active unit of out_relu sits at 6 (saturated ReLU6, zero gradient): explain the BN output before it
    ['neuron-gradient', { layer: 'Conv_1_bn' }],
    ['neuron-integrated-gradients', { layer: 'Conv_1_bn', steps: 4 }],
    ['grad-cam-plus-plus', {}],
    ['score-cam', { maxChannels: 8 }],
    ['eigen-cam', {}],
    ['layer-cam', {}],
  ];
  let mb: Classifier;
  let xs: tf.Tensor4D;
  beforeAll(() => {
    mb = Classifier.fromModel(buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.5, depth: 2, lastFilters: 64, numClasses: 5, seed: 2, calibrationImages: 4 }));
    xs = tf.randomUniform([2, 32, 32, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
  });
  it.each(NEW_METHODS)('%s runs, finite, no leaked tensors', async (method, options) => {
    (await explain(method, mb, xs, { options })).dispose(); // warm-up (footprint, caches)
    const before = tf.memory().numTensors;
    const e = await explain(method, mb, xs, { options });
    expect(e.attribution.shape[0]).toBe(2);
    const finite = tf.tidy(() => tf.all(tf.isFinite(e.attribution)).dataSync()[0]);
    expect(finite).toBe(1);
    const energy = tf.tidy(() => tf.sum(tf.abs(e.attribution)).dataSync()[0]);
    expect(energy).toBeGreaterThan(0);
    if (['deeplift', 'deeplift-shap', 'shapley-exact', 'shapley-sampling', 'kernel-shap'].includes(method)) expect(relativeCompleteness(e), method).toBeLessThan(1e-3);
    e.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('typed one-line errors', () => {
  it('options out of range, wrong shapes and models a method cannot use', async () => {
    await expect(explain('shapley-exact', cnn, digits, { options: { featureMask: 'patches', patchSize: 4 } })).rejects.toThrow(/at most 16 features; got 49/);
    await expect(explain('kernel-shap', cnn, digits, { options: { featureMask: 'stars' } })).rejects.toThrow(OptionError);
    await expect(explain('deeplift', cnn, digits, { options: { maxPoolRule: 'max' } })).rejects.toThrow(/maxPoolRule/);
    await expect(explain('deeplift', cnn, digits, { options: { rule: 'revealcancel' } })).rejects.toThrow(/rule/);
    const bad = tf.zeros([3, 5, 5, 1]);
    await expect(explain('deeplift-shap', cnn, digits, { options: { baselines: bad } })).rejects.toThrow(/baselines to be a tensor \[K, 28, 28, 1\]/);
    bad.dispose();
    await expect(explain('gradient-shap', cnn, digits, { options: { draw: 'stratified', samples: 10, numBaselines: 4 } })).rejects.toThrow(/multiple of the number of baselines/);
    await expect(explain('neuron-gradient', cnn, digits, { options: { layer: 'conv2', neuron: [99, 0, 0] } })).rejects.toThrow(/inside the layer's \[14, 14, 64\]/);
    await expect(explain('score-cam', cnn, digits, { options: { layer: 'fc1' } })).rejects.toThrow(/spatial output/);
    // a budget that fits one image's gradient but not an image and its baseline together
    const one = footprint(cnn).gradient;
    await expect(explain('deeplift', cnn, digits, { memoryBudget: Math.floor(1.5 * one) })).rejects.toThrow(MemoryBudgetError);
    const fn = Classifier.fromFunction((v) => cnn.logits(v), { inputShape: [28, 28, 1], numClasses: 10 });
    await expect(explain('deeplift', fn, digits)).rejects.toThrow(/needs the layers of the model/);
    // model-free methods run on a plain function
    const ks = await explain('kernel-shap', fn, digits, { options: { featureMask: 'grid', gridSize: [2, 2], samples: 8 } });
    expect(ks.attribution.shape).toEqual([4, 28, 28, 1]);
    ks.dispose();
  });
});
