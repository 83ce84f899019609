import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, explain } from '../src/index.js';
import { quickshift, slic, limitSegmentSize, gridSegmentation, type Plane } from '../src/attribution/segmentation/index.js';
import { weightedRidge } from '../src/attribution/math.js';

beforeAll(async () => {
  await initBackend();
});

function cnn(seed: number, c = 1, size = 8): tfl.LayersModel {
  return tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [size, size, c], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed }), biasInitializer: tfl.initializers.constant({ value: 0.05 }) }),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 4, kernelInitializer: tfl.initializers.glorotNormal({ seed: seed + 1 }) }),
  ] });
}

async function arr(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

describe('occlusion', () => {
  it('with a 1×1 window equals the exact per-pixel drop of the target logit', async () => {
    const model = cnn(1, 2);
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 8, 8, 2], 0, 1, 'float32', 2) as tf.Tensor4D;
    const targets = [1, 3];
    const e = await explain('occlusion', clf, x, { target: targets, options: { window: 1, stride: 1, baseline: 0.3, batchSize: 37 } });
    const got = await arr(e.attribution);
    const xd = await arr(x);
    const base = await arr(clf.logits(x));
    for (let i = 0; i < 2; i++) {
      // every pixel, one at a time, the slow way
      const imgs = new Float32Array(64 * 128);
      for (let p = 0; p < 64; p++) {
        imgs.set(xd.subarray(i * 128, (i + 1) * 128), p * 128);
        imgs[p * 128 + p * 2] = 0.3;
        imgs[p * 128 + p * 2 + 1] = 0.3;
      }
      const l = await arr(clf.logits(tf.tensor4d(imgs, [64, 8, 8, 2])));
      for (let p = 0; p < 64; p++) {
        const drop = base[i * 4 + targets[i]] - l[p * 4 + targets[i]];
        expect(got[(i * 64 + p) * 2]).toBeCloseTo(drop, 5);
        expect(got[(i * 64 + p) * 2 + 1]).toBeCloseTo(drop, 5);
      }
    }
    e.dispose();
    x.dispose();
    model.dispose();
  });
  it('averages the drops of all windows covering a pixel (Captum semantics)', async () => {
    // f(x) = Σ x ⇒ drop of window p = Σ_{window} x (baseline 0); pixel value = mean over covering windows.
    const clf = Classifier.fromFunction((x) => tf.concat([tf.reshape(tf.sum(x, [1, 2, 3]), [-1, 1]), tf.zeros([x.shape[0], 1])], 1) as tf.Tensor2D, { inputShape: [5, 5, 1], numClasses: 2 });
    const xs = Array.from({ length: 25 }, (_, i) => (i * 7) % 11 / 10);
    const x = tf.tensor4d(xs, [1, 5, 5, 1]);
    const e = await explain('occlusion', clf, x, { target: 0, options: { window: 2, stride: 2 } });
    const got = await arr(e.attribution);
    // windows at (0,0),(0,2),(2,0),(2,2); row/col 4 is covered by none → 0
    const win = (r: number, c: number) => xs[r * 5 + c] + xs[r * 5 + c + 1] + xs[(r + 1) * 5 + c] + xs[(r + 1) * 5 + c + 1];
    expect(got[0]).toBeCloseTo(win(0, 0), 5);
    expect(got[3]).toBeCloseTo(win(0, 2), 5);
    expect(got[2 * 5 + 1]).toBeCloseTo(win(2, 0), 5);
    expect(got[4]).toBe(0);
    expect(got[4 * 5]).toBe(0);
    const e2 = await explain('occlusion', clf, x, { target: 0, options: { window: 3, stride: 1 } });
    const g2 = await arr(e2.attribution);
    // pixel (2,2) is covered by all 9 windows
    let s = 0;
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) s += xs[(r + a) * 5 + c + b];
    expect(g2[12]).toBeCloseTo(s / 9, 5);
    e.dispose();
    e2.dispose();
    x.dispose();
  });
});

