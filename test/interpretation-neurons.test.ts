// Issue 11's neuron-level correctness list: top-activations by top p % and over streamed sources
// (a custom source and a folder) equal a brute-force sort; top real vs adversarial images equal a
// brute-force attack-and-sort; the actual receptive field of a linear first-layer unit is exactly its
// kernel footprint; every function gives the same answer on a TF graph model as on its LayersModel
// twin; the views draw what they are given. Small sets (≤ 150 images) keep it cheap.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, Classifier, hasDefaultModel, loadDefaultClassifier, loadMnist, OptionError, type Dataset } from '../src/index.js';
import { topActivations, topActivationsOfUnits } from '../src/interpretation/top-activations.js';
import { topRealVsAdversarial, leastLikelyAttacks, ADVERSARIAL_DEFAULTS } from '../src/interpretation/top-adversarial.js';
import { empiricalReceptiveField } from '../src/interpretation/empirical-receptive-field.js';
import { nearestNeighbours } from '../src/interpretation/nearest-neighbours.js';
import { receptiveFields } from '../src/interpretation/receptive-field.js';
import { folderSource, openImageSource } from '../src/interpretation/folder-source.js';
import { readIndices, topCount, type ImageSource } from '../src/interpretation/image-source.js';
import { activationMaxExpert } from '../src/interpretation/activation-max-expert.js';
import { activationMaxCode } from '../src/interpretation/activation-max-code.js';
import { hasDefaultGenerator, loadDefaultGenerator } from '../src/generative/io.js';
import { exportGraphModel } from '../src/models/graph-model-export.js';
import { plotLayerFilters, plotLayerActivations } from '../src/models/plots.js';
import { plotTopActivations, plotRealVsAdversarial, plotNeighbours, plotPrototypes, plotReceptiveField, drawBox } from '../src/render/views.js';
import { pixelAt } from '../src/render/image.js';
import { encodePng } from '../src/render/png.js';
import { renderImage } from '../src/render/heatmap.js';
import { GaussianRBM } from '../src/generative/rbm.js';

const shipped = hasDefaultModel('mnist-cnn');
let cnn: Classifier;
let graph: Classifier;
let ds: Dataset;

beforeAll(async () => {
  await initBackend();
  if (!shipped) return;
  cnn = await loadDefaultClassifier('mnist-cnn');
  const art = exportGraphModel(cnn.model!);
  graph = await Classifier.fromGraphModel({ modelJson: art.modelJson, weights: art.shards }, { name: 'graph' });
  ds = await loadMnist({ split: 'test', limit: 150 });
});

afterAll(() => {
  ds?.dispose();
  graph?.dispose();
});

/** Channel maxima [N] of a layer over all of ds, by brute force. */
function channelMaxima(c: Classifier, images: tf.Tensor4D, layer: string, channel: number): number[] {
  const a = c.activations(images, [layer]).get(layer)!;
  const m = tf.tidy(() => tf.max(tf.slice(a, [0, 0, 0, channel], [-1, -1, -1, 1]), [1, 2, 3]));
  const out = Array.from(m.dataSync());
  tf.dispose([a, m]);
  return out;
}

const order = (scores: number[], k: number) => scores.map((v, i) => [v, i] as const).sort((p, q) => q[0] - p[0] || p[1] - q[1]).slice(0, k).map((o) => o[1]);

