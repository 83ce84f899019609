import { describe, it, expect, beforeAll } from 'vitest';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, currentBackend, Classifier, explain } from '../src/index.js';
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
    ['mnist_cnn', ['deeplift', 'deeplift_delta', 'deeplift_shap', 'gradient_shap_fixed']],
    ['mnist_mlp', ['deeplift', 'deeplift_delta', 'deeplift_shap', 'gradient_shap_fixed']],
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
