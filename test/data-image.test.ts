import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { initBackend } from '../src/engine/backend.js';
import { readImage, readImageSync, readImageRaw, readImages, loadImageFolder, LUMA } from '../src/data/index.js';
import { ImageLoadError } from '../src/core/errors.js';

let dir: string;
let png: string;
let jpg: string;
let blocks: string;
let alpha: string;

// 4×2 test picture: top row red, green, blue, white; bottom row black, grey(128), yellow, (10,20,30)
const COLOURS: Array<[number, number, number]> = [
  [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255],
  [0, 0, 0], [128, 128, 128], [255, 255, 0], [10, 20, 30],
];

beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'gw-img-'));
  const c = createCanvas(4, 2);
  const ctx = c.getContext('2d');
  COLOURS.forEach(([r, g, b], i) => {
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(i % 4, Math.floor(i / 4), 1, 1);
  });
  png = join(dir, 'colours.png');
  writeFileSync(png, c.toBuffer('image/png'));
  // a large flat-colour JPEG (JPEG is lossy; flat areas survive well)
  const j = createCanvas(32, 16);
  const jc = j.getContext('2d');
  jc.fillStyle = 'rgb(200,100,50)';
  jc.fillRect(0, 0, 16, 16);
  jc.fillStyle = 'rgb(20,40,220)';
  jc.fillRect(16, 0, 16, 16);
  jpg = join(dir, 'flat.jpg');
  writeFileSync(jpg, j.toBuffer('image/jpeg', 95));
  // 8×8 made of 4×4 blocks of 0, 64, 128, 255 grey
  const k = createCanvas(8, 8);
  const kc = k.getContext('2d');
  [0, 64, 128, 255].forEach((v, i) => {
    kc.fillStyle = `rgb(${v},${v},${v})`;
    kc.fillRect((i % 2) * 4, Math.floor(i / 2) * 4, 4, 4);
  });
  blocks = join(dir, 'blocks.png');
  writeFileSync(blocks, k.toBuffer('image/png'));
  // half-transparent white
  const a = createCanvas(2, 2);
  const ac = a.getContext('2d');
  ac.fillStyle = 'rgba(255,255,255,0.5)';
  ac.fillRect(0, 0, 2, 2);
  alpha = join(dir, 'alpha.png');
  writeFileSync(alpha, a.toBuffer('image/png'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readImage', () => {
  it('PNG round trip: exact RGB values in [0,1] at the native size', async () => {
    const t = await readImage(png, [2, 4, 3]);
    expect(t.shape).toEqual([2, 4, 3]);
    const v = Array.from(t.dataSync());
    COLOURS.forEach((rgb, p) => rgb.forEach((c, ch) => expect(v[3 * p + ch]).toBeCloseTo(c / 255, 6)));
    t.dispose();
  });

  it('greyscale is luminance 0.299 R + 0.587 G + 0.114 B', async () => {
    const t = readImageSync(png, [2, 4, 1]);
    const v = Array.from(t.dataSync());
    COLOURS.forEach(([r, g, b], p) => expect(v[p]).toBeCloseTo((LUMA[0] * r + LUMA[1] * g + LUMA[2] * b) / 255, 5));
    expect(v[0]).toBeCloseTo(0.299, 5); // red
    t.dispose();
  });

  it('JPEG decodes (lossy: flat colours within 3/255)', async () => {
    const t = await readImage(jpg, [16, 32, 3]);
    const v = t.dataSync();
    const at = (y: number, x: number, ch: number) => v[(y * 32 + x) * 3 + ch] * 255;
    expect(Math.abs(at(8, 4, 0) - 200)).toBeLessThan(3);
    expect(Math.abs(at(8, 4, 1) - 100)).toBeLessThan(3);
    expect(Math.abs(at(8, 28, 2) - 220)).toBeLessThan(3);
    t.dispose();
  });

  it('resizes to the requested h×w (nearest: exact block values; smooth: block means)', async () => {
    const n = await readImage(blocks, [2, 2, 1], { smoothing: 'none' });
    expect(Array.from(n.dataSync()).map((x) => Math.round(x * 255))).toEqual([0, 64, 128, 255]);
    const s = await readImage(blocks, [4, 4, 1]);
    const sv = Array.from(s.dataSync()).map((x) => x * 255);
    expect(sv[0]).toBeLessThan(20); // top-left stays dark
    expect(sv[15]).toBeGreaterThan(235); // bottom-right stays white
    const up = await readImage(png, [28, 28, 1]);
    expect(up.shape).toEqual([28, 28, 1]);
    const raw = await readImageRaw(blocks);
    expect([raw.width, raw.height, raw.data.length]).toEqual([8, 8, 256]);
    tf.dispose([n, s, up]);
  });

  it('composites transparency over the background (default black) and maps to opts.range', async () => {
    const t = await readImage(alpha, [2, 2, 1]);
    expect(t.dataSync()[0]).toBeCloseTo(0.5, 1);
    const w = await readImage(alpha, [2, 2, 1], { background: 'white' });
    expect(w.dataSync()[0]).toBeCloseTo(1, 2);
    const r = await readImage(png, [2, 4, 3], { range: [-1, 1] });
    expect(r.dataSync()[0]).toBeCloseTo(1, 5); // red channel of red
    expect(r.dataSync()[1]).toBeCloseTo(-1, 5); // green channel of red
    tf.dispose([t, w, r]);
  });

  it('reads a batch', async () => {
    const b = await readImages([png, blocks], [4, 4, 1]);
    expect(b.shape).toEqual([2, 4, 4, 1]);
    b.dispose();
  });

  it('missing, empty, corrupt and truncated files throw ImageLoadError naming the path and the problem', async () => {
    const missing = join(dir, 'nope.png');
    await expect(readImage(missing, [28, 28, 1])).rejects.toThrow(ImageLoadError);
    await expect(readImage(missing, [28, 28, 1])).rejects.toThrow(/nope\.png.*file not found/);
    expect(() => readImageSync(missing, [28, 28, 1])).toThrow(/file not found/);
    await expect(readImage(dir, [28, 28, 1])).rejects.toThrow(/is a directory/);

    const empty = join(dir, 'empty.png');
    writeFileSync(empty, Buffer.alloc(0));
    await expect(readImage(empty, [28, 28, 1])).rejects.toThrow(/empty\.png.*empty/);

    const text = join(dir, 'text.png');
    writeFileSync(text, 'this is not an image');
    await expect(readImage(text, [28, 28, 1])).rejects.toThrow(/text\.png.*expected PNG or JPEG/);

    const bytes = (await import('node:fs')).readFileSync(blocks);
    const trunc = join(dir, 'trunc.png');
    writeFileSync(trunc, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(readImage(trunc, [8, 8, 1])).rejects.toThrow(/trunc\.png.*truncated/);
    expect(() => readImageSync(trunc, [8, 8, 1])).toThrow(ImageLoadError);

    const jbytes = (await import('node:fs')).readFileSync(jpg);
    const badJpg = join(dir, 'bad.jpg');
    writeFileSync(badJpg, Buffer.concat([jbytes.subarray(0, 4), Buffer.alloc(200, 7)]));
    await expect(readImage(badJpg, [8, 8, 1])).rejects.toThrow(/bad\.jpg.*corrupt/);
    expect(() => readImageSync(badJpg, [8, 8, 1])).toThrow(/corrupt/);

    await expect(readImage(png, [28, 28, 2])).rejects.toThrow(/shape must be/);
  });

  it('loadImageFolder: sub-folders are classes, files sorted; flat folders are unlabelled', async () => {
    const root = join(dir, 'folder');
    mkdirSync(join(root, 'b'), { recursive: true });
    mkdirSync(join(root, 'a'), { recursive: true });
    copyFileSync(blocks, join(root, 'a', '2.png'));
    copyFileSync(png, join(root, 'a', '1.png'));
    copyFileSync(jpg, join(root, 'b', 'x.jpg'));
    writeFileSync(join(root, 'b', 'notes.txt'), 'ignored');
    const ds = await loadImageFolder(root, [4, 4, 1]);
    expect(ds.classNames).toEqual(['a', 'b']);
    expect(Array.from(ds.labels)).toEqual([0, 0, 1]);
    expect(ds.images.shape).toEqual([3, 4, 4, 1]);
    // 2nd image is blocks.png: top-left dark, bottom-right white
    const v = ds.images.dataSync();
    expect(v[16]).toBeLessThan(0.1);
    expect(v[31]).toBeGreaterThan(0.9);
    ds.dispose();
    const flat = await loadImageFolder(join(root, 'a'), [2, 2, 3]);
    expect(flat.classNames).toEqual(['unlabelled']);
    expect(flat.labels.length).toBe(2);
    flat.dispose();
    await expect(loadImageFolder(join(root, 'none'), [4, 4, 1])).rejects.toThrow(/folder not found/);
    mkdirSync(join(root, 'empty'));
    await expect(loadImageFolder(join(root, 'empty'), [4, 4, 1])).rejects.toThrow(/no \.png/);
  });

  it('does not leak tensors', async () => {
    (await readImage(png, [2, 4, 3])).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      (await readImage(png, [8, 8, 3])).dispose();
      readImageSync(blocks, [4, 4, 1]).dispose();
      (await readImages([png, blocks], [4, 4, 1])).dispose();
      await readImage(join(dir, 'nope.png'), [4, 4, 1]).catch(() => undefined);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
