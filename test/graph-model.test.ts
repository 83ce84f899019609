/**
 * TF.js graph models (tfjs-converter "graph-model" JSON) run by Glasswing's own executor: every
 * supported op against stock tfjs-converter's execute on the same files, gradients against a
 * LayersModel twin, quantised weights, unsupported ops and corrupt files, every kind of method on a
 * graph model, and one ImageNet-size model (224×224, batch 2).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import { pathToFileURL } from 'node:url';
import { resetBackend } from '../src/engine/recovery.js';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { explain } from '../src/core/registry.js';
import '../src/attribution/index.js';
import { ModelLoadError, UnsupportedLayerError } from '../src/core/errors.js';
import { buildInceptionShaped, buildMobileNetV2Shaped, buildResNet50Shaped } from '../src/models/imagenet-shapes.js';
import { exportGraphModel, saveGraphModel } from '../src/models/graph-model-export.js';
import { GRAPH_MODEL_OPS } from '../src/models/graph-model.js';
import { batchedGradient } from '../src/attribution/math.js';
import { clearWeightCache } from '../src/attribution/propagation/weight-cache.js';

const inputGradients = (c: Classifier, x: tf.Tensor4D, t: number[]) => batchedGradient(c, x, t);
import { GraphModelBuilder, a, rand, relL2, stockGraphModel } from './support/graph-model-builder.js';

const conv = (stride = 1, pad = 'SAME') => ({
  strides: a.ints([1, stride, stride, 1]), padding: a.s(pad), data_format: a.s('NHWC'), dilations: a.ints([1, 1, 1, 1]), explicit_paddings: { list: {} },
});
const fused = (ops: string[], n = 1) => ({ fused_ops: a.strs(ops), num_args: a.i(n), epsilon: a.f(0) });

/** Graph A: input normalisation, the convolution family with every fused activation, pools, BN, gates, Mean/Squeeze, matmuls, Softmax. */
function graphA(): GraphModelBuilder {
  const g = new GraphModelBuilder();
  const x = g.input('x', [-1, 8, 8, 3]);
  let t = g.op('norm/sub', 'Sub', [x, g.const('mean', [0.4, 0.5, 0.6], [3])]);
  t = g.op('norm/div', 'RealDiv', [t, g.const('std', [0.2, 0.25, 0.3], [3])]);
  t = g.op('norm/mul', 'Mul', [g.const('scale', [1.5], []), t]);
  t = g.op('norm/add', 'AddV2', [t, g.const('off', [0.1, -0.1, 0.05], [1, 1, 1, 3])]);
  t = g.op('flip', 'Sub', [g.const('c0', [0.2], []), t]);
  t = g.op('c1', '_FusedConv2D', [t, g.randConst('c1/w', [3, 3, 3, 8]), g.randConst('c1/b', [8], 0.1)], { ...conv(), ...fused(['BiasAdd', 'Relu']) });
  t = g.op('dw', 'FusedDepthwiseConv2dNative', [t, g.randConst('dw/w', [3, 3, 8, 1], 1), g.randConst('dw/b', [8], 0.1)], { ...conv(2), ...fused(['BiasAdd', 'Relu6']) });
  t = g.op('c3', 'Conv2D', [t, g.randConst('c3/w', [3, 3, 8, 8])], { ...conv(1, 'EXPLICIT'), explicit_paddings: a.ints([0, 0, 1, 0, 0, 1, 0, 0]) });
  t = g.op('c3/bias', 'BiasAdd', [t, g.randConst('c3/b', [8], 0.1)], { data_format: a.s('NHWC') });
  t = g.op('elu', 'Elu', [t]);
  t = g.op('dw2', 'DepthwiseConv2dNative', [t, g.randConst('dw2/w', [2, 2, 8, 2])], conv(1, 'VALID'));
  t = g.op('lrelu', 'LeakyRelu', [t], { alpha: a.f(0.1) });
  t = g.op('padv2', 'PadV2', [t, g.const('padv2/p', [0, 0, 1, 1, 1, 1, 0, 0], [4, 2], 'int32'), g.const('padv2/v', [0.25], [])]);
  t = g.op('c4', '_FusedConv2D', [t, g.randConst('c4/w', [1, 1, 16, 8]), g.randConst('c4/b', [8], 0.1)], { ...conv(), ...fused(['BiasAdd', 'LeakyRelu']), leakyrelu_alpha: a.f(0.2) });
  t = g.op('c5', '_FusedConv2D', [t, g.randConst('c5/w', [3, 3, 8, 8]), g.randConst('c5/b', [8], 0.1), g.randConst('c5/alpha', [8], 0.3)], { ...conv(), ...fused(['BiasAdd', 'Prelu'], 2) });
  const mp = g.op('mp', 'MaxPool', [t], { ksize: a.ints([1, 2, 2, 1]), strides: a.ints([1, 2, 2, 1]), padding: a.s('VALID'), data_format: a.s('NHWC') });
  const ap = g.op('ap', 'AvgPool', [t], { ksize: a.ints([1, 3, 3, 1]), strides: a.ints([1, 2, 2, 1]), padding: a.s('SAME'), data_format: a.s('NHWC') });
  t = g.op('cat', 'ConcatV2', [mp, ap, g.const('cat/axis', [3], [], 'int32')], { N: a.i(2), Tidx: { type: 'DT_INT32' } });
  const bn = g.op('bn', 'FusedBatchNormV3', [t, g.randConst('bn/g', [16], 0.5, 0.5), g.randConst('bn/b', [16], 0.2), g.randConst('bn/m', [16], 0.3), g.randConst('bn/v', [16], 1.5, 0.5)],
    { epsilon: a.f(0.001), data_format: a.s('NHWC'), is_training: a.b(false) });
  const gate = g.op('gate', 'Mul', [g.op('sig', 'Sigmoid', [bn]), g.op('tanh', 'Tanh', [bn])]);
  t = g.op('res', 'AddV2', [gate, bn]);
  t = g.op('sg', 'StopGradient', [g.op('id', 'Identity', [t])]);
  t = g.op('gap', 'Mean', [t, g.const('gap/axes', [1, 2], [2], 'int32')], { keep_dims: a.b(true), Tidx: { type: 'DT_INT32' } });
  t = g.op('sq', 'Squeeze', [t], { squeeze_dims: a.ints([1, 2]) });
  t = g.op('ex', 'ExpandDims', [t, g.const('ex/axis', [-1], [], 'int32')]);
  t = g.op('sq2', 'Squeeze', [t], { squeeze_dims: a.ints([2]) });
  t = g.op('fc1', '_FusedMatMul', [t, g.randConst('fc1/w', [16, 12]), g.randConst('fc1/b', [12], 0.1)], { transpose_a: a.b(false), transpose_b: a.b(false), ...fused(['BiasAdd', 'Relu']) });
  t = g.op('fc2', 'MatMul', [t, g.randConst('fc2/w', [5, 12])], { transpose_a: a.b(false), transpose_b: a.b(true) });
  t = g.op('fc2/bias', 'BiasAdd', [t, g.randConst('fc2/b', [5], 0.1)]);
  g.op('prob', 'Softmax', [t]);
  return g;
}

