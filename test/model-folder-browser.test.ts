/**
 * The explorer's library side, in Node: a picked/dropped folder's entries → only the files the
 * model needs → the same Classifier loadClassifier makes; a photo drawn on a canvas factory → the
 * same input as Node's photoToInput for every resize policy and channel order.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createCanvas } from '@napi-rs/canvas';
import { initBackend, ModelLoadError, mapToPhoto, type PreprocessingSpec } from '../src/index.js';
import { saveModel } from '../src/models/io.js';
import { loadClassifier } from '../src/models/load.js';
import { classifierFromEntries, entriesFromDataTransfer, entriesFromFileList, holdsModel, readModelFiles, type FolderEntry } from '../src/models/model-folder-browser.js';
import { photoPreview, photoToInputOnCanvas, type CanvasFactory } from '../src/data/photo-input.js';
import { photoToInput } from '../src/data/photo.js';
import type { RawImage } from '../src/data/pixels.js';

let tmp = '';
let dir = '';

beforeAll(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'glasswing-folder-'));
  dir = path.join(tmp, 'my-model');
  const m = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [12, 12, 3], filters: 4, kernelSize: 3, activation: 'relu', kernelInitializer: tfl.initializers.glorotNormal({ seed: 1 }) }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotNormal({ seed: 2 }) }),
    ],
  });
  await saveModel(m, dir);
  m.dispose();
  fs.writeFileSync(path.join(dir, 'glasswing.json'), JSON.stringify({ range: [0, 255], mean: [120, 110, 100], std: [60, 60, 60], labels: 'names.txt' }));
  fs.writeFileSync(path.join(dir, 'names.txt'), 'cat\ndog\nfox\n');
  // things a real folder also holds, which must not be read
  fs.writeFileSync(path.join(dir, 'photo.png'), 'not read');
  fs.mkdirSync(path.join(dir, 'old'));
  fs.writeFileSync(path.join(dir, 'old', 'model.json'), '{"broken": ');
  fs.writeFileSync(path.join(dir, 'checkpoint.bin'), new Uint8Array(1000));
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** The folder as a picked folder's entries (paths start with its name), recording which are read. */
function entries(read: string[]): FolderEntry[] {
  const out: FolderEntry[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of fs.readdirSync(d).sort()) {
      const full = path.join(d, n);
      if (fs.statSync(full).isDirectory()) walk(full, `${rel}${n}/`);
      else out.push({ path: `${rel}${n}`, read: async () => (read.push(`${rel}${n}`), new Uint8Array(fs.readFileSync(full)).buffer) });
    }
  };
  walk(dir, 'my-model/');
  return out;
}

