import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, Classifier, hasDefaultModel, loadDefaultClassifier, loadMnist, OptionError } from '../src/index.js';
import { receptiveField, receptiveWindow } from '../src/interpretation/receptive-field.js';
import { topActivations } from '../src/interpretation/top-activations.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';
import { decodePng } from '../src/render/png.js';
import { runNode } from './support/run-node.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');

const shipped = hasDefaultModel('mnist-cnn');
let cnn: Classifier;

beforeAll(async () => {
  await initBackend();
  if (shipped) cnn = await loadDefaultClassifier('mnist-cnn');
});

/** Bounding box [top, left, height, width] of the input pixels with a nonzero gradient of one unit. */
function gradientSupport(c: Classifier, layer: string, unit: [number, number, number]): [number, number, number, number] {
  const [h, w, ch] = c.inputShape;
  const x = tf.randomUniform([1, h, w, ch], 0.2, 0.8, 'float32', 3);
  const g = tf.tidy(() => tf.grad((xi: tf.Tensor) => {
    const a = c.split(layer).head(xi);
    return tf.sum(tf.slice(a, [0, unit[0], unit[1], unit[2]], [1, 1, 1, 1]));
  })(x));
  const v = g.dataSync();
  tf.dispose([x, g]);
  let [t, l, b, r] = [h, w, -1, -1];
  for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let k = 0; k < ch; k++) {
    if (v[(y * w + xx) * ch + k] !== 0) {
      t = Math.min(t, y); b = Math.max(b, y); l = Math.min(l, xx); r = Math.max(r, xx);
    }
  }
  return [t, l, b - t + 1, r - l + 1];
}

describe.skipIf(!shipped)('theoretical receptive fields', () => {
  it('of the linear first layer equal its kernel footprint (the gradient support), and stay inside the field deeper', () => {
    const first = receptiveField(cnn, 'conv1/preact');
    expect(first.global).toBe(false);
    const kh = cnn.node('conv1/preact').params.kernel!().shape[0];
    expect(first.rows.size).toBe(kh);
    expect(first.rows.jump).toBe(1);
    for (const [y, x] of [[10, 12], [0, 0], [27, 5]] as const) {
      const win = receptiveWindow(first, y, x, [28, 28, 1]);
      expect(gradientSupport(cnn, 'conv1/preact', [y, x, 0])).toEqual([win.top, win.left, win.height, win.width]);
    }
    const deep = receptiveField(cnn, 'conv2/preact');
    expect(deep.rows.jump).toBe(2);
    expect(deep.rows.size).toBe(kh + 1 + 2 * (cnn.node('conv2/preact').params.kernel!().shape[0] - 1));
    const win = receptiveWindow(deep, 6, 7, [28, 28, 1]);
    const [t, l, hh, ww] = gradientSupport(cnn, 'conv2/preact', [6, 7, 1]);
    expect(t).toBeGreaterThanOrEqual(win.top);
    expect(l).toBeGreaterThanOrEqual(win.left);
    expect(t + hh).toBeLessThanOrEqual(win.top + win.height);
    expect(l + ww).toBeLessThanOrEqual(win.left + win.width);
    expect(receptiveField(cnn, 'fc1').global).toBe(true);
  });

  it('on a MobileNetV2-shaped graph (zero padding, valid stride 2, depthwise, residual add) bound the gradient support', () => {
    const model = buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 2, lastFilters: 32, numClasses: 5, seed: 3 });
    const mb = Classifier.fromModel(model);
    for (const layer of ['Conv1', 'block_1_depthwise', 'block_2_add']) {
      const rf = receptiveField(mb, layer);
      const shape = mb.node(layer).shape;
      const [y, x] = [Math.floor(shape[0] / 2), Math.floor(shape[1] / 2)];
      const win = receptiveWindow(rf, y, x, [32, 32, 3]);
      const [t, l, hh, ww] = gradientSupport(mb, layer, [y, x, 0]);
      expect(hh, layer).toBeGreaterThan(0);
      expect(t, layer).toBeGreaterThanOrEqual(win.top);
      expect(l, layer).toBeGreaterThanOrEqual(win.left);
      expect(t + hh, layer).toBeLessThanOrEqual(win.top + win.height);
      expect(l + ww, layer).toBeLessThanOrEqual(win.left + win.width);
    }
    // Conv1: ZeroPadding2D((0,1),(0,1)) then 3×3 stride 2 valid: unit (y, x) sees rows 2y..2y+2.
    const c1 = receptiveField(mb, 'Conv1');
    expect([c1.rows.size, c1.rows.jump, c1.rows.start]).toEqual([3, 2, 0]);
    model.dispose();
  });
});