/** Graph B: zero Pad, dilated Conv2D, BN as Mul/Add constants, Relu6, Prelu, Relu/Selu, AddN, Maximum/Minimum/ClipByValue by scalars, FusedBatchNorm (v1), global Max, Reshape, negative concat axis, Softplus output. */
function graphB(): GraphModelBuilder {
  const g = new GraphModelBuilder();
  const x = g.input('image', [-1, 10, 10, 3]);
  let t = g.op('pad', 'Pad', [x, g.const('pad/p', [0, 0, 1, 2, 2, 1, 0, 0], [4, 2], 'int32')]);
  t = g.op('dil', 'Conv2D', [t, g.randConst('dil/w', [3, 3, 3, 6])], { ...conv(1, 'VALID'), dilations: a.ints([1, 2, 2, 1]) });
  t = g.op('bn/mul', 'Mul', [t, g.randConst('bn/s', [6], 1, 0.5)]);
  t = g.op('bn/add', 'AddV2', [t, g.randConst('bn/t', [6], 0.3)]);
  t = g.op('r6', 'Relu6', [t]);
  t = g.op('prelu', 'Prelu', [t, g.randConst('prelu/a', [6], 0.4)]);
  const c2 = g.op('c2', 'Conv2D', [t, g.randConst('c2/w', [3, 3, 6, 6])], conv(2));
  t = g.op('sum', 'AddN', [g.op('relu', 'Relu', [c2]), g.op('selu', 'Selu', [c2]), c2], { N: a.i(3) });
  t = g.op('diff', 'Sub', [t, g.op('relu2', 'Relu', [c2])]);
  t = g.op('floor', 'Maximum', [t, g.const('floor/v', [-0.5], [])]);
  t = g.op('ceil', 'Minimum', [g.const('ceil/v', [2.5], []), t]);
  t = g.op('clip06', 'ClipByValue', [t, g.const('clip06/lo', [0], []), g.const('clip06/hi', [6], [])]);
  t = g.op('clipab', 'ClipByValue', [g.op('wide', 'Mul', [t, g.const('wide/s', [3], [])]), g.const('clipab/lo', [0.5], []), g.const('clipab/hi', [5], [])]);
  t = g.op('bn1', 'FusedBatchNorm', [t, g.randConst('bn1/g', [6], 0.5, 0.5), g.randConst('bn1/b', [6], 0.2), g.randConst('bn1/m', [6], 0.3), g.randConst('bn1/v', [6], 1.5, 0.5)],
    { epsilon: a.f(0.01), data_format: a.s('NHWC'), is_training: a.b(false) });
  const mx = g.op('gmax', 'Max', [t, g.const('gmax/axes', [1, 2], [2], 'int32')], { keep_dims: a.b(false), Tidx: { type: 'DT_INT32' } });
  const fl = g.op('flat', 'Reshape', [t, g.const('flat/shape', [-1, 150], [2], 'int32')]);
  const mm = g.op('mm', 'MatMul', [fl, g.randConst('mm/w', [150, 4], 0.2)], { transpose_a: a.b(false), transpose_b: a.b(false) });
  t = g.op('cat', 'ConcatV2', [mx, mm, g.const('cat/axis', [-1], [], 'int32')], { N: a.i(2) });
  g.op('out', 'Softplus', [t]);
  return g;
}

