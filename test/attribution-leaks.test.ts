import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, explain } from '../src/index.js';

beforeAll(async () => {
  await initBackend();
});

const CASES: Array<[string, Record<string, unknown>]> = [
  ['saliency', {}],
  ['sensitivity', {}],
  ['integrated-gradients', { steps: 6, internalBatchSize: 5 }],
  ['integrated-gradients', { steps: 4, baseline: 'blurred', blurSigma: 1 }],
  ['smoothgrad', { samples: 3, batchSize: 3 }],
  ['smoothgrad', { samples: 2, method: 'guided-backprop', variant: 'vargrad' }],
  ['guided-backprop', {}],
  ['deconvnet', {}],
  ['grad-cam', {}],
  ['grad-cam', { layer: 'c2/preact', relu: false, batchSize: 1 }],
  ['guided-grad-cam', {}],
  ['occlusion', { window: 3, stride: 2, batchSize: 7 }],
  ['lime', { samples: 30, batchSize: 17, segmentation: 'slic', nSegments: 6 }],
  ['prediction-difference', { windowSize: 3, padding: 1, samples: 2, stride: 2 }],
];

describe('every attribution method releases its tensors', () => {
  it.each(CASES)('%s %j', async (method, options) => {
    const model = tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1' }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c2' }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, activation: 'softmax' }),
    ] });
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([3, 8, 8, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
    // warm-up (kernels, caches), then measure several calls
    (await explain(method, clf, x, { target: [0, 1, 2], options })).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const e = await explain(method, clf, x, { target: [2, 'predicted', 0], options });
      expect(e.attribution.shape).toEqual([3, 8, 8, 1]);
      e.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });
});
