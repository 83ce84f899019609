import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import {
  getColormap,
  colormapRange,
  customColormap,
  renderMap,
  renderValues,
  renderImage,
  overlay,
  upscale,
  resizeNearest,
  pixelAt,
  reduceChannels,
  mapLimit,
  YELLOW_BLUE_BINARY,
  COLORMAP_NAMES,
} from '../src/render/index.js';
import { InvalidInputError, OptionError } from '../src/core/errors.js';

beforeAll(async () => {
  await initBackend();
});

describe('colour maps', () => {
  it('diverging: −1 blue, 0 white, +1 red, linear in between, clamped outside', () => {
    const d = getColormap('diverging');
    expect(d.signed).toBe(true);
    expect(d(0)).toEqual([255, 255, 255]);
    expect(d(-1)).toEqual([0, 0, 255]);
    expect(d(1)).toEqual([255, 0, 0]);
    expect(d(0.5)).toEqual([255, 128, 128]);
    expect(d(-0.5)).toEqual([128, 128, 255]);
    expect(d(-7)).toEqual([0, 0, 255]);
    expect(d(3)).toEqual([255, 0, 0]);
    const [r, , b] = d(-0.2);
    expect(b).toBeGreaterThan(r);
  });

  it('sequential: 0 white, 1 dark red, darker as it grows', () => {
    const s = getColormap('sequential');
    expect(s.signed).toBe(false);
    expect(s(0)).toEqual([255, 255, 255]);
    expect(s(1)).toEqual([103, 0, 13]);
    const lum = (c: number[]) => c[0] + c[1] + c[2];
    for (let t = 0.1; t <= 1; t += 0.1) expect(lum(s(t))).toBeLessThan(lum(s(t - 0.1)));
  });

  it('yellow-blue (seed 002): −1 dark blue, +1 yellow; binary: for / against / unimportant', () => {
    const y = getColormap('yellow-blue');
    expect(y.signed).toBe(true);
    const [r1, g1, b1] = y(1);
    expect(r1).toBeGreaterThan(200);
    expect(g1).toBeGreaterThan(200);
    expect(b1).toBeLessThan(60);
    const [r0, g0, b0] = y(-1);
    expect(b0).toBeGreaterThan(r0);
    expect(r0 + g0 + b0).toBeLessThan(200);
    const bin = getColormap('yellow-blue-binary');
    expect(bin(0.3)).toEqual(YELLOW_BLUE_BINARY.for);
    expect(bin(-0.01)).toEqual(YELLOW_BLUE_BINARY.against);
    expect(bin(0)).toEqual(YELLOW_BLUE_BINARY.unimportant);
  });

  it('gray, viridis, custom maps and errors', () => {
    expect(getColormap('gray')(0.5)).toEqual([128, 128, 128]);
    expect(getColormap('viridis')(0)).toEqual([68, 1, 84]);
    const c = customColormap([[0, [0, 0, 0]], [1, [0, 200, 0]]], false, 'greens');
    expect(c(0.5)).toEqual([0, 100, 0]);
    expect(c.name).toBe('greens');
    expect(() => getColormap('jet' as never)).toThrow(OptionError);
    expect(colormapRange('diverging', 3)).toEqual(['#0000ff', '#ffffff', '#ff0000']);
    expect(COLORMAP_NAMES).toContain('yellow-blue');
  });
});

describe('renderMap', () => {
  it('signed map: divided by max |v|, 0 stays white', () => {
    const m = tf.tensor2d([[-2, 0], [1, 2]]);
    const img = renderMap(m);
    expect([img.width, img.height]).toEqual([2, 2]);
    expect(pixelAt(img, 0, 0)).toEqual([0, 0, 255, 255]);
    expect(pixelAt(img, 1, 0)).toEqual([255, 255, 255, 255]);
    expect(pixelAt(img, 0, 1)).toEqual([255, 128, 128, 255]);
    expect(pixelAt(img, 1, 1)).toEqual([255, 0, 0, 255]);
    // a fixed vmax shared between maps
    const half = renderMap(m, { vmax: 4 });
    expect(pixelAt(half, 1, 1)).toEqual([255, 128, 128, 255]);
    m.dispose();
  });

  it('unsigned map shows |v| / max on the sequential map', () => {
    const m = tf.tensor3d([[[-2], [0]], [[1], [2]]]);
    const img = renderMap(m, { signed: false });
    const s = getColormap('sequential');
    expect(pixelAt(img, 0, 0).slice(0, 3)).toEqual(s(1));
    expect(pixelAt(img, 1, 0).slice(0, 3)).toEqual([255, 255, 255]);
    expect(pixelAt(img, 0, 1).slice(0, 3)).toEqual(s(0.5));
    m.dispose();
  });

  it('sums channels of multi-channel maps; takes NHWC batches by index; upscales', () => {
    // [1, 1, 2, 3]: pixel 0 channels (1, −1, 0) sum to 0 → white; pixel 1 (1, 1, 1) → red
    const m = tf.tensor4d([1, -1, 0, 1, 1, 1], [1, 1, 2, 3]);
    const img = renderMap(m);
    expect(pixelAt(img, 0, 0)).toEqual([255, 255, 255, 255]);
    expect(pixelAt(img, 1, 0)).toEqual([255, 0, 0, 255]);
    const abs = renderMap(m, { reduce: 'abs-sum' });
    expect(pixelAt(abs, 0, 0)).toEqual([255, 85, 85, 255]); // 2/3 of the way to red
    expect(Array.from(reduceChannels(Float32Array.from([3, 4]), 1, 1, 2, 'l2'))).toEqual([5]);
    const batch = tf.tensor4d([1, 0, 0, -1], [2, 1, 2, 1]);
    expect(pixelAt(renderMap(batch, { index: 1 }), 1, 0)).toEqual([0, 0, 255, 255]);
    const big = renderMap(batch, { scale: 3 });
    expect([big.width, big.height]).toEqual([6, 3]);
    expect(pixelAt(big, 2, 2)).toEqual([255, 0, 0, 255]);
    expect(pixelAt(big, 3, 0)).toEqual([255, 255, 255, 255]);
    tf.dispose([m, batch]);
  });

  it('all-zero maps are white; NaN is an error; clipPercentile saturates outliers', () => {
    const z = tf.zeros([3, 3]);
    expect(pixelAt(renderMap(z), 1, 1)).toEqual([255, 255, 255, 255]);
    const bad = tf.tensor2d([[0, NaN]]);
    expect(() => renderMap(bad)).toThrow(InvalidInputError);
    const values = Float32Array.from({ length: 100 }, (_, i) => (i === 99 ? 1000 : 1));
    expect(mapLimit(values, 50)).toBe(1);
    expect(mapLimit(values)).toBe(1000);
    const { image, vmax } = renderValues(values, 10, 10, { clipPercentile: 90 });
    expect(vmax).toBe(1);
    expect(pixelAt(image, 0, 0)).toEqual([255, 0, 0, 255]);
    tf.dispose([z, bad]);
  });
});

