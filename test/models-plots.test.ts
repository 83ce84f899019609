import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { InvalidInputError, OptionError } from '../src/core/errors.js';
import { decodePng } from '../src/render/index.js';
import { buildCnn, buildMlp } from '../src/models/architectures.js';
import { evaluate } from '../src/models/evaluate.js';
import { plotConfusionMatrix, plotErrors, plotLayerFilters, plotLayerActivations, writeModelPlots } from '../src/models/plots.js';

let tmp: string;

beforeAll(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'glasswing-models-plots-'));
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function smallCnn() {
  return buildCnn({ convs: [{ filters: 6, kernelSize: 3, pool: 2 }, { filters: 4, kernelSize: 3, pool: 2 }], dense: [8], seed: 3 });
}

describe('model plots', () => {
  it('confusion matrix PNG is written and checks its input', async () => {
    const file = path.join(tmp, 'cm.png');
    const png = await plotConfusionMatrix([[5, 1], [2, 7]], ['a', 'b'], file);
    expect(fs.readFileSync(file).equals(png)).toBe(true);
    const img = decodePng(png);
    expect(img.width).toBeGreaterThan(40);
    expect(img.height).toBeGreaterThan(40);
    await expect(plotConfusionMatrix([[1, 2]], ['a'])).rejects.toThrow(InvalidInputError);
    await expect(plotConfusionMatrix([[1, 0], [0, 1]], ['a'])).rejects.toThrow(OptionError);
  });

  it('errors grid, first-layer filters and feature maps render one tile each, without leaks', async () => {
    const m = smallCnn();
    const c = Classifier.fromModel(m);
    const images = tf.randomUniform([12, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
    const pred = await c.predictClasses(images);
    const labels = Int32Array.from(pred.map((p, i) => (i < 4 ? (p + 1) % 10 : p)));
    const ds = { images, labels, classNames: Array.from({ length: 10 }, (_, i) => `c${i}`) };
    const ev = await evaluate(c, ds);
    expect(ev.errors).toHaveLength(4);
    const before = tf.memory().numTensors;
    const errImg = plotErrors(ds, ev.errors, ds.classNames, path.join(tmp, 'errors.png'));
    expect(fs.existsSync(path.join(tmp, 'errors.png'))).toBe(true);
    const filters = plotLayerFilters(c);
    const filters2 = plotLayerFilters(c, { layer: 'conv2' });
    const x = tf.slice(images, 0, 1);
    const maps = plotLayerActivations(c, x, 'conv1');
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
    for (const im of [errImg, filters, filters2, maps]) {
      expect(im.data.length).toBe(im.width * im.height * 4);
    }
    // 6 filter tiles are wider than 4 (same tile size): the conv1 grid is wider than conv2's.
    expect(filters.width).toBeGreaterThan(filters2.width);
    expect(() => plotLayerFilters(c, { layer: 'fc1' })).toThrow(OptionError);
    expect(() => plotLayerActivations(c, images, 'conv1')).toThrow(/one image/);

    const files = await writeModelPlots(c, ds, ev, path.join(tmp, 'all'));
    expect(files.map((f) => path.basename(f))).toEqual(['confusion.png', 'errors.png', 'filters.png', 'activations-conv1.png', 'activations-conv2.png']);
    for (const f of files) expect(fs.statSync(f).size).toBeGreaterThan(100);
    images.dispose();
    m.dispose();
  });

  it('an MLP has no filters to plot', () => {
    const m = buildMlp({ hidden: [8] });
    expect(() => plotLayerFilters(Classifier.fromModel(m))).toThrow(/has none/);
    m.dispose();
  });
});
