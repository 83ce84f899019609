import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, explain } from '../src/index.js';
import { localLinear } from '../src/counterfactual/local-linear.js';
import '../src/counterfactual/weight-saliency.js';
import { conformanceMlp, conformanceCnn, conformanceInput, hasConformance, toyCnn } from './support/geometry-fixtures.js';

beforeAll(async () => {
  await initBackend();
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** x·W for one image: x [din], W [din*dout] row-major. */
function affine(x: ArrayLike<number>, W: ArrayLike<number>, B: ArrayLike<number>, dout: number): number[] {
  const y = Array.from(B);
  for (let i = 0; i < x.length; i++) for (let j = 0; j < dout; j++) y[j] += x[i] * W[i * dout + j];
  return y;
}

describe.skipIf(!hasConformance())('local-linear', () => {
  it('equals the hand-composed product W1·R1·W2·R2·W3 of the MLP, and x·W + B = y', () => {
    const c = conformanceMlp();
    const x = conformanceInput('mnist_mlp');
    const form = localLinear(c, x);
    expect(form.W.shape).toEqual([4, 784, 10]);
    // Hand computation for image 0: masks from the hidden pre-activations.
    const ws = c.model!.getWeights().map((w) => w.arraySync() as number[][] | number[]);
    const [k1, b1, k2, b2, k3, b3] = ws as [number[][], number[], number[][], number[], number[][], number[]];
    const xi = Array.from(x.dataSync().slice(0, 784));
    const h1 = b1.map((b, j) => b + xi.reduce((s, v, i) => s + v * k1[i][j], 0));
    const m1 = h1.map((v) => (v > 0 ? 1 : 0));
    const h2 = b2.map((b, j) => b + h1.reduce((s, v, i) => s + Math.max(0, v) * k2[i][j], 0));
    const m2 = h2.map((v) => (v > 0 ? 1 : 0));
    // M = R2·W3 [128,10]; then W2·M [256,10] masked by R1; W = W1·that [784,10].
    const M = k3.map((row, i) => row.map((v) => v * m2[i]));
    const N2 = k2.map((row, i) => Array.from({ length: 10 }, (_, j) => m1[i] * row.reduce((s, v, l) => s + v * M[l][j], 0)));
    const Wh = k1.map((row) => Array.from({ length: 10 }, (_, j) => row.reduce((s, v, l) => s + v * N2[l][j], 0)));
    const Wt = form.W.arraySync()[0];
    let maxW = 0;
    for (const row of Wh) for (const v of row) maxW = Math.max(maxW, Math.abs(v));
    expect(maxAbsDiff(Wt.flat(), Wh.flat())).toBeLessThan(1e-5 * Math.max(1, maxW * 10));
    // x·W + B equals the network output at x, for every image.
    const logits = c.logits(x);
    const W = form.W.dataSync();
    const B = form.B.dataSync();
    const xs = x.dataSync();
    const ls = logits.dataSync();
    for (let n = 0; n < 4; n++) {
      const y = affine(xs.slice(n * 784, (n + 1) * 784), W.slice(n * 7840, (n + 1) * 7840), B.slice(n * 10, n * 10 + 10), 10);
      expect(maxAbsDiff(y, ls.slice(n * 10, n * 10 + 10))).toBeLessThan(1e-5);
    }
    // B is the hand-composed bias too: output at x minus x·W.
    expect(maxAbsDiff(form.y.dataSync(), ls)).toBeLessThan(1e-5);
    tf.dispose([logits, x]);
    form.dispose();
  });

  it('predicts the CNN output at a nearby point in the same linear region (a non-trivial check of W)', () => {
    const c = conformanceCnn();
    // Random inputs: MNIST's blank background makes max-pool ties, where any perturbation changes region.
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
    const form = localLinear(c, x);
    const delta = tf.mul(tf.randomUniform(x.shape, -1, 1, 'float32', 3), 2e-4);
    const x2 = tf.add(x, delta);
    const y2 = c.logits(x2).dataSync();
    const pred = tf.add(tf.reshape(tf.matMul(tf.reshape(x2, [2, 1, 784]), form.W), [2, 10]), form.B).dataSync();
    const y1 = form.y.dataSync();
    // Same region → exact up to float error; the change itself is much larger than the tolerance.
    const err = maxAbsDiff(pred, y2);
    // (Many random-init ReLUs sit near 0, so the step is kept small enough to stay in the region.)
    expect(err).toBeLessThan(1e-6);
    expect(maxAbsDiff(y1, y2)).toBeGreaterThan(20 * err);
    tf.dispose([x, delta, x2]);
    form.dispose();
  });

  it('gives one output, the difference of two, and forms between hidden layers', () => {
    const c = conformanceMlp();
    const x = conformanceInput('mnist_mlp');
    const all = localLinear(c, x);
    const one = localLinear(c, x, { output: 3 });
    const diff = localLinear(c, x, { output: [3, 7] });
    expect(one.W.shape).toEqual([4, 784, 1]);
    const Wall = all.W.arraySync();
    const W1 = one.W.arraySync();
    const Wd = diff.W.arraySync();
    for (let i = 0; i < 784; i += 37) {
      expect(W1[1][i][0]).toBeCloseTo(Wall[1][i][3], 6);
      expect(Wd[2][i][0]).toBeCloseTo(Wall[2][i][3] - Wall[2][i][7], 6);
    }
    const yd = diff.y.dataSync();
    const ya = all.y.dataSync();
    expect(yd[2]).toBeCloseTo(ya[23] - ya[27], 5);
    // From fc1's output (post-ReLU, 256) to fc2 (post-ReLU, 128): W is R·W2·R restricted; check x·W + B = y.
    const mid = localLinear(c, x, { from: 'fc1', to: 'fc2' });
    expect(mid.W.shape).toEqual([4, 256, 128]);
    const h2 = c.activations(x, ['fc2']).get('fc2')!;
    const pred = tf.add(tf.reshape(tf.matMul(tf.reshape(mid.point, [4, 1, 256]), mid.W), [4, 128]), mid.B);
    expect(maxAbsDiff(pred.dataSync(), h2.dataSync())).toBeLessThan(1e-5);
    // From fc1 to the logits equals the full form after composing with the fc1 part: check outputs.
    const tail = localLinear(c, x, { from: 'fc1' });
    expect(maxAbsDiff(tail.y.dataSync(), ya)).toBeLessThan(1e-5);
    tf.dispose([x, h2, pred]);
    [all, one, diff, mid, tail].forEach((f) => f.dispose());
  });

  it('rejects bad outputs and layer order', () => {
    const c = conformanceMlp();
    const x = conformanceInput('mnist_mlp');
    expect(() => localLinear(c, x, { output: 10 })).toThrow(/0\.\.9/);
    expect(() => localLinear(c, x, { from: 'fc2', to: 'fc1' })).toThrow(/after/);
    expect(() => localLinear(c, x, { from: 'nope' })).toThrow(/layer name/);
    x.dispose();
  });

  it('weight-saliency is the W column of the target (and of target − compareTo) and leaks nothing', async () => {
    const c = toyCnn();
    const x = tf.randomUniform([3, 8, 8, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const form = localLinear(c, x);
    const e = await explain('weight-saliency', c, x, { target: [0, 1, 2] });
    const e2 = await explain('weight-saliency', c, x, { target: 0, options: { compareTo: 2 } });
    const W = form.W.arraySync();
    const a = e.attribution.dataSync();
    const a2 = e2.attribution.dataSync();
    for (let n = 0; n < 3; n++) {
      for (let i = 0; i < 64; i += 5) {
        expect(a[n * 64 + i]).toBeCloseTo(W[n][i][n], 6);
        expect(a2[n * 64 + i]).toBeCloseTo(W[n][i][0] - W[n][i][2], 6);
      }
    }
    const bias = (e.extras.bias as tf.Tensor).dataSync();
    const B = form.B.dataSync();
    for (let n = 0; n < 3; n++) expect(bias[n]).toBeCloseTo(B[n * 3 + n], 5);
    e.dispose();
    e2.dispose();
    form.dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      (await explain('weight-saliency', c, x)).dispose();
      localLinear(c, x, { output: [0, 1] }).dispose();
      localLinear(c, x, { from: 'c1', to: 'fc' }).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});