function images(n: number, h: number, w: number, seed: number, lo = 0, hi = 1): tf.Tensor4D {
  return tf.tensor4d(rand(n * h * w * 3, seed, lo, hi), [n, h, w, 3]);
}

let tmp: string;
beforeAll(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'glasswing-graph-'));
});

describe('graph models: every supported op', () => {
  for (const [name, build, outSoftmax] of [['A', graphA, true], ['B', graphB, false]] as const) {
    it(`graph ${name}: logits equal stock tfjs-converter execute`, async () => {
      const { modelJson, weights } = build().build();
      const before = tf.memory().numTensors;
      const c = await Classifier.fromGraphModel({ modelJson, weights });
      expect(tf.memory().numTensors - before).toBe(c.graphWeights.length); // loading leaves only the weights
      const stock = await stockGraphModel(modelJson, weights);
      const x = images(3, name === 'A' ? 8 : 10, name === 'A' ? 8 : 10, 7);
      const ours = outSoftmax ? c.probabilities(x) : c.logits(x);
      const ref = stock.execute(x) as tf.Tensor;
      expect(ours.shape).toEqual(ref.shape);
      expect(relL2(ours, ref)).toBeLessThan(2e-6);
      expect(c.strippedSoftmax).toBe(outSoftmax);
      tf.dispose([ours, ref, x]);
      stock.dispose();
      c.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('lists TF node names as layers (fused ops split into NAME/preact + NAME) and splits at any of them', async () => {
    const { modelJson, weights } = graphA().build();
    const c = await Classifier.fromGraphModel({ modelJson, weights });
    const layers = c.layers();
    const byName = new Map(layers.map((l) => [l.name, l]));
    expect(byName.get('c1/preact')).toMatchObject({ kind: 'conv2d', layerName: 'c1', layerClass: '_FusedConv2D', shape: [8, 8, 8] });
    expect(byName.get('c1')).toMatchObject({ kind: 'activation', activation: 'relu' });
    expect(byName.get('dw')).toMatchObject({ kind: 'activation', activation: 'relu6', shape: [4, 4, 8] });
    expect(byName.get('dw/preact')!.kind).toBe('depthwise-conv2d');
    expect(byName.get('c3/pad')).toMatchObject({ kind: 'zeropad' });
    expect(byName.get('c3/bias')).toMatchObject({ kind: 'conv2d', shape: [3, 3, 8] }); // BiasAdd folded into the conv
    expect(byName.has('c3')).toBe(false);
    expect(byName.get('c5')).toMatchObject({ kind: 'activation', activation: 'prelu' });
    expect(byName.get('norm/sub')!.kind).toBe('batchnorm');
    expect(byName.get('gap/pool')!.kind).toBe('global-avgpool');
    expect(byName.get('sq')).toMatchObject({ kind: 'reshape', shape: [16] });
    expect(byName.get('fc2/bias')).toMatchObject({ kind: 'dense', shape: [5] });
    expect(byName.has('id') || byName.has('sg')).toBe(false); // Identity / StopGradient resolved away
    expect(() => c.node('c3')).toThrow(/got "c3", a source node computed by node "c3\/bias".*use "c3\/bias"/);
    expect(() => c.node('sg')).toThrow(/computed by node "res"/);
    expect(c.convLayers()).toContain('c5');
    // split at a named node: head + tail = logits
    const x = images(2, 8, 8, 3);
    const s = c.split('cat');
    const [full, parts] = tf.tidy(() => [c.logits(x), s.tail(s.head(x), x)]);
    expect(relL2(parts, full)).toBeLessThan(1e-6);
    const acts = c.activations(x, ['c4', 'bn']);
    expect(acts.get('c4')!.shape).toEqual([2, 4, 4, 8]);
    tf.dispose([...acts.values(), full, parts, x]);
    c.dispose();
  });

  it('every op in GRAPH_MODEL_OPS is exercised by a graph here or named as bookkeeping', () => {
    const used = new Set([...graphA().nodes, ...graphB().nodes].map((n) => n.op));
    const bookkeeping = ['PlaceholderWithDefault', 'NoOp', 'Snapshot', 'DepthwiseConv2d', 'Concat', 'Add', 'Cast']; // Add, Concat, Cast, NoOp, PlaceholderWithDefault: the next test
    for (const op of GRAPH_MODEL_OPS) if (!bookkeeping.includes(op)) expect(used.has(op), op).toBe(true);
  });

  it('control inputs, NoOp, casts to float and PlaceholderWithDefault are resolved away, unused Placeholders ignored; Add (v1) and the Concat (v1) axis-first form work', async () => {
    const g = new GraphModelBuilder();
    const x = g.input('x', [-1, 4, 4, 2]);
    g.nodes.push({ name: 'init', op: 'NoOp' });
    const xf = g.op('to-float', 'Cast', [x], { SrcT: { type: 'DT_UINT8' }, DstT: { type: 'DT_FLOAT' } });
    const y = g.op('y', 'Add', [xf, g.op('one-f', 'Cast', [g.const('one', [1], [], 'int32')], { DstT: { type: 'DT_FLOAT' } }), '^init']);
    const cat = g.op('cat', 'Concat', [g.const('axis', [3], [], 'int32'), y, x], { N: a.i(2) });
    // a PlaceholderWithDefault stands for its default; a Placeholder the output does not need is ignored
    g.input('unused_aux', [-1, 3]);
    const scale = g.op('scale', 'PlaceholderWithDefault', [g.const('scale/default', [2], [])], { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [] } } });
    const scaled = g.op('scaled', 'Mul', [cat, scale]);
    g.op('gap', 'Mean', [scaled, g.const('ax', [1, 2], [2], 'int32')], { keep_dims: a.b(false) });
    const { modelJson, weights } = g.build();
    const c = await Classifier.fromGraphModel({ modelJson, weights });
    const x3 = images(1, 4, 4, 5);
    const xv = tf.slice(x3, [0, 0, 0, 0], [1, 4, 4, 2]);
    x3.dispose();
    const got = c.logits(xv);
    const want = tf.mul(tf.concat([tf.add(tf.mean(xv, [1, 2]), 1), tf.mean(xv, [1, 2])], 1), 2);
    expect(relL2(got, want)).toBeLessThan(1e-6);
    tf.dispose([xv, got, want]);
    c.dispose();
  });
});

describe('graph models from LayersModels (converter-style export)', () => {
  const builds: Array<[string, () => tfl.LayersModel, number]> = [
    ['mobilenetv2', () => buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 1, lastFilters: 64, numClasses: 7, seed: 3 }), 32],
    ['resnet50', () => buildResNet50Shaped({ inputShape: [32, 32, 3], width: 0.125, blocks: [1, 1, 1, 1], numClasses: 7, seed: 3 }), 32],
    ['inception', () => buildInceptionShaped({ inputShape: [75, 75, 3], width: 0.125, blocks: { a: 1, c: 1, e: 1 }, numClasses: 7, seed: 3 }), 75],
  ];
  for (const [name, build, size] of builds) {
    for (const fold of [false, true]) {
      it(`${name}${fold ? ' (BatchNorm folded)' : ''}: logits equal stock execute and model.predict; gradients equal the LayersModel twin's`, async () => {
        const model = build();
        const art = exportGraphModel(model, { foldBatchNorm: fold, shardBytes: 64 * 1024 });
        const dir = path.join(tmp, `${name}-${fold}`);
        await saveGraphModel(art, dir);
        const shards = fs.readdirSync(dir).filter((f) => f.endsWith('.bin'));
        expect(shards.length).toBeGreaterThanOrEqual(1);
        const g = await Classifier.fromGraphModel(dir);
        const twin = Classifier.fromModel(model);
        const weights = Buffer.concat(art.modelJson.weightsManifest[0].paths.map((f) => fs.readFileSync(path.join(dir, f))));
        const stock = await stockGraphModel(art.modelJson, weights);
        const x = images(2, size, size, 11);
        const before = tf.memory().numTensors;
        const ours = g.logits(x);
        const probs = tf.softmax(ours);
        const ref = stock.execute(x) as tf.Tensor;
        const predicted = model.predict(x) as tf.Tensor;
        expect(relL2(probs, ref)).toBeLessThan(1e-5);
        expect(relL2(ours, twin.logits(x))).toBeLessThan(fold ? 1e-4 : 1e-5);
        expect(relL2(probs, predicted)).toBeLessThan(1e-4);
        const gg = inputGradients(g, x, [1, 4]);
        const gt = inputGradients(twin, x, [1, 4]);
        // float32 and ReLU6 kinks (folding BatchNorm changes rounding): the gradient family's band
        expect(relL2(gg, gt)).toBeLessThan(fold ? 5e-3 : 1e-5);
        tf.dispose([ours, probs, ref, predicted, gg, gt]);
        expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 2); // twin.logits' result
        stock.dispose();
        x.dispose();
        g.dispose();
        model.dispose();
      }, 60_000);
    }
  }
});

