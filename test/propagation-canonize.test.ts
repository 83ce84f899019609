import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, explain, runGraph } from '../src/index.js';
import '../src/attribution/index.js';
import { canonize, weightCacheSize, clearWeightCache } from '../src/attribution/propagation/index.js';
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
    const fresh = [
      tf.randomUniform([c], 0.5, 1.5, 'float32', s),
      tf.randomUniform([c], -0.2, 0.2, 'float32', s + 1),
      tf.randomUniform([c], -0.2, 0.2, 'float32', s + 2),
      tf.randomUniform([c], 0.5, 2, 'float32', s + 3),
    ];
    layer.setWeights(fresh.slice(0, ws.length));
    tf.dispose(fresh);
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

  /**
   * BatchNorm with no linear layer before it (pre-activation order: … → ReLU → BN → conv) folds into
   * the layers it feeds where every tap reads a BatchNorm output: Dense, 'valid' convolutions, 1×1
   * 'same' ones, the depthwise half of a SeparableConv2D. Where the conv zero-pads ('same' 3×3) or a
   * ZeroPadding2D sits in between, the border taps read 0 rather than the BN shift: refused.
   */
  function preActivation(): tfl.LayersModel {
    const init = (s: number) => tfl.initializers.heNormal({ seed: s });
    const ap = (l: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => l.apply(x) as tfl.SymbolicTensor;
    const bn = (name: string, x: tfl.SymbolicTensor) => ap(tfl.layers.batchNormalization({ name }), x);
    const conv = (name: string, x: tfl.SymbolicTensor, kernelSize: number, padding: 'same' | 'valid', strides = 1) =>
      ap(tfl.layers.conv2d({ filters: 4, kernelSize, padding, strides, kernelInitializer: init(name.length * 7 + kernelSize), name }), x);
    const input = tfl.input({ shape: [10, 10, 3] });
    const h = ap(tfl.layers.reLU({ name: 'relu0' }), conv('c0', input, 3, 'same'));
    const a = bn('bn_a', h); // → two 1×1 convs (one of stride 2): folded into both
    const a1 = conv('ca1', a, 1, 'same', 2);
    const a2 = conv('ca2', a, 1, 'same');
    const b = bn('bn_b2', conv('cb', bn('bn_b', h), 3, 'valid')); // valid 3×3: folded, and so is the BN after it (both into cb)
    const c = conv('cc', bn('bn_c', h), 3, 'same'); // same 3×3 pads: refused
    const d = conv('cd', ap(tfl.layers.zeroPadding2d({ padding: 1, name: 'pad_d' }), bn('bn_d', h)), 3, 'valid'); // BN → pad → conv: refused
    const e = ap(tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'valid', depthMultiplier: 2, depthwiseInitializer: init(5), name: 'ce' }), bn('bn_e', h));
    const s = ap(tfl.layers.separableConv2d({ filters: 4, kernelSize: 3, padding: 'valid', depthwiseInitializer: init(6), pointwiseInitializer: init(7), name: 'cs' }), bn('bn_s', h));
    const pooled = [a1, a2, b, c, d, e, s].map((t, i) => ap(tfl.layers.globalAveragePooling2d({ name: `gap${i}` }), t));
    const f = bn('bn_f', ap(tfl.layers.concatenate({ name: 'cat' }), pooled)); // rank-2 BN → Dense: folded
    return tfl.model({ inputs: input, outputs: ap(tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 9 }), name: 'out' }), f) });
  }

  it('folds a BatchNorm into the layers after it where exact (Dense, valid, 1×1, depthwise, separable), refuses it where the conv pads', async () => {
    clearWeightCache();
    const before = tf.memory().numTensors;
    const model = preActivation();
    expect(randomizeBatchNorms(model, 21)).toBe(8);
    const c = Classifier.fromModel(model);
    const { graph, folded } = canonize(c.graph!);
    expect(folded.map((f) => `${f.batchNorm}→${f.into}`).sort()).toEqual(
      ['bn_a→ca1', 'bn_a→ca2', 'bn_b→cb', 'bn_b2→cb', 'bn_e→ce', 'bn_f→out', 'bn_s→cs/depthwise'].sort(),
    );
    for (const kept of ['bn_c', 'bn_d']) expect(graph.byName.get(kept)!.kind, kept).toBe('batchnorm');
    const x = tf.randomUniform([3, 10, 10, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const d = tf.tidy(() => maxRelDiff(runGraph(graph, x).output, c.logits(x)));
    expect(d).toBeLessThan(1e-5);
    // on the bias-free model (BN mean and β zero, no conv bias) a BatchNorm is a pure per-channel scale,
    // and LRP-0 gives the same map whether it is folded into the next layer or passed as an element-wise
    // layer (R_x = x·s·R_y / (x·s) = R_y): the folds change the graph the rules see, not the relevance
    for (const l of model.layers) {
      const ws = l.weights;
      if (!ws.length) continue;
      const old = l.getWeights();
      const vals = old.map((w, i) => (/(bias|beta|moving_mean)$/.test(ws[i].originalName ?? ws[i].name) ? tf.zerosLike(w) : w));
      l.setWeights(vals);
      tf.dispose(vals.filter((v, i) => v !== old[i]));
    }
    const folded0 = await explain('lrp', c, x, { options: { rule: 'lrp-0', stabilizer: 1e-9 }, skipRangeCheck: true });
    const plain0 = await explain('lrp', c, x, { options: { rule: 'lrp-0', stabilizer: 1e-9, canonize: false }, skipRangeCheck: true });
    expect((folded0.extras.foldedBatchNorms as string[]).sort()).toEqual(['bn_a', 'bn_b', 'bn_b2', 'bn_e', 'bn_f', 'bn_s']);
    expect((plain0.extras.foldedBatchNorms as string[])).toEqual([]);
    const rel = tf.tidy(() => tf.div(tf.norm(tf.sub(folded0.attribution, plain0.attribution)), tf.norm(plain0.attribution)).dataSync()[0]);
    console.log(`folded vs unfolded LRP-0: rel L2 ${rel.toExponential(2)}`);
    expect(rel).toBeLessThan(1e-5);
    folded0.dispose();
    plain0.dispose();
    x.dispose();
    model.dispose();
    clearWeightCache();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a model\'s input normalisation (BatchNorm right after the input) is not folded into the first conv', () => {
    const input = tfl.input({ shape: [6, 6, 3] });
    const n = tfl.layers.batchNormalization({ name: 'norm' }).apply(input) as tfl.SymbolicTensor;
    const y = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'valid', name: 'conv' }).apply(n) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, name: 'out' }).apply(tfl.layers.flatten().apply(y) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    const c = Classifier.fromModel(model);
    const { folded } = canonize(c.graph!);
    expect(folded).toEqual([]);
    model.dispose();
  });
});
