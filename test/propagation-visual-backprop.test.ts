import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, explain, InputTransform, OptionError } from '../src/index.js';
import '../src/attribution/index.js';

const init = (s: number) => tfl.initializers.glorotUniform({ seed: s });

/** Reference VisualBackProp for two 3×3 'same' stride-1 conv layers, written with plain loops. */
function referenceVbp(a1: number[][], a2: number[][]): number[][] {
  const h = a1.length;
  const w = a1[0].length;
  const up = (m: number[][]) => m.map((row, i) => row.map((_, j) => {
    let s = 0;
    for (let di = -1; di <= 1; di++) for (let dj = -1; dj <= 1; dj++) {
      const y = i + di;
      const x = j + dj;
      if (y >= 0 && y < h && x >= 0 && x < w) s += m[y][x];
    }
    return s;
  }));
  const u2 = up(a2);
  return up(u2.map((row, i) => row.map((v, j) => v * a1[i][j])));
}

function channelMean(t: tf.Tensor4D, n: number): number[][] {
  const [, h, w, c] = t.shape;
  const d = t.dataSync();
  return Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => {
    let s = 0;
    for (let k = 0; k < c; k++) s += d[((n * h + i) * w + j) * c + k];
    return s / c;
  }));
}

describe('visual-backprop', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('matches a hand-written VisualBackProp on a two-conv net (biases on)', async () => {
    const model = tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [7, 7, 1], filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1), biasInitializer: 'ones', name: 'c1' }),
      tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2), name: 'c2' }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2, kernelInitializer: init(3) }),
    ] });
    const c = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 7, 7, 1], 0, 1, 'float32', 4) as tf.Tensor4D;
    const acts = c.activations(x, ['c1', 'c2']);
    const e = await explain('visual-backprop', c, x);
    expect(e.attribution.shape).toEqual([2, 7, 7, 1]);
    const got = (await e.attribution.array()) as number[][][][];
    for (let n = 0; n < 2; n++) {
      const ref = referenceVbp(channelMean(acts.get('c1') as tf.Tensor4D, n), channelMean(acts.get('c2') as tf.Tensor4D, n));
      // the mask is defined up to a positive factor per image (each averaged map is max-normalised)
      const refMax = Math.max(...ref.flat());
      const gotMax = Math.max(...got[n].flat().map((v) => v[0]));
      let num = 0;
      let den = 0;
      for (let i = 0; i < 7; i++) for (let j = 0; j < 7; j++) {
        num += (got[n][i][j][0] / gotMax - ref[i][j] / refMax) ** 2;
        den += (ref[i][j] / refMax) ** 2;
      }
      expect(Math.sqrt(num / den)).toBeLessThan(1e-5);
    }
    expect((e.extras.conservationError as number[]).length).toBe(2);
    e.dispose();
    tf.dispose([...acts.values(), x]);
  });

  it('runs on a CNN with pooling and strides, bias-free with an input offset; mask is non-negative and input-sized; no leaks', async () => {
    const model = tfl.sequential({ layers: [
      new InputTransform({ inputShape: [16, 16, 3], offset: -0.5 }),
      tfl.layers.conv2d({ filters: 4, kernelSize: 5, padding: 'same', activation: 'relu', useBias: false, kernelInitializer: init(5) }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', useBias: false, kernelInitializer: init(6) }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, useBias: false, kernelInitializer: init(7) }),
    ] });
    const c = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
    const n0 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const e = await explain('visual-backprop', c, x);
      expect(e.attribution.shape).toEqual([2, 16, 16, 3]);
      const [min, max] = tf.tidy(() => [tf.min(e.attribution).dataSync()[0], tf.max(e.attribution).dataSync()[0]]);
      expect(min).toBeGreaterThanOrEqual(0);
      expect(max).toBeGreaterThan(0);
      e.dispose();
    }
    expect(tf.memory().numTensors).toBe(n0);
    // with the offset, black (0) pixels propagate too: the mask is non-zero on an all-black image
    const black = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
    const e = await explain('visual-backprop', c, black);
    expect(tf.tidy(() => tf.max(e.attribution).dataSync()[0])).toBeGreaterThan(0);
    e.dispose();
    tf.dispose([x, black]);
  });

  it('refuses networks without convolutions', async () => {
    const c = Classifier.fromModel(tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [4, 4, 1] }), tfl.layers.dense({ units: 2 })] }));
    const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
    await expect(explain('visual-backprop', c, x)).rejects.toBeInstanceOf(OptionError);
    await expect(explain('visual-backprop', c, x)).rejects.toThrow(/convolutional/);
    x.dispose();
  });

  it('runs through SeparableConv2D, squeeze-and-excitation, Conv2DTranspose, Cropping2D and UpSampling2D (never into the SE branch)', async () => {
    const ap = (l: tfl.layers.Layer, v: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => l.apply(v) as tfl.SymbolicTensor;
    const input = tfl.input({ shape: [16, 16, 3] });
    let y = ap(tfl.layers.separableConv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', depthwiseInitializer: init(11), pointwiseInitializer: init(12) }), input);
    let se = ap(tfl.layers.reshape({ targetShape: [1, 1, 6] }), ap(tfl.layers.globalAveragePooling2d({}), y));
    se = ap(tfl.layers.conv2d({ filters: 3, kernelSize: 1, activation: 'relu', kernelInitializer: init(13) }), se);
    se = ap(tfl.layers.conv2d({ filters: 6, kernelSize: 1, activation: 'hardSigmoid', kernelInitializer: init(14) }), se);
    y = ap(tfl.layers.multiply({}), [y, se]);
    y = ap(tfl.layers.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(15) }), y);
    y = ap(tfl.layers.cropping2D({ cropping: [[1, 1], [1, 1]] }), y);
    y = ap(tfl.layers.upSampling2d({ size: [2, 2] }), y);
    y = ap(tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu', kernelInitializer: init(16) }), y);
    const out = ap(tfl.layers.dense({ units: 3, kernelInitializer: init(17) }), ap(tfl.layers.flatten({}), y));
    const c = Classifier.fromModel(tfl.model({ inputs: input, outputs: out }));
    const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 18) as tf.Tensor4D;
    const n0 = tf.memory().numTensors;
    const e = await explain('visual-backprop', c, x);
    expect(e.attribution.shape).toEqual([2, 16, 16, 3]);
    const [min, max, finite] = tf.tidy(() => [tf.min(e.attribution), tf.max(e.attribution), tf.all(tf.isFinite(e.attribution))].map((t) => t.dataSync()[0]));
    expect(finite).toBe(1);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeCloseTo(1, 5);
    e.dispose();
    expect(tf.memory().numTensors).toBe(n0);
    x.dispose();
  });

  it('refuses conv nets without rectified feature maps, saying why', async () => {
    const c = Classifier.fromModel(tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, activation: 'tanh', kernelInitializer: init(9) }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2, kernelInitializer: init(10) }),
    ] }));
    const x = tf.zeros([1, 6, 6, 1]) as tf.Tensor4D;
    await expect(explain('visual-backprop', c, x)).rejects.toThrow(/rectified feature maps/);
    x.dispose();
  });
});