describe('quantised weights', () => {
  for (const q of ['uint8', 'uint16', 'float16'] as const) {
    it(`${q}: dequantised on load, logits equal stock execute on the same file and stay close to float32`, async () => {
      const model = buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 1, lastFilters: 32, numClasses: 5, seed: 5 });
      const art = exportGraphModel(model, { foldBatchNorm: true, quantize: q });
      const entries = art.modelJson.weightsManifest[0].weights;
      expect(entries.some((e) => e.quantization?.dtype === q)).toBe(true);
      const bytes = [...art.shards.values()][0];
      const full = exportGraphModel(model, { foldBatchNorm: true });
      expect(bytes.byteLength).toBeLessThan([...full.shards.values()][0].byteLength / (q === 'uint8' ? 3 : 1.9));
      const c = await Classifier.fromGraphModel({ modelJson: art.modelJson, weights: art.shards });
      const cf = await Classifier.fromGraphModel({ modelJson: full.modelJson, weights: full.shards });
      const stock = await stockGraphModel(art.modelJson, bytes);
      const x = images(2, 32, 32, 2);
      const p = tf.softmax(c.logits(x));
      const ref = stock.execute(x) as tf.Tensor;
      expect(relL2(p, ref)).toBeLessThan(1e-5);
      // quantisation error is real but bounded
      const err = relL2(c.logits(x), cf.logits(x));
      expect(err).toBeGreaterThan(q === 'float16' ? 0 : 1e-6);
      expect(err).toBeLessThan(q === 'uint8' ? 0.2 : 1e-2);
      tf.dispose([p, ref, x]);
      stock.dispose();
      c.dispose();
      cf.dispose();
      model.dispose();
    }, 60_000);
  }
});

