/**
 * Model folders with glasswing.json (preprocessing and class names), photos of any size, maps back
 * onto the photo, targets by class name, and rendering on colour photos — for a layers model and a
 * graph model of the same network.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { explain } from '../src/core/registry.js';
import '../src/attribution/index.js';
import { ModelLoadError, TargetError } from '../src/core/errors.js';
import { parseTarget } from '../src/core/target.js';
import { mapToPhoto, parseGlasswingJson, photoGeometry } from '../src/core/preprocessing.js';
import { loadClassifier } from '../src/models/load.js';
import { classifierFromFiles, parseLabels } from '../src/models/model-files.js';
import { loadPhoto } from '../src/data/photo.js';
import { renderOnPhoto, renderTopK, topK } from '../src/render/photo.js';
import { buildPhotoModel, CLASS_NAMES, GLASSWING, writePhoto, writePhotoModels } from './support/photo-models.js';
import { GraphModelBuilder, a, relL2 } from './support/graph-model-builder.js';
import { clearWeightCache } from '../src/attribution/propagation/weight-cache.js';

let tmp: string;
let model: tfl.LayersModel;
let dirs: { layers: string; graph: string };
let jpeg: string;
let png: string;

beforeAll(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'glasswing-folder-'));
  model = buildPhotoModel();
  dirs = await writePhotoModels(tmp, model);
  jpeg = path.join(tmp, 'wide.jpg');
  png = path.join(tmp, 'tall.png');
  writePhoto(jpeg, 300, 200);
  writePhoto(png, 120, 160);
});

/** Mean of one channel of [1, h, w, 3] over columns [c0, c1). */
function channelMean(x: tf.Tensor4D, ch: number, c0 = 0, c1 = x.shape[2]): number {
  return tf.tidy(() => tf.mean(tf.slice(x, [0, 0, c0, ch], [1, -1, c1 - c0, 1])).dataSync()[0]);
}