describe.skipIf(!shipped)('top-activations', () => {
  it('equals a brute-force sort over a small set, streamed in small batches; patches are the image under the field; no leaks', async () => {
    const ds = await loadMnist({ split: 'test', limit: 150 });
    const layer = 'conv2';
    const before = tf.memory().numTensors;
    const r = await topActivations(cnn, ds, { layer, channel: 4, k: 6, batchSize: 37 });
    const a = cnn.activations(ds.images, [layer]).get(layer)!;
    const maxes = tf.tidy(() => tf.max(tf.slice(a, [0, 0, 0, 4], [-1, -1, -1, 1]), [1, 2, 3]));
    const all = Array.from(maxes.dataSync());
    tf.dispose([a, maxes]);
    const order = all.map((v, i) => [v, i] as const).sort((p, q) => q[0] - p[0] || p[1] - q[1]).slice(0, 6);
    expect(r.top.map((t) => t.index)).toEqual(order.map((o) => o[1]));
    r.top.forEach((t, i) => expect(t.score).toBeCloseTo(order[i][0], 4));
    expect(r.top.map((t) => t.label)).toEqual(r.top.map((t) => ds.labels[t.index]));
    expect(r.images.shape).toEqual([6, 28, 28, 1]);
    const rf = r.receptiveField;
    expect(r.patches.shape).toEqual([6, rf.rows.size, rf.cols.size, 1]);
    // The position is the channel's argmax, and the patch's in-image part is the image there.
    for (let i = 0; i < 6; i++) {
      const t = r.top[i];
      const img = tf.slice(ds.images, [t.index, t.window.top, t.window.left, 0], [1, t.window.height, t.window.width, 1]);
      const r0 = rf.rows.start + t.position![0] * rf.rows.jump;
      const c0 = rf.cols.start + t.position![1] * rf.cols.jump;
      const p = tf.slice(r.patches, [i, t.window.top - r0, t.window.left - c0, 0], [1, t.window.height, t.window.width, 1]);
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(img, p))));
      expect(d.dataSync()[0]).toBe(0);
      tf.dispose([img, p, d]);
    }
    r.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // a unit: its value, and its fixed position
    const u = await topActivations(cnn, ds, { layer, unit: [3, 4, 2], k: 3, batchSize: 64 });
    expect(u.top.every((t) => t.position![0] === 3 && t.position![1] === 4)).toBe(true);
    expect(u.top[0].score).toBeGreaterThanOrEqual(u.top[2].score);
    u.dispose();
    await expect(topActivations(cnn, ds, { layer, k: 3 })).rejects.toThrow(OptionError);
    await expect(topActivations(cnn, ds, { layer: 'fc1', channel: 0 })).rejects.toThrow(/spatial layer/);
    ds.images.dispose();
  });

  it('CLI: glasswing interpret top writes a PNG grid and the same top images as the function', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-top-'));
    const out = path.join(dir, 'top.png');
    const r = await runNode([CLI, 'interpret', 'top', '--model', 'mnist-cnn', '--layer', 'conv2', '--channel', '4', '--limit', '150', '--k', '5', '--out', out, '--json'],
      { env: { ...process.env, GLASSWING_QUIET: '1' } });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    const ds = await loadMnist({ split: 'test', limit: 150 });
    const f = await topActivations(cnn, ds, { layer: 'conv2', channel: 4, k: 5 });
    expect(j.top.map((t: { index: number }) => t.index)).toEqual(f.top.map((t) => t.index));
    expect(j.receptiveField.rows.size).toBe(f.receptiveField.rows.size);
    const png = decodePng(fs.readFileSync(out));
    expect(png.width).toBeGreaterThan(5 * 28);
    f.dispose();
    ds.images.dispose();
    const bad = await runNode([CLI, 'interpret', 'top', '--layer', 'conv2', '--json'], { env: { ...process.env, GLASSWING_QUIET: '1' } });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/exactly one of channel or unit/);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