describe('errors', () => {
  it('an unsupported op names the op and the node, on one line', async () => {
    const g = new GraphModelBuilder();
    const x = g.input('x', [-1, 4, 4, 3]);
    g.op('mystery/op', 'Cumsum', [x, g.const('ax', [1], [], 'int32')]);
    const { modelJson, weights } = g.build();
    const err = await Classifier.fromGraphModel({ modelJson, weights }).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedLayerError);
    expect(err.message).toMatch(/node "mystery\/op" has op Cumsum/);
    expect(err.message).not.toContain('\n');
  });

  it('an op used outside what Glasswing supports says why (RealDiv of two tensors, per-pixel constant, non-spatial Mean, a second output)', async () => {
    const cases: Array<[(g: GraphModelBuilder, x: string) => void, RegExp]> = [
      [(g, x) => g.op('d', 'RealDiv', [x, g.op('r', 'Relu', [x])]), /node "d" \(op RealDiv\).*two computed tensors/],
      [(g, x) => g.op('m', 'Mul', [x, g.randConst('px', [1, 4, 4, 3])]), /node "m" \(op Mul\).*per-channel/],
      [(g, x) => g.op('mean', 'Mean', [x, g.const('ax', [3], [1], 'int32')]), /node "mean" \(op Mean\).*spatial axes/],
      [(g, x) => g.op('r', 'Relu', [`${g.op('bn', 'FusedBatchNormV3', [x, ...['s', 'o', 'm', 'v'].map((k) => g.randConst(k, [3]))])}:1`]), /node "r" \(op Relu\).*output 1 of "bn"/],
    ];
    for (const [build, re] of cases) {
      const g = new GraphModelBuilder();
      build(g, g.input('x', [-1, 4, 4, 3]));
      const { modelJson, weights } = g.build();
      const err = await Classifier.fromGraphModel({ modelJson, weights }).catch((e) => e);
      expect(err).toBeInstanceOf(UnsupportedLayerError);
      expect(err.message).toMatch(re);
    }
  });

  it('corrupt or missing files give ModelLoadError and leak no tensors', async () => {
    const { modelJson, weights } = graphB().build();
    const dir = path.join(tmp, 'corrupt');
    fs.mkdirSync(dir, { recursive: true });
    const before = tf.memory().numTensors;
    const write = (json: string, bin: Uint8Array | null) => {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'model.json'), json);
      if (bin) fs.writeFileSync(path.join(dir, 'group1-shard1of1.bin'), bin);
    };
    const nan = weights.slice();
    new Float32Array(nan.buffer, 32, 1)[0] = NaN; // dil/w, after the 8 int32 paddings
    const cases: Array<[string, Uint8Array | null, RegExp]> = [
      ['{"format": "graph-model", "modelTop', weights, /valid JSON/],
      [JSON.stringify({ ...modelJson, weightsManifest: undefined }), weights, /weightsManifest/],
      [JSON.stringify(modelJson), null, /weight file .*group1-shard1of1\.bin/],
      [JSON.stringify(modelJson), weights.slice(0, weights.length - 8), /expected \d+ bytes of weights.*got \d+ bytes/],
      [JSON.stringify(modelJson), nan, /finite weights/],
      [JSON.stringify({ ...modelJson, format: 'layers-model' }), weights, /graph-model/],
    ];
    for (const [json, bin, re] of cases) {
      write(json, bin);
      const err = await Classifier.fromGraphModel(dir).catch((e) => e);
      expect(err, String(re)).toBeInstanceOf(ModelLoadError);
      expect(err.message).toMatch(re);
    }
    const missing = await Classifier.fromGraphModel(path.join(tmp, 'nope')).catch((e) => e);
    expect(missing).toBeInstanceOf(ModelLoadError);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an open input size needs inputShape; a wrong one is refused', async () => {
    const model = buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 1, lastFilters: 16, numClasses: 3, seed: 2 });
    const art = exportGraphModel(model, { dynamicSize: true });
    await expect(Classifier.fromGraphModel({ modelJson: art.modelJson, weights: art.shards })).rejects.toThrow(/give the image size/);
    const c = await Classifier.fromGraphModel({ modelJson: art.modelJson, weights: art.shards }, { inputShape: [48, 40, 3] });
    expect(c.inputShape).toEqual([48, 40, 3]);
    const x = images(1, 48, 40, 1);
    expect(c.logits(x).shape).toEqual([1, 3]);
    x.dispose();
    c.dispose();
    const fixed = exportGraphModel(model);
    await expect(Classifier.fromGraphModel({ modelJson: fixed.modelJson, weights: fixed.shards }, { inputShape: [48, 40, 3] })).rejects.toThrow(ModelLoadError);
    model.dispose();
  });
});