describe('renderImage, overlay, upscale', () => {
  it('renders grey and RGB inputs', () => {
    const g = tf.tensor3d([0, 0.5, 1, 0.25], [2, 2, 1]);
    const img = renderImage(g);
    expect(pixelAt(img, 1, 0)).toEqual([128, 128, 128, 255]);
    expect(pixelAt(img, 0, 1)).toEqual([255, 255, 255, 255]);
    const rgb = tf.tensor3d([1, 0, 0.5], [1, 1, 3]);
    expect(pixelAt(renderImage(rgb), 0, 0)).toEqual([255, 0, 128, 255]);
    const off = tf.tensor3d([-0.5, 0.5], [1, 2, 1]);
    expect(pixelAt(renderImage(off, { range: [-0.5, 0.5] }), 0, 0)).toEqual([0, 0, 0, 255]);
    expect(pixelAt(renderImage(off, { range: 'auto' }), 1, 0)).toEqual([255, 255, 255, 255]);
    tf.dispose([g, rgb, off]);
  });

  it('overlay: where the map is 0 the input shows unchanged; at max |v| it mixes alpha of the heat colour', () => {
    const x = tf.fill([1, 2, 2, 1], 0.5);
    const m = tf.tensor4d([0, 0, 0, 2], [1, 2, 2, 1]);
    const o = overlay(x, m, { alpha: 0.5 });
    expect(pixelAt(o, 0, 0)).toEqual([128, 128, 128, 255]);
    expect(pixelAt(o, 1, 1)).toEqual([192, 64, 64, 255]); // ½ grey + ½ red
    const blend = overlay(x, m, { alpha: 0.5, mode: 'blend' });
    expect(pixelAt(blend, 0, 0)).toEqual([192, 192, 192, 255]); // ½ grey + ½ white
    // a coarse map is resized to the input
    const coarse = tf.tensor2d([[1]]);
    const big = tf.fill([4, 4, 1], 0);
    const ob = overlay(big, coarse, { alpha: 1 });
    expect([ob.width, ob.height]).toEqual([4, 4]);
    expect(pixelAt(ob, 3, 3)).toEqual([255, 0, 0, 255]);
    tf.dispose([x, m, coarse, big]);
  });

  it('upscale and resizeNearest repeat pixels', () => {
    const img = { width: 2, height: 1, data: new Uint8ClampedArray([1, 2, 3, 255, 9, 8, 7, 255]) };
    const u = upscale(img, 2);
    expect([u.width, u.height]).toEqual([4, 2]);
    expect(pixelAt(u, 1, 1)).toEqual([1, 2, 3, 255]);
    expect(pixelAt(u, 2, 0)).toEqual([9, 8, 7, 255]);
    expect(() => upscale(img, 1.5)).toThrow(OptionError);
    const r = resizeNearest(img, 3, 2);
    expect(pixelAt(r, 2, 1)).toEqual([9, 8, 7, 255]);
  });

  it('does not leak tensors', () => {
    const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 1);
    const m = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 2);
    const coarse = tf.randomNormal([1, 2, 2, 1], 0, 1, 'float32', 3);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      renderMap(m, { index: 1 });
      renderMap(m, { signed: false, colormap: 'viridis' });
      renderImage(x, { index: 1, scale: 2 });
      overlay(x, m, { index: 1 });
      overlay(x, coarse);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, m, coarse]);
  });
});