describe('loadClassifier with glasswing.json', () => {
  it('layers and graph model: class names from the labels file, range and mean/std, the same logits, = model.predict on normalised input', async () => {
    const before = tf.memory().numTensors;
    const cl = await loadClassifier(dirs.layers);
    const cg = await loadClassifier(dirs.graph);
    for (const c of [cl, cg]) {
      expect(c.classNames).toEqual(CLASS_NAMES);
      expect(c.inputShape).toEqual([64, 64, 3]);
      expect([c.domain.low, c.domain.high]).toEqual([0, 255]);
      expect(c.layers()[0]).toMatchObject({ name: 'preprocess', kind: 'batchnorm', layerClass: 'Preprocessing' });
      expect(c.preprocessing?.resize).toBe('center-crop');
    }
    expect(cl.name).toBe('layers');
    const { input } = await loadPhoto(jpeg, cg);
    const ref = tf.tidy(() => model.predict(tf.div(tf.sub(input, GLASSWING.mean), GLASSWING.std)) as tf.Tensor);
    const [pl, pg] = [cl.probabilities(input), cg.probabilities(input)];
    expect(relL2(pl, ref)).toBeLessThan(1e-5);
    expect(relL2(pg, ref)).toBeLessThan(1e-4);
    tf.dispose([input, ref, pl, pg]);
    cg.dispose();
    cl.dispose();
    cl.model!.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('load options override glasswing.json field by field; bad files say what is wrong', async () => {
    const c = await loadClassifier(dirs.graph, { range: [0, 1], mean: [0.5], std: [0.25], classNames: ['a', 'b', 'c', 'd', 'e'] });
    expect([c.domain.low, c.domain.high]).toEqual([0, 1]);
    expect(c.classNames).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(c.preprocessing).toMatchObject({ range: [0, 1], mean: [0.5], std: [0.25], resize: 'center-crop' });
    c.dispose();
    expect(() => parseGlasswingJson({ meen: [1, 2, 3] })).toThrow(/unknown field "meen"/);
    expect(() => parseGlasswingJson({ range: [1, 0] })).toThrow(/low < high/);
    expect(() => parseGlasswingJson({ resize: 'zoom' })).toThrow(/center-crop/);
    expect(parseGlasswingJson({ range: '[-1, 1]', inputSize: 299 })).toMatchObject({ range: [-1, 1], inputSize: [299, 299] });
    const files = new Map<string, Uint8Array | string>();
    for (const f of fs.readdirSync(dirs.graph)) files.set(`my-model/${f}`, fs.readFileSync(path.join(dirs.graph, f)));
    files.set('my-model/labels.txt', ['background', ...CLASS_NAMES].join('\n'));
    await expect(classifierFromFiles(files, {}, 'my-model')).rejects.toThrow(/expected 5 class names.*got 6.*labelsOffset/);
    const shifted = await classifierFromFiles(files, { labelsOffset: 1 }, 'my-model');
    expect(shifted.classNames).toEqual(CLASS_NAMES);
    shifted.dispose();
    files.delete('my-model/group1-shard1of1.bin');
    await expect(classifierFromFiles(files, {}, 'my-model')).rejects.toThrow(ModelLoadError);
    await expect(loadClassifier(dirs.layers, { inputSize: [32, 32] })).rejects.toThrow(/inputSize \[32, 32\].*takes \[64, 64\]/);
    expect(parseLabels('0: cat\n1: dog\n')).toEqual(['cat', 'dog']);
    expect(parseLabels('tench, Tinca tinca\r\ngoldfish\n\n')).toEqual(['tench, Tinca tinca', 'goldfish']);
  });
});

describe('photos', () => {
  it('center-crop keeps the centre square of a wide photo; stretch keeps the red borders; pad fills around a tall photo', async () => {
    const c = await loadClassifier(dirs.graph);
    const crop = await loadPhoto(jpeg, c);
    expect(crop.input.shape).toEqual([1, 64, 64, 3]);
    expect(crop.info).toMatchObject({ width: 300, height: 200, scaleX: 200 / 64, offsetX: 50, offsetY: 0, policy: 'center-crop' });
    expect(channelMean(crop.input, 0, 2, 62)).toBeLessThan(40); // no red inside
    const stretch = await loadPhoto(jpeg, { inputShape: [64, 64, 3], preprocessing: { ...c.preprocessing, resize: 'stretch' } });
    expect(channelMean(stretch.input, 0, 0, 4)).toBeGreaterThan(200); // red border columns
    const pad = await loadPhoto(png, { inputShape: [64, 64, 3], preprocessing: { ...c.preprocessing, resize: 'pad', padValue: 255 } });
    expect(pad.info).toMatchObject({ scaleX: 2.5, offsetX: -20, offsetY: 0 });
    expect(channelMean(pad.input, 1, 0, 7)).toBeGreaterThan(250); // padding columns: padValue 255
    expect(channelMean(pad.input, 0, 10, 54)).toBeGreaterThan(0);
    tf.dispose([crop.input, stretch.input, pad.input]);
    c.dispose();
  });

  it('BGR models get their channels swapped; mapToPhoto undoes crop, resize and the swap', async () => {
    const c = await loadClassifier(dirs.graph, { channelOrder: 'bgr' });
    const { input, info } = await loadPhoto(jpeg, c);
    expect(channelMean(input, 2)).toBeLessThan(40); // red (≈20 in the centre) is now the last channel
    expect(channelMean(input, 0)).toBeGreaterThan(120);
    const back = mapToPhoto(input, info);
    expect(back.shape).toEqual([200, 300, 3]);
    const v = back.arraySync() as number[][][];
    expect(v[100][20]).toEqual([0, 0, 0]); // outside the crop: 0
    // inside: the photo's own pixels again, in RGB order (JPEG and two resamplings: a few levels off)
    for (const [y, x] of [[100, 150], [40, 80], [170, 220]]) {
      const want = [20, Math.round(60 + (150 * (x - 50)) / 200), Math.round(90 + (140 * y) / 200)];
      v[y][x].forEach((got, k) => expect(Math.abs(got - want[k]), `(${y},${x}) ch ${k}`).toBeLessThan(8));
    }
    // a coarse map (Grad-CAM-sized) maps too
    const coarse = tf.ones([1, 4, 4, 1]);
    const m = mapToPhoto(coarse, info);
    expect(m.shape).toEqual([200, 300, 1]);
    expect((m.arraySync() as number[][][])[100][150][0]).toBeCloseTo(1, 5);
    tf.dispose([input, back, coarse, m]);
    c.dispose();
    expect(photoGeometry(100, 50, 10, 10, { resize: 'center-crop', cropFraction: 0.5 })).toMatchObject({ scaleX: 2.5, offsetX: 37.5, offsetY: 12.5 });
  });

  it('targets by class name (commas in names included) in explain, with a helpful error for unknown names', async () => {
    const c = await loadClassifier(dirs.graph);
    const { input } = await loadPhoto(jpeg, c);
    expect(parseTarget('tabby, tabby cat', c.classNames)).toBe(1);
    expect(parseTarget('Golden Retriever', c.classNames)).toBe(0);
    expect(parseTarget('goldfish,espresso', c.classNames)).toEqual([3, 4]);
    expect(() => parseTarget('golden', c.classNames)).toThrow(/no class name \(did you mean "golden retriever"\?\)/);
    const e = await explain('grad-cam', c, input, { target: 'tiger shark' });
    expect(e.target).toEqual([2]);
    e.dispose();
    await expect(explain('gradient', c, input, { target: 'siamese cat' })).rejects.toThrow(TargetError);
    input.dispose();
    c.dispose();
  });

  it('renders the map over the (desaturated) photo at photo size, and the top-k classes', async () => {
    const c = await loadClassifier(dirs.layers);
    const { input, info, raw } = await loadPhoto(jpeg, c);
    const e = await explain('gradient', c, input, { target: 'goldfish' });
    const img = renderOnPhoto(raw, info, e.attribution, { alpha: 0.7, desaturate: 1 });
    expect([img.width, img.height]).toEqual([300, 200]);
    const px = (x: number, y: number) => Array.from(img.data.slice(4 * (y * 300 + x), 4 * (y * 300 + x) + 3));
    const edge = px(10, 100); // outside the crop: no map, grey photo
    expect(edge[0]).toBe(edge[1]);
    expect(edge[1]).toBe(edge[2]);
    const plain = renderOnPhoto(raw, info, e.attribution, { alpha: 0 });
    expect(Array.from(plain.data.slice(4 * (100 * 300 + 10), 4 * (100 * 300 + 10) + 3))[0]).toBeGreaterThan(200); // red photo pixel kept
    const small = renderOnPhoto(raw, info, e.attribution, { maxSide: 150 });
    expect([small.width, small.height]).toEqual([150, 100]);
    const probs = c.probabilities(input);
    const p = probs.dataSync();
    const t = topK(p, 3);
    expect(t.map((r) => r.probability)).toEqual([...t.map((r) => r.probability)].sort((a, b) => b - a));
    expect(t[0].probability).toBeCloseTo(Math.max(...p), 6);
    const chart = renderTopK(p, c.classNames, { k: 3, highlight: t[0].index });
    expect(chart.width).toBe(360);
    expect(chart.height).toBeGreaterThan(3 * 20);
    const last = Array.from(p.keys()).sort((x, y) => p[x] - p[y])[0]; // the least likely class gets its own row
    expect(renderTopK(p, c.classNames, { k: 3, highlight: last }).height).toBeGreaterThan(chart.height);
    tf.dispose([input, probs]);
    e.dispose();
    c.model!.dispose();
    c.dispose();
  });
});

describe('relevance through input normalisation', () => {
  it('LRP passes relevance through the preprocess node and a graph model\'s Sub/RealDiv by constants: a bias-free model conserves', async () => {
    const m = tfl.sequential({ layers: [
      tfl.layers.conv2d({ inputShape: [12, 12, 3], filters: 4, kernelSize: 3, useBias: false, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, useBias: false, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
    ] });
    const pre = { range: [0, 255] as [number, number], mean: [120, 110, 100], std: [60, 50, 40] };
    const viaOptions = Classifier.fromModel(m, { preprocessing: pre });
    // the same network as a graph model whose normalisation is in the graph
    const g = new GraphModelBuilder();
    let t = g.op('sub', 'Sub', [g.input('x', [-1, 12, 12, 3]), g.const('mean', pre.mean, [3])]);
    t = g.op('div', 'RealDiv', [t, g.const('std', pre.std, [3])]);
    t = g.op('conv', '_FusedConv2D', [t, g.const('w', (m.layers[0].getWeights()[0]).dataSync(), [3, 3, 3, 4])],
      { strides: a.ints([1, 1, 1, 1]), padding: a.s('VALID'), dilations: a.ints([1, 1, 1, 1]), data_format: a.s('NHWC'), fused_ops: a.strs(['Relu']), num_args: a.i(0) });
    t = g.op('flat', 'Reshape', [t, g.const('shape', [-1, 400], [2], 'int32')]);
    g.op('out', 'MatMul', [t, g.const('d', m.layers[2].getWeights()[0].dataSync(), [400, 3])]);
    const { modelJson, weights } = g.build();
    const inGraph = await Classifier.fromGraphModel({ modelJson, weights }, { preprocessing: { range: [0, 255] } });
    const x = tf.randomUniform([2, 12, 12, 3], 0, 255, 'float32', 4) as tf.Tensor4D;
    expect(relL2(inGraph.logits(x), viaOptions.logits(x))).toBeLessThan(1e-5);
    for (const c of [viaOptions, inGraph]) {
      const e = await explain('lrp', c, x, { target: [0, 2], options: { composite: 'lrp-0' } });
      const sums = tf.tidy(() => tf.sum(e.attribution, [1, 2, 3]).arraySync() as number[]);
      const logits = e.logits.map((row, i) => row[e.target[i]]);
      sums.forEach((v, i) => expect(Math.abs(v - logits[i]) / Math.abs(logits[i]), c.name).toBeLessThan(1e-3));
      e.dispose();
    }
    clearWeightCache();
    x.dispose();
    inGraph.dispose();
    viaOptions.dispose();
    m.dispose();
  });
});