describe('methods on a graph model', () => {
  it('gradient, grad-cam on a named node, lrp, guided-backprop and integrated-gradients equal the LayersModel twin, without leaks', async () => {
    const model = buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 1, lastFilters: 32, numClasses: 6, seed: 9, softmax: true });
    const art = exportGraphModel(model);
    const g = await Classifier.fromGraphModel({ modelJson: art.modelJson, weights: art.shards });
    const twin = Classifier.fromModel(model);
    const x = images(2, 32, 32, 4);
    const runs: Array<[string, Record<string, unknown>, number]> = [
      ['gradient', {}, 1e-5],
      ['grad-cam', { layer: 'block_1_expand_relu' }, 1e-5],
      ['lrp', { composite: 'epsilon-plus-flat' }, 1e-4],
      ['guided-backprop', {}, 1e-5],
      ['integrated-gradients', { steps: 8 }, 1e-5],
    ];
    const before = tf.memory().numTensors;
    for (const [method, options, tol] of runs) {
      const eg = await explain(method, g, x, { target: [2, 'predicted'], options });
      const et = await explain(method, twin, x, { target: [2, 'predicted'], options });
      expect(eg.target).toEqual(et.target);
      expect(eg.attribution.shape).toEqual(et.attribution.shape);
      const d = relL2(eg.attribution, et.attribution);
      expect(d, method).toBeLessThan(tol);
      expect(tf.tidy(() => tf.norm(eg.attribution).dataSync()[0])).toBeGreaterThan(0);
      eg.dispose();
      et.dispose();
    }
    clearWeightCache(); // LRP keeps canonized weights per graph between calls
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    g.dispose();
    model.dispose();
  }, 120_000);
});