describe.skipIf(!shipped)('top-activations: top p %, several units, streamed sources', () => {
  it('top p % equals a brute-force sort, several units in one pass equal single calls, a custom source reads bounded batches; no leaks', async () => {
    expect(topCount(150, undefined, 4, 9)).toBe(6);
    expect(topCount(150, undefined, 1, 9)).toBe(2);
    expect(() => topCount(150, 3, 1, 9)).toThrow(OptionError);
    expect(() => topCount(150, undefined, 0, 9)).toThrow(OptionError);
    const before = tf.memory().numTensors;
    for (const ch of [2, 9]) {
      const r = await topActivations(cnn, ds, { layer: 'conv2', channel: ch, percent: 4, batchSize: 40 });
      expect(r.top.map((t) => t.index)).toEqual(order(channelMaxima(cnn, ds.images, 'conv2', ch), 6));
      r.dispose();
    }
    const many = await topActivationsOfUnits(cnn, ds, { layer: 'conv2', units: [{ channel: 2 }, { unit: [3, 4, 5] }, { channel: 9 }], k: 5, batchSize: 64 });
    const single = [
      await topActivations(cnn, ds, { layer: 'conv2', channel: 2, k: 5 }),
      await topActivations(cnn, ds, { layer: 'conv2', unit: [3, 4, 5], k: 5 }),
      await topActivations(cnn, ds, { layer: 'conv2', channel: 9, k: 5 }),
    ];
    many.forEach((m, i) => {
      expect(m.top.map((t) => t.index)).toEqual(single[i].top.map((t) => t.index));
      expect(m.top.map((t) => t.position)).toEqual(single[i].top.map((t) => t.position));
    });
    // predictions come with the entries
    const preds = await cnn.predictClasses(ds.images);
    expect(many[0].top.map((t) => t.prediction)).toEqual(many[0].top.map((t) => preds[t.index]));
    [...many, ...single].forEach((r) => r.dispose());
    // A source that hands out batches asynchronously and counts what it was asked.
    const counts: number[] = [];
    const src: ImageSource = {
      size: 150, labels: ds.labels,
      read: async (start, count) => {
        counts.push(count);
        return tf.slice(ds.images, start, count);
      },
    };
    const s = await topActivations(cnn, src, { layer: 'conv2', channel: 2, percent: 4, batchSize: 32 });
    expect(s.top.map((t) => t.index)).toEqual(order(channelMaxima(cnn, ds.images, 'conv2', 2), 6));
    expect(Math.max(...counts.slice(0, 5))).toBeLessThanOrEqual(32);
    s.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const bad: ImageSource = { size: 3, labels: [0, 0, 0], read: () => tf.zeros([2, 28, 28, 1]) };
    await expect(topActivations(cnn, bad, { layer: 'conv2', channel: 0 })).rejects.toThrow(/expected images 0..2 of the source as \[3, 28, 28, 1\]/);
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);

  it('a folder of images streams through folderSource with the same answer as the loaded dataset', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-folder-'));
    for (let i = 0; i < 12; i++) {
      const sub = path.join(dir, `d${ds.labels[i]}`);
      fs.mkdirSync(sub, { recursive: true });
      fs.writeFileSync(path.join(sub, `img${String(i).padStart(2, '0')}.png`), encodePng(renderImage(ds.images, { index: i })));
    }
    const src = folderSource(dir, [28, 28, 1]);
    expect(src.size).toBe(12);
    const all = await readIndices(src, Array.from({ length: 12 }, (_, i) => i), [28, 28, 1]);
    const r = await topActivations(cnn, src, { layer: 'conv2', channel: 2, k: 4, batchSize: 5 });
    expect(r.top.map((t) => t.index)).toEqual(order(channelMaxima(cnn, all, 'conv2', 2), 4));
    expect(r.top.map((t) => src.classNames![t.label])).toEqual(r.top.map((t) => src.classNames![src.labels[t.index]]));
    r.dispose();
    all.dispose();
    const opened = await openImageSource(dir, cnn, { limit: 5 });
    expect(opened.source.size).toBe(5);
    opened.dispose();
    await expect(openImageSource('mnist', Classifier.fromFunction((x) => tf.zeros([x.shape[0], 2]), { inputShape: [32, 32, 3], numClasses: 2 }))).rejects.toThrow(/28×28×1 images but classifier/);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});

describe.skipIf(!shipped)('top real vs adversarial images (seed 004 Figs. 2-4)', () => {
  it('equal a brute-force attack-and-sort; targets are each image\'s least likely classes; the kept images are the adversarial ones; no leaks', async () => {
    const small = { images: tf.slice(ds.images, 0, 40) as tf.Tensor4D, labels: ds.labels.slice(0, 40) };
    const before = tf.memory().numTensors;
    const opts = { attack: 'pgd' as const, epsilon: 0.3, steps: 3, stepSize: 0.1, perImage: 2 };
    const rs = await topRealVsAdversarial(cnn, small, { layer: 'conv2', units: [{ channel: 2 }, { channel: 9 }], k: 5, batchSize: 16, ...opts });
    // brute force: the whole set attacked at once
    const attacks = await leastLikelyAttacks(cnn, small.images, { ...ADVERSARIAL_DEFAULTS, ...opts });
    const logits = cnn.logits(small.images);
    const lg = (await logits.array()) as number[][];
    logits.dispose();
    for (const [u, ch] of [[0, 2], [1, 9]] as const) {
      const r = rs[u];
      expect(r.real.top.map((t) => t.index)).toEqual(order(channelMaxima(cnn, small.images, 'conv2', ch), 5));
      const scores = attacks.flatMap((a) => channelMaxima(cnn, a.images, 'conv2', ch));
      const best = order(scores, 5);
      // entry j of the flat list is image j mod 40 attacked towards its (⌊j/40⌋)-th least likely class
      expect(r.adversarial.top.map((t) => t.index)).toEqual(best.map((j) => j % 40));
      expect(r.adversarial.top.map((t) => t.target)).toEqual(best.map((j) => attacks[Math.floor(j / 40)].targets[j % 40]));
      r.adversarial.top.forEach((t, i) => expect(t.score).toBeCloseTo(scores[best[i]], 4));
      for (const t of r.adversarial.top) {
        const sorted = lg[t.index].map((v, c) => [v, c] as const).sort((a, b) => a[0] - b[0]).map((p) => p[1]);
        expect(sorted.slice(0, 2)).toContain(t.target);
        expect(t.label).toBe(small.labels[t.index]);
      }
      // The returned images are the adversarial images themselves: their score is the kept score.
      const again = channelMaxima(cnn, r.adversarial.images, 'conv2', ch);
      again.forEach((v, i) => expect(v).toBeCloseTo(r.adversarial.top[i].score, 4));
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(r.adversarial.images, tf.gather(small.images, r.adversarial.top.map((t) => t.index))))).dataSync()[0]);
      expect(diff).toBeGreaterThan(0);
      expect(diff).toBeLessThanOrEqual(0.3 + 1e-5);
      expect(r.adversarial.patches.shape).toEqual([5, 14, 14, 1]);
      expect(r.attackSuccess).toBeGreaterThanOrEqual(0);
    }
    tf.dispose(attacks.map((a) => a.images));
    rs.forEach((r) => r.dispose());
    expect(tf.memory().numTensors).toBe(before);
    await expect(topRealVsAdversarial(cnn, small, { layer: 'conv2', channel: 0, attack: 'deepfool' as 'pgd' })).rejects.toThrow(OptionError);
    await expect(topRealVsAdversarial(cnn, small, { layer: 'conv2', channel: 0, perImage: 10 })).rejects.toThrow(/perImage an integer in 1..9/);
    expect(tf.memory().numTensors).toBe(before);
    small.images.dispose();
  }, 120_000);
});