describe('segmentation', () => {
  const twoRegions = (): Plane => {
    const data = new Float64Array(16 * 16);
    for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) data[r * 16 + c] = c < 8 ? 0.1 : 0.9;
    return { height: 16, width: 16, channels: 1, data };
  };
  it('quickshift and slic never merge across a sharp edge', () => {
    for (const seg of [quickshift(twoRegions(), { kernelSize: 2, maxDist: 10 }), slic(twoRegions(), { nSegments: 8 })]) {
      expect(seg.count).toBeGreaterThanOrEqual(2);
      const left = new Set<number>();
      const right = new Set<number>();
      for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) (c < 8 ? left : right).add(seg.labels[r * 16 + c]);
      for (const l of left) expect(right.has(l)).toBe(false);
    }
  });
  it('slic gives about nSegments regions; maxSegmentSize splits down to single pixels', () => {
    const img = twoRegions();
    const s = slic(img, { nSegments: 16 });
    expect(s.count).toBeGreaterThanOrEqual(8);
    expect(s.count).toBeLessThanOrEqual(32);
    const px = limitSegmentSize(s, 1);
    expect(px.count).toBe(256);
    const small = limitSegmentSize(quickshift(img, { kernelSize: 2, maxDist: 10 }), 9);
    const sizes = new Map<number, number>();
    for (const l of small.labels) sizes.set(l, (sizes.get(l) ?? 0) + 1);
    expect(Math.max(...sizes.values())).toBeLessThanOrEqual(9);
    expect(gridSegmentation(16, 16, 4).count).toBe(16);
  });
  it('weighted ridge matches the normal equations (hand case)', () => {
    // y = 2 + 3 z0 − z1 exactly; tiny alpha recovers it; weights do not matter for an exact fit.
    const X = new Uint8Array([1, 1, 0, 1, 1, 0, 0, 0, 1, 1]);
    const y = new Float64Array([4, 1, 5, 2, 4]);
    const fit = weightedRidge(X, 5, 2, [y], new Float64Array([1, 2, 1, 3, 0.5]), 1e-9)[0];
    expect(fit.coef[0]).toBeCloseTo(3, 6);
    expect(fit.coef[1]).toBeCloseTo(-1, 6);
    expect(fit.intercept).toBeCloseTo(2, 6);
    expect(fit.score).toBeCloseTo(1, 8);
  });
});

describe('lime', () => {
  it('recovers the weights of a linear model over super-pixels', async () => {
    // 4×4 grid cells of an 8×8 image: f_0(x) = Σ_s w_s · mean_s(x); with the black mask and x = 1,
    // switching cell s off changes f_0 by −w_s, so the surrogate's coefficients are w_s.
    const w = [0.5, -1.2, 2.0, 0.3];
    const wm = new Float32Array(64 * 2);
    for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) wm[(r * 8 + c) * 2] = w[Math.floor(r / 4) * 2 + Math.floor(c / 4)] / 16;
    const W = tf.tensor2d(wm, [64, 2]);
    const clf = Classifier.fromFunction((x) => tf.matMul(tf.reshape(x, [x.shape[0], 64]), W), { inputShape: [8, 8, 1], numClasses: 2 });
    const x = tf.ones([2, 8, 8, 1]) as tf.Tensor4D;
    const e = await explain('lime', clf, x, { target: 0, options: { segmentation: 'grid', cellSize: 4, maxSegmentSize: null, mask: 'black', output: 'logit', samples: 200, ridgeAlpha: 1e-6, topLabels: 2, numFeatures: 2 } });
    for (const ws of e.extras.weights as number[][]) ws.forEach((v, j) => expect(v).toBeCloseTo(w[j], 4));
    const map = await arr(e.attribution);
    expect(map[0]).toBeCloseTo(0.5, 4);
    expect(map[63]).toBeCloseTo(0.3, 4);
    // evidence masks: the 2 strongest cells are 2 (for, +2.0) and 1 (against, −1.2)
    const fo = await arr(e.extras.evidenceFor as tf.Tensor);
    const ag = await arr(e.extras.evidenceAgainst as tf.Tensor);
    expect(fo[7 * 8]).toBe(1); // bottom-left = cell 2
    expect(fo[0]).toBe(0);
    expect(ag[7]).toBe(1); // top-right = cell 1
    expect((e.extras.topClasses as number[][])[0].sort()).toEqual([0, 1]);
    expect((e.extras.classMaps as tf.Tensor[])[0].shape).toEqual([2, 8, 8, 1]);
    e.dispose();
    tf.dispose([x, W]);
  });
  it('is seeded, works on greyscale and RGB with every mask, single-pixel super-pixels and change fraction', async () => {
    for (const c of [1, 3]) {
      const model = cnn(5, c);
      const clf = Classifier.fromModel(model);
      const x = tf.randomUniform([2, 8, 8, c], 0, 1, 'float32', 6) as tf.Tensor4D;
      const custom = tf.fill([8, 8, c], 0.5);
      for (const mask of ['black', 'white', 'mean', 'inverse', 'custom'] as const) {
        const opts = { samples: 60, mask, maskValue: custom, maxSegmentSize: 1, changeFraction: 0.2, seed: 3, segmentation: 'slic', nSegments: 10 };
        const a = await explain('lime', clf, x, { options: opts });
        const b = await explain('lime', clf, x, { options: opts });
        expect((a.extras.segmentCount as number[])[0]).toBe(64);
        expect(Array.from(await arr(a.attribution))).toEqual(Array.from(await arr(b.attribution)));
        expect(a.attribution.shape).toEqual([2, 8, 8, c]);
        a.dispose();
        b.dispose();
      }
      const q = await explain('lime', clf, x, { options: { samples: 50, segmentation: 'quickshift', kernelSize: 1, maxDist: 5 } });
      expect((q.extras.segmentCount as number[]).every((n) => n >= 1)).toBe(true);
      q.dispose();
      tf.dispose([x, custom]);
      model.dispose();
    }
  });
});

