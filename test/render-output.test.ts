import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/engine/backend.js';
import {
  grid,
  blankImage,
  pixelAt,
  encodePng,
  decodePng,
  writePng,
  plotLines,
  plotBars,
  plotHistogram,
  plotHeatmapMatrix,
  plotScatter,
  histogram,
  pngSize,
  colorbar,
  plotFiltersGrid,
  plotFeatureMaps,
  plotExamplesGrid,
  vegaLiteToPng,
  type Image,
} from '../src/render/index.js';
import { createRng } from '../src/util/random.js';

let dir: string;
beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'gw-render-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const solid = (w: number, h: number, rgb: [number, number, number]): Image => blankImage(w, h, [...rgb, 255]);

describe('grid', () => {
  it('lays tiles out with padding and scale; tiles land where expected', () => {
    const tiles = [solid(10, 10, [255, 0, 0]), solid(10, 10, [0, 255, 0]), solid(10, 10, [0, 0, 255])];
    const g = grid(tiles, { cols: 2, scale: 2, padding: 4 });
    // width = pad + cols·(20 + pad), height = pad + rows·(20 + pad)
    expect([g.width, g.height]).toEqual([52, 52]);
    expect(pixelAt(g, 4, 4)).toEqual([255, 0, 0, 255]);
    expect(pixelAt(g, 23, 23)).toEqual([255, 0, 0, 255]);
    expect(pixelAt(g, 28, 4)).toEqual([0, 255, 0, 255]);
    expect(pixelAt(g, 4, 28)).toEqual([0, 0, 255, 255]);
    expect(pixelAt(g, 2, 2)).toEqual([255, 255, 255, 255]); // padding is background
    expect(pixelAt(g, 30, 30)).toEqual([255, 255, 255, 255]); // empty 4th cell
  });

  it('labels add text rows (dark pixels) under the tiles; title and headers add space', () => {
    const tiles = [solid(28, 28, [200, 200, 200]), solid(28, 28, [200, 200, 200])];
    const plain = grid(tiles);
    const labelled = grid(tiles, { labels: ['gradient 1.2 ms', 'lrp'] });
    expect(labelled.height).toBeGreaterThan(plain.height);
    expect(labelled.width).toBeGreaterThanOrEqual(plain.width); // cells widen for long labels
    let dark = 0;
    for (let y = 4 + 28; y < labelled.height; y++) for (let x = 0; x < labelled.width; x++) if (pixelAt(labelled, x, y)[0] < 128) dark++;
    expect(dark).toBeGreaterThan(20);
    const titled = grid(tiles, { title: 'Maps', rowLabels: ['a'], colLabels: ['x', 'y'] });
    expect(titled.height).toBeGreaterThan(plain.height + 20);
    expect(titled.width).toBeGreaterThan(plain.width);
    expect(() => grid([])).toThrow(/no images/);
  });

  it('colorbar has the requested length', () => {
    const c = colorbar('diverging', { length: 100, vmax: 0.3, label: 'R' });
    expect(c.width).toBe(100 + 8 + 40);
    const [r, g, b] = pixelAt(c, 24, 8); // first column of the bar: −1 + 1/100, almost pure blue
    expect(b).toBe(255);
    expect(Math.max(r, g)).toBeLessThan(8);
  });
});

