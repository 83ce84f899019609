import { describe, it, expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, explain } from '../src/index.js';

describe('smoke', () => {
  it('gradient end to end on a tiny CNN', async () => {
    const name = await initBackend();
    const model = tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, activation: 'softmax' }),
    ] });
    const c = Classifier.fromModel(model);
    expect(c.strippedSoftmax).toBe(true);
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
    const e = await explain('gradient', c, x);
    expect(e.attribution.shape).toEqual([2, 8, 8, 1]);
    console.log(name, c.layers().map((l) => l.name), e.timeMs);
    e.dispose();
  });
});