describe('prediction difference analysis', () => {
  it('gives zero evidence where the model does not look and the exact log-odds elsewhere', async () => {
    // The classifier only reads the top-left 3×3 block.
    const wm = new Float32Array(64 * 2);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) wm[(r * 8 + c) * 2] = 1;
    const W = tf.tensor2d(wm, [64, 2]);
    const clf = Classifier.fromFunction((x) => tf.matMul(tf.reshape(x, [x.shape[0], 64]), W), { inputShape: [8, 8, 1], numClasses: 2 });
    const x = tf.randomUniform([1, 8, 8, 1], 0, 1, 'float32', 8) as tf.Tensor4D;
    const ref = tf.randomUniform([20, 8, 8, 1], 0, 1, 'float32', 9) as tf.Tensor4D;
    for (const sampling of ['conditional', 'marginal'] as const) {
      const e = await explain('prediction-difference', clf, x, { target: 0, options: { windowSize: 2, padding: 1, samples: 8, sampling, reference: ref, trainingSize: 0 } });
      const a = await arr(e.attribution);
      // pixels whose every covering window misses the 3×3 block: rows/cols ≥ 4
      for (let r = 4; r < 8; r++) for (let c = 4; c < 8; c++) expect(Math.abs(a[r * 8 + c])).toBeLessThan(1e-9);
      expect(Math.abs(a[0])).toBeGreaterThan(1e-3);
      e.dispose();
    }
    // Hand check of the weight of evidence with one window and a deterministic replacement:
    // zero-variance reference (all images identical) ⇒ the sample is the reference window.
    const same = tf.zeros([4, 8, 8, 1]) as tf.Tensor4D;
    const e = await explain('prediction-difference', clf, x, { target: 0, options: { windowSize: 8, padding: 0, samples: 2, sampling: 'marginal', reference: same, trainingSize: 0 } });
    const xd = await arr(x);
    let s = 0;
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) s += xd[r * 8 + c];
    const p = 1 / (1 + Math.exp(-s));
    const q = 0.5;
    const expected = Math.log2(p / (1 - p)) - Math.log2(q / (1 - q));
    expect((await arr(e.attribution))[10]).toBeCloseTo(expected, 2);
    e.dispose();
    tf.dispose([W, x, ref, same]);
  });
});
