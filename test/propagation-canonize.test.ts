import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, explain, runGraph } from '../src/index.js';
import '../src/attribution/index.js';
import { canonize, weightCacheSize } from '../src/attribution/propagation/index.js';
import { buildSmallResNet } from '../src/models/resnet.js';

/** Give every BatchNorm non-trivial statistics so folding is actually exercised. */
function randomizeBatchNorms(model: tfl.LayersModel, seed = 1): number {
  let n = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const ws = layer.getWeights();
    const c = ws[0].shape[0];
    const s = seed + 7 * n++;
    // weight order: gamma, beta, moving_mean, moving_variance (when scale and center are on)
    layer.setWeights([
      tf.randomUniform([c], 0.5, 1.5, 'float32', s),
      tf.randomUniform([c], -0.2, 0.2, 'float32', s + 1),
      tf.randomUniform([c], -0.2, 0.2, 'float32', s + 2),
      tf.randomUniform([c], 0.5, 2, 'float32', s + 3),
    ].slice(0, ws.length));
  }
  return n;
}

function tinyResidual(): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.heNormal({ seed: s });
  const input = tfl.input({ shape: [10, 10, 1] });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(1), name: 'c1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  let y = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(2), name: 'c2' }).apply(x) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ name: 'bn2' }).apply(y) as tfl.SymbolicTensor;
  let p = tfl.layers.conv2d({ filters: 8, kernelSize: 1, strides: 2, useBias: false, kernelInitializer: init(3), name: 'proj' }).apply(x) as tfl.SymbolicTensor;
  p = tfl.layers.batchNormalization({ name: 'bn_proj' }).apply(p) as tfl.SymbolicTensor;
  let s = tfl.layers.add().apply([y, p]) as tfl.SymbolicTensor;
  s = tfl.layers.reLU().apply(s) as tfl.SymbolicTensor;
  s = tfl.layers.batchNormalization({ name: 'bn_after_relu' }).apply(s) as tfl.SymbolicTensor; // not foldable
  const g = tfl.layers.globalAveragePooling2d({}).apply(s) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) }).apply(g) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.div(tf.max(tf.abs(tf.sub(a, b))), tf.max(tf.abs(b))).dataSync()[0]);
}

describe('propagation: BatchNorm canonization', () => {
  beforeAll(async () => {
    await initBackend();
  });

  it('folds BatchNorm into the preceding conv (with and without bias) and leaves the logits unchanged to 1e-5', async () => {
    const model = tinyResidual();
    expect(randomizeBatchNorms(model)).toBe(4);
    const c = Classifier.fromModel(model);
    const { graph, folded } = canonize(c.graph!);
    expect(folded.map((f) => f.batchNorm).sort()).toEqual(['bn1', 'bn2', 'bn_proj']);
    expect(graph.byName.get('bn_after_relu')!.kind).toBe('batchnorm');
    const x = tf.randomUniform([3, 10, 10, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const before = c.logits(x);
    const after = tf.tidy(() => runGraph(graph, x).output);
    expect(maxRelDiff(after, before)).toBeLessThan(1e-5);
    // the original graph is untouched
    expect(c.graph!.byName.get('bn1')!.kind).toBe('batchnorm');
    for (const [opts, method] of [[{ composite: 'epsilon-plus-flat' }, 'lrp'], [{ rule: 'alpha-beta' }, 'lrp'], [{}, 'deep-taylor'], [{ canonize: false }, 'lrp']] as const) {
      const e = await explain(method, c, x, { options: opts });
      const finite = tf.tidy(() => tf.all(tf.isFinite(e.attribution)).dataSync()[0]);
      expect(finite, JSON.stringify(opts)).toBe(1);
      if (method === 'lrp' && !('canonize' in opts)) expect((e.extras.foldedBatchNorms as string[]).length).toBe(3);
      e.dispose();
    }
    tf.dispose([x, before, after]);
  });

  it('buildSmallResNet: canonized logits unchanged to 1e-5, LRP maps finite, conservation error reported, no leaks', async () => {
    const model = buildSmallResNet({ width: 4, seed: 3 });
    randomizeBatchNorms(model, 11);
    const c = Classifier.fromModel(model);
    const { graph, folded } = canonize(c.graph!);
    expect(folded.length).toBeGreaterThan(3);
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 6) as tf.Tensor4D;
    const before = c.logits(x);
    const after = tf.tidy(() => runGraph(graph, x).output);
    expect(maxRelDiff(after, before)).toBeLessThan(1e-5);
    tf.dispose([before, after]);
    const n0 = tf.memory().numTensors - weightCacheSize(); // cached derived weights are owned by the cache
    for (const composite of ['epsilon-plus-flat', 'epsilon-gamma-box', 'lrp-0']) {
      const e = await explain('lrp', c, x, { options: { composite } });
      const finite = tf.tidy(() => tf.all(tf.isFinite(e.attribution)).dataSync()[0]);
      expect(finite, composite).toBe(1);
      const ce = e.extras.conservationError as number[];
      expect(ce).toHaveLength(2);
      expect(ce.every(Number.isFinite)).toBe(true);
      e.dispose();
    }
    expect(tf.memory().numTensors - weightCacheSize()).toBe(n0);
    x.dispose();
  });
});