describe('an ImageNet-size graph model', () => {
  it('MobileNetV2-shaped at 224×224, batch 2: logits equal stock execute, gradient equals the LayersModel twin', async () => {
    const model = buildMobileNetV2Shaped({ inputShape: [224, 224, 3], alpha: 0.5, numClasses: 100, seed: 4 });
    const art = exportGraphModel(model, { foldBatchNorm: true, shardBytes: 1 << 20 });
    const dir = path.join(tmp, 'mnv2-224');
    await saveGraphModel(art, dir);
    expect(art.shards.size).toBeGreaterThan(1);
    const g = await Classifier.fromGraphModel(dir);
    expect(g.inputShape).toEqual([224, 224, 3]);
    const twin = Classifier.fromModel(model);
    const stock = await stockGraphModel(art.modelJson, Buffer.concat([...art.shards.values()]));
    const x = images(2, 224, 224, 8);
    const t0 = performance.now();
    const ours = g.logits(x);
    const tForward = performance.now() - t0;
    const ref = stock.execute(x) as tf.Tensor;
    expect(relL2(tf.softmax(ours), ref)).toBeLessThan(1e-5);
    const t1 = performance.now();
    const gg = inputGradients(g, x, [3, 50]);
    const tGrad = performance.now() - t1;
    const gt = inputGradients(twin, x, [3, 50]);
    expect(relL2(gg, gt)).toBeLessThan(5e-3);
    console.log(`graph model MobileNetV2(α 0.5) 224² batch 2: forward ${tForward.toFixed(0)} ms, input gradient ${tGrad.toFixed(0)} ms, ${g.layers().length} nodes, gradient vs twin ${relL2(gg, gt).toExponential(2)}`);
    tf.dispose([ours, ref, gg, gt, x]);
    stock.dispose();
    g.dispose();
    model.dispose();
  }, 180_000);
});