describe.skipIf(!shipped)('actual receptive field of a linear first layer', () => {
  it('is exactly the kernel footprint (patch 1): every pixel under the kernel changes the unit, none outside', async () => {
    const kh = cnn.node('conv1/preact').params.kernel!().shape[0];
    for (const ch of [0, 5]) {
      const r = await empiricalReceptiveField(cnn, ds, { layer: 'conv1/preact', channel: ch, k: 4, patch: 1, stride: 1, seed: 2 });
      const e = r.extent(1e-9);
      expect([e.rows, e.cols]).toEqual([kh, kh]);
      // a filled square: all kh² pixels of the footprint moved the unit (none of the kernel's weights is 0)
      expect(r.map.flat().filter((v) => v > 0)).toHaveLength(kh * kh);
      expect(r.theoretical.rows.size).toBe(kh);
    }
  }, 60_000);
});

describe.skipIf(!shipped)('every function on a TF graph model equals its LayersModel twin', () => {
  it('receptive fields, top activations (real and adversarial), actual fields, nearest neighbours, expert and code-space prototypes, filter and feature-map views', async () => {
    if (hasDefaultGenerator('mnist-vae-10d')) await loadDefaultGenerator('mnist-vae-10d'); // cached per process: loaded before counting
    const before = tf.memory().numTensors;
    const fa = receptiveFields(graph);
    const fb = receptiveFields(cnn);
    for (const name of ['conv1', 'pool1', 'conv2', 'pool2']) expect(fa.get(name), name).toEqual(fb.get(name));
    const [ta, tb] = [await topActivations(graph, ds, { layer: 'conv2', channel: 3, percent: 3 }), await topActivations(cnn, ds, { layer: 'conv2', channel: 3, percent: 3 })];
    expect(ta.top.map((t) => [t.index, t.position])).toEqual(tb.top.map((t) => [t.index, t.position]));
    [ta, tb].forEach((r) => r.dispose());
    const small = { images: tf.slice(ds.images, 0, 24) as tf.Tensor4D, labels: ds.labels.slice(0, 24) };
    const opts = { layer: 'conv2', channel: 3, k: 3, steps: 2, attack: 'pgd' as const };
    const [[aa], [ab]] = [await topRealVsAdversarial(graph, small, opts), await topRealVsAdversarial(cnn, small, opts)];
    expect(aa.adversarial.top.map((t) => [t.index, t.target])).toEqual(ab.adversarial.top.map((t) => [t.index, t.target]));
    [aa, ab].forEach((r) => r.dispose());
    small.images.dispose();
    const [ea, eb] = [
      await empiricalReceptiveField(graph, ds, { layer: 'conv2', channel: 3, k: 2, patch: 3, stride: 2 }),
      await empiricalReceptiveField(cnn, ds, { layer: 'conv2', channel: 3, k: 2, patch: 3, stride: 2 }),
    ];
    expect(ea.extent(0.5)).toEqual(eb.extent(0.5));
    const q = tf.slice(ds.images, 10, 2) as tf.Tensor4D;
    for (const metric of ['l2', 'cosine'] as const) {
      const [na, nb] = [await nearestNeighbours(graph, q, ds, { layer: 'fc1', metric, k: 3 }), await nearestNeighbours(cnn, q, ds, { layer: 'fc1', metric, k: 3 })];
      expect(na.map((l) => l.map((n) => n.index))).toEqual(nb.map((l) => l.map((n) => n.index)));
      expect(na[0][0]).toMatchObject({ index: 10, distance: metric === 'l2' ? 0 : expect.any(Number) });
    }
    q.dispose();
    const rbm = new GaussianRBM({ inputShape: [28, 28, 1], hidden: 8, seed: 1 });
    const [pa, pb] = [
      await activationMaxExpert(graph, [{ class: 4 }], { steps: 5, expert: rbm, expertWeight: 0.01 }),
      await activationMaxExpert(cnn, [{ class: 4 }], { steps: 5, expert: rbm, expertWeight: 0.01 }),
    ];
    expect(pa.probabilities[0][4]).toBeCloseTo(pb.probabilities[0][4], 3);
    [pa, pb].forEach((r) => r.dispose());
    rbm.dispose();
    if (hasDefaultGenerator('mnist-vae-10d')) {
      const [ca, cb] = [await activationMaxCode(graph, [{ class: 4 }], { steps: 5 }), await activationMaxCode(cnn, [{ class: 4 }], { steps: 5 })];
      expect(ca.probabilities[0][4]).toBeCloseTo(cb.probabilities[0][4], 3);
      [ca, cb].forEach((r) => r.dispose());
    }
    const fil = plotLayerFilters(graph);
    expect(fil.width).toBeGreaterThan(100);
    const x = tf.slice(ds.images, 0, 1);
    const maps = plotLayerActivations(graph, x, 'conv2');
    expect(maps.width).toBeGreaterThan(100);
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
  }, 120_000);
});