describe('PNG', () => {
  it('encode → decode round trip is exact (opaque RGBA)', () => {
    const rng = createRng(5);
    const img: Image = { width: 7, height: 5, data: new Uint8ClampedArray(7 * 5 * 4) };
    for (let i = 0; i < img.data.length; i++) img.data[i] = i % 4 === 3 ? 255 : Math.floor(rng() * 256);
    const png = encodePng(img);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(pngSize(png)).toEqual({ width: 7, height: 5 });
    const back = decodePng(png);
    expect([back.width, back.height]).toEqual([7, 5]);
    expect(Array.from(back.data)).toEqual(Array.from(img.data));
    expect(() => encodePng({ width: 2, height: 2, data: new Uint8ClampedArray(3) })).toThrow(/RGBA/);
  });

  it('writePng writes atomically and leaves no partial file on failure', () => {
    const f = join(dir, 'sub', 'a.png');
    writePng(f, solid(3, 2, [1, 2, 3]));
    expect(decodePng(readFileSync(f)).width).toBe(3);
    const blocker = join(dir, 'file');
    writeFileSync(blocker, 'x');
    expect(() => writePng(join(blocker, 'b.png'), solid(2, 2, [0, 0, 0]))).toThrow();
    const bad = join(dir, 'bad.png');
    expect(() => writePng(bad, { width: 2, height: 2, data: new Uint8ClampedArray(1) })).toThrow();
    expect(existsSync(bad)).toBe(false);
    expect(readdirSync(join(dir, 'sub')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('vega-lite plots', () => {
  it('plotLines gives a PNG of exactly width·scale × height·scale', async () => {
    const png = await plotLines(
      [
        { name: 'fgsm', x: [0, 0.1, 0.2, 0.3], y: [0.99, 0.7, 0.3, 0.1] },
        { name: 'pgd', x: [0, 0.1, 0.2, 0.3], y: [0.99, 0.5, 0.1, 0.0] },
      ],
      { title: 'accuracy under attack', xLabel: 'ε', yLabel: 'accuracy', width: 320, height: 200, scale: 2 },
    );
    expect(pngSize(png)).toEqual({ width: 640, height: 400 });
    const img = decodePng(png);
    // not blank: lines and text draw coloured / dark pixels
    let ink = 0;
    for (let p = 0; p < img.width * img.height; p++) if (img.data[4 * p] < 200) ink++;
    expect(ink).toBeGreaterThan(500);
    writeFileSync(join(dir, 'lines.png'), png);
  });

  it('bars, histogram, confusion matrix and scatter render to PNG', async () => {
    const bars = await plotBars([{ label: 'gradient', value: 1.2 }, { label: 'occlusion', value: 80 }], { horizontal: true, width: 300, height: 150 });
    expect(pngSize(bars)).toEqual({ width: 300, height: 150 });
    const h = await plotHistogram([1, 2, 2, 3, 3, 3], { bins: 3 });
    expect(pngSize(h)).toEqual({ width: 480, height: 300 });
    const cm = await plotHeatmapMatrix([[5, 1], [0, 7]], ['a', 'b'], ['a', 'b'], { title: 'confusion' });
    const s = pngSize(cm);
    expect(s.width).toBeGreaterThan(80);
    expect(s.height).toBeGreaterThan(80);
    const sc = await plotScatter([{ x: 0, y: 0, group: 'a' }, { x: 1, y: 2, group: 'b' }]);
    expect(pngSize(sc).width).toBe(480);
    await expect(plotHeatmapMatrix([[1, 2]], ['a'], ['x'])).rejects.toThrow(/column labels/);
    await expect(plotLines([{ name: 'a', x: [1], y: [NaN] }])).rejects.toThrow(/finite/);
    // offline: external data is refused before vega could fetch it
    await expect(vegaLiteToPng({ data: { url: 'https://example.com/a.csv' }, mark: 'point' })).rejects.toThrow(/offline/);
  });

  it('histogram counts', () => {
    const { edges, counts } = histogram([0, 0.5, 1, 1, 2], 2);
    expect(edges).toEqual([0, 1, 2]);
    expect(counts).toEqual([2, 3]);
  });
});

describe('model views', () => {
  it('filters, feature maps and the examples grid', () => {
    const kernel = tf.tensor4d(Array.from({ length: 3 * 3 * 2 * 4 }, (_, i) => (i % 5) - 2), [3, 3, 2, 4]);
    const f = plotFiltersGrid(kernel, { scale: 8, labels: false, cols: 4 });
    // 4 tiles of 24 px in a row with 3 px padding
    expect([f.width, f.height]).toEqual([3 + 4 * 27, 3 + 27]);
    const act = tf.relu(tf.randomNormal([1, 6, 6, 5], 0, 1, 'float32', 1));
    const fm = plotFeatureMaps(act, { scale: 4, cols: 5 });
    expect(fm.width).toBeGreaterThanOrEqual(5 * 24);
    const imgs = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 2);
    const before = tf.memory().numTensors;
    const ex = plotExamplesGrid(imgs, [3, 5, 8], [5, 3, 1], { classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] });
    expect(ex.width).toBeGreaterThanOrEqual(3 * 56);
    plotFiltersGrid(kernel);
    plotFeatureMaps(act);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => plotExamplesGrid(imgs, [1], [1, 2, 3])).toThrow(/3 images/);
    tf.dispose([kernel, act, imgs]);
  });
});