describe('sources and recovery', () => {
  it('loads from an http URL (a local server), a file: URL and a model.json path alike', async () => {
    const { modelJson, weights } = graphB().build();
    const dir = path.join(tmp, 'served');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJson));
    fs.writeFileSync(path.join(dir, 'group1-shard1of1.bin'), weights);
    const server = http.createServer((req, res) => {
      const f = path.join(dir, path.normalize(req.url ?? '/').replace(/^(\.\.[/\\])+/, ''));
      if (!fs.existsSync(f) || !fs.statSync(f).isFile()) { res.statusCode = 404; res.end(); return; }
      res.end(fs.readFileSync(f));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const x = images(1, 10, 10, 3);
      const ref = await Classifier.fromGraphModel({ modelJson, weights });
      const want = ref.logits(x);
      for (const src of [`http://127.0.0.1:${port}/model.json`, `http://127.0.0.1:${port}/`, pathToFileURL(dir).href, path.join(dir, 'model.json')]) {
        const c = await Classifier.fromGraphModel(src);
        const got = c.logits(x);
        expect(relL2(got, want), src).toBe(0);
        got.dispose();
        c.dispose();
      }
      await expect(Classifier.fromGraphModel(`http://127.0.0.1:${port}/missing/model.json`)).rejects.toThrow(/HTTP 404/);
      tf.dispose([x, want]);
      ref.dispose();
    } finally {
      server.close();
    }
  });

  it('a backend reset restores a graph model\'s weights from the snapshot explain took', async () => {
    if (tf.getBackend() !== 'wasm') return;
    const { modelJson, weights } = graphA().build();
    const c = await Classifier.fromGraphModel({ modelJson, weights });
    const x = images(2, 8, 8, 4);
    const want = c.logits(x);
    (await explain('gradient', c, x)).dispose(); // guarded: snapshots the classifier's weights
    // scribble over every weight on the wasm heap, as an abort might
    const b = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array }; dataIdMap: { get(id: object): { memoryOffset: number } } };
    for (const w of c.graphWeights) b.wasm.HEAPU8.fill(0x7f, b.dataIdMap.get(w.dataId).memoryOffset, b.dataIdMap.get(w.dataId).memoryOffset + w.size * 4);
    await resetBackend();
    const got = c.logits(x);
    expect(relL2(got, want)).toBe(0);
    tf.dispose([x, want, got]);
    c.dispose();
  });
});