describe('a picked or dropped model folder', () => {
  it('reads only model.json, its shards, glasswing.json and the labels file, relative to the shallowest model.json', async () => {
    const read: string[] = [];
    const e = entries(read);
    expect(holdsModel(e)).toBe(true);
    const files = await readModelFiles(e);
    expect([...files.keys()].sort()).toEqual(['glasswing.json', 'model.json', 'names.txt', 'weights.bin']);
    expect(read.sort()).toEqual(['my-model/glasswing.json', 'my-model/model.json', 'my-model/names.txt', 'my-model/weights.bin']);
  });

  it('gives the classifier loadClassifier gives: name, preprocessing, class names, logits', async () => {
    const c = await classifierFromEntries(entries([]));
    const ref = await loadClassifier(dir);
    expect(c.name).toBe('my-model');
    expect(c.classNames).toEqual(['cat', 'dog', 'fox']);
    expect(c.preprocessing).toEqual(ref.preprocessing);
    expect([c.domain.low, c.domain.high]).toEqual([0, 255]);
    const x = tf.randomUniform([2, 12, 12, 3], 0, 255, 'float32', 3);
    const a = c.logits(x);
    const b = ref.logits(x);
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([x, a, b]);
    for (const k of [c, ref]) {
      k.dispose();
      k.model?.dispose();
    }
  });

  it('File objects of a FileList use their webkitRelativePath (their name when picked one by one)', async () => {
    const f = new File([fs.readFileSync(path.join(dir, 'names.txt'))], 'names.txt');
    Object.defineProperty(f, 'webkitRelativePath', { value: 'my-model/names.txt' });
    const g = new File(['{}'], 'model.json');
    const [a, b] = entriesFromFileList([f, g]);
    expect(a.path).toBe('my-model/names.txt');
    expect(new TextDecoder().decode(await a.read())).toBe('cat\ndog\nfox\n');
    expect(b.path).toBe('model.json');
    expect(holdsModel([a])).toBe(false);
  });

  it('a dropped folder is walked through its FileSystemEntry tree (directory readers hand out batches), loose files beside it', async () => {
    // the shapes Chromium gives a drop handler: webkitGetAsEntry() trees whose readers return a few entries per call
    const fileEntry = (full: string) => ({
      isFile: true, isDirectory: false, name: path.basename(full), fullPath: full,
      file: (ok: (f: File) => void) => ok(new File([fs.readFileSync(full)], path.basename(full))),
    });
    const dirEntry = (d: string): unknown => ({
      isFile: false, isDirectory: true, name: path.basename(d), fullPath: d,
      createReader: () => {
        const children = fs.readdirSync(d).sort().map((n) => path.join(d, n)).map((f) => (fs.statSync(f).isDirectory() ? dirEntry(f) : fileEntry(f)));
        let i = 0;
        return { readEntries: (ok: (e: unknown[]) => void) => ok(children.slice(i, (i += 2))) };
      },
    });
    const dt = {
      items: [
        { kind: 'file', webkitGetAsEntry: () => dirEntry(dir), getAsFile: () => null },
        { kind: 'file', webkitGetAsEntry: () => null, getAsFile: () => new File(['not a model'], 'cat.jpg') },
        { kind: 'string', webkitGetAsEntry: () => null, getAsFile: () => null },
      ],
      files: [],
    } as unknown as DataTransfer;
    const got = await entriesFromDataTransfer(dt);
    expect(got.map((e) => e.path).sort()).toEqual(['cat.jpg', ...entries([]).map((e) => e.path)].sort());
    expect(holdsModel(got)).toBe(true);
    const c = await classifierFromEntries(got);
    expect(c.name).toBe('my-model');
    expect(c.classNames).toEqual(['cat', 'dog', 'fox']);
    c.dispose();
    c.model?.dispose();
  });

  it('a folder without model.json is a ModelLoadError naming what it holds', async () => {
    const e = entries([]).filter((x) => !x.path.endsWith('model.json'));
    await expect(readModelFiles(e)).rejects.toThrow(ModelLoadError);
    await expect(readModelFiles(e)).rejects.toThrow(/expected a model\.json in the folder; got files \[.*names\.txt/);
  });
});

describe('photos on any canvas', () => {
  const napiCanvas: CanvasFactory = (w, h) => createCanvas(w, h) as unknown as ReturnType<CanvasFactory>;
  const photo: RawImage = { width: 50, height: 37, data: new Uint8ClampedArray(50 * 37 * 4) };
  for (let p = 0; p < 50 * 37; p++) photo.data.set([(p * 7) % 256, (p * 13) % 256, (p >> 3) % 256, 255], 4 * p);
  const source = (() => {
    const c = createCanvas(photo.width, photo.height);
    const ctx = c.getContext('2d');
    const d = ctx.createImageData(photo.width, photo.height);
    d.data.set(photo.data);
    ctx.putImageData(d, 0, 0);
    return c;
  })();

  it('makes the same input as Node\'s photoToInput for every resize policy, range and channel order', async () => {
    const specs: PreprocessingSpec[] = [
      {},
      { resize: 'center-crop', cropFraction: 0.875, range: [0, 255] },
      { resize: 'stretch', range: [-1, 1], channelOrder: 'bgr' },
      { resize: 'pad', padValue: 255, range: [0, 255] },
    ];
    const before = tf.memory().numTensors;
    for (const spec of specs) {
      for (const shape of [[16, 16, 3], [20, 12, 1]] as Array<[number, number, number]>) {
        const a = photoToInputOnCanvas(source, { inputShape: shape, preprocessing: spec }, napiCanvas);
        const b = photoToInput(photo, { inputShape: shape, preprocessing: spec });
        expect(a.info, JSON.stringify(spec)).toEqual(b.info);
        expect(Array.from(await a.input.data()), JSON.stringify(spec)).toEqual(Array.from(await b.input.data()));
        tf.dispose([a.input, b.input]);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a preview keeps the geometry: a map mapped onto it has the preview\'s size', () => {
    const { input, info } = photoToInputOnCanvas(source, { inputShape: [16, 16, 3] }, napiCanvas);
    const pv = photoPreview(source, info, 25, napiCanvas);
    expect([pv.raw.width, pv.raw.height]).toEqual([25, 19]);
    expect(pv.info.scaleX).toBeCloseTo(info.scaleX * (25 / 50), 10);
    const map = tf.ones([1, 16, 16, 1]);
    const onPhoto = mapToPhoto(map, pv.info);
    expect(onPhoto.shape).toEqual([19, 25, 1]);
    // the center crop covers the middle of the preview, not its left and right edges
    const v = onPhoto.arraySync() as number[][][];
    expect(v[9][12][0]).toBeCloseTo(1, 5);
    expect(v[9][0][0]).toBe(0);
    tf.dispose([input, map, onPhoto]);
  });
});