describe.skipIf(!shipped)('views', () => {
  it('draw the top images with the receptive window boxed, real vs adversarial rows, neighbours, prototypes and fields; bad input is a typed error', async () => {
    const r = await topActivations(cnn, ds, { layer: 'conv2', channel: 3, k: 4 });
    const img = plotTopActivations(r, { tileSize: 28, title: 'top' });
    // 4 images + 4 patches, two rows, at least 4 × 28 px wide
    expect(img.width).toBeGreaterThan(4 * 28);
    expect(img.height).toBeGreaterThan(2 * 28);
    // the box is drawn in red somewhere
    let red = 0;
    for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) {
      const [rr, g, b] = pixelAt(img, x, y);
      if (rr === 230 && g === 30 && b === 30) red++;
    }
    expect(red).toBeGreaterThan(20);
    const boxed = drawBox({ width: 5, height: 5, data: new Uint8ClampedArray(100) }, 1, 1, 3, 3, [1, 2, 3]);
    expect(pixelAt(boxed, 1, 1)).toEqual([1, 2, 3, 255]);
    expect(pixelAt(boxed, 2, 2)).toEqual([0, 0, 0, 0]);
    const small = { images: tf.slice(ds.images, 0, 16) as tf.Tensor4D, labels: ds.labels.slice(0, 16) };
    const [ra] = await topRealVsAdversarial(cnn, small, { layer: 'conv2', channel: 3, k: 3, steps: 2 });
    const both = plotRealVsAdversarial(ra, { tileSize: 28 });
    expect(both.height).toBeGreaterThan(4 * 28);
    ra.dispose();
    small.images.dispose();
    const q = tf.slice(ds.images, 0, 2) as tf.Tensor4D;
    const nn = await nearestNeighbours(cnn, q, ds, { layer: 'fc1', k: 3 });
    const nImgs = await readIndices({ size: 150, labels: ds.labels, read: (s, c) => tf.slice(ds.images, s, c) }, nn.flatMap((l) => l.map((n) => n.index)), [28, 28, 1]);
    const nv = plotNeighbours(q, nn, nImgs, { tileSize: 28 });
    expect(nv.width).toBeGreaterThan(4 * 28);
    expect(() => plotNeighbours(q, nn.slice(0, 1), nImgs)).toThrow(/2 queries but 1 neighbour lists/);
    const pv = plotPrototypes(q, { names: ['a', 'b'], notes: ['p 1', 'p 2'] });
    expect(pv.width).toBeGreaterThan(2 * 28);
    expect(() => plotPrototypes(q, { names: ['a'] })).toThrow(/2 prototypes but 1 names/);
    tf.dispose([q, nImgs]);
    const field = plotReceptiveField([[0, 0, 0, 0], [0, 1, 0.5, 0], [0, 0.2, 0, 0], [0, 0, 0, 0]], { rows: { size: 2, jump: 1, start: 0 }, cols: { size: 2, jump: 1, start: 0 }, global: false }, { scale: 2 });
    expect([field.width, field.height]).toEqual([8, 8]);
    r.dispose();
  }, 60_000);
});
