/**
 * The explorer (web/) with the user's own colour models, in Debian's headless chromium: a layers
 * model and a graph model (the same small MobileNetV2-shaped network saved both ways, each with its
 * own glasswing.json preprocessing and class names) are loaded through the page's folder input,
 * photos through its image input; every method of the menu either paints a finite map or is listed
 * as not applicable with its reason, and the maps equal Node's for the same input.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, explain, listMethods } from '../src/index.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';
import { saveModel } from '../src/models/io.js';
import { exportGraphModel, saveGraphModel } from '../src/models/graph-model-export.js';
import { loadClassifier } from '../src/models/load.js';
import { loadPhoto } from '../src/data/photo.js';
import { encodeJpeg, encodePng } from '../src/render/png.js';
import { ensureCommand } from './support/run-node.js';

const root = path.resolve(__dirname, '..');
const CLASS_NAMES = ['golden retriever', 'tabby cat', 'tiger shark', 'goldfish', 'espresso'];
/** Methods compared with Node (the others must paint a finite map). */
const COMPARED = ['gradient', 'saliency', 'gradient-x-input', 'integrated-gradients', 'grad-cam', 'guided-backprop', 'lrp', 'deep-taylor'];
/** Latent methods need a generator of the classifier's image size; the shipped ones are 28×28×1. */
const LATENT = ['lse', 'lae', 'cdeepex', 'xgems', 'activation-max-code', 'activation-max-expert'];

/** Debian's chromium, installed by scripts/ensure-chromium.sh when missing. */
function chromium(): Promise<string> {
  return ensureCommand('chromium', path.join(root, 'scripts', 'ensure-chromium.sh'));
}
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A w×h photo: smooth colour gradients with a bright disc, so every method has something to find. */
function photo(w: number, h: number): { width: number; height: number; data: Uint8ClampedArray } {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const d = Math.hypot(x - w * 0.6, y - h * 0.4) < Math.min(w, h) / 5;
      data.set(d ? [240, 220, 40, 255] : [Math.round((200 * x) / w), Math.round(40 + (150 * y) / h), 120, 255], 4 * (y * w + x));
    }
  }
  return { width: w, height: h, data };
}

let server: http.Server;
let base = '';
let tmp = '';
let layersDir = '';
let graphDir = '';
let exactPng = '';
let resizedPng = '';
let imagenetDir = '';
let bigJpeg = '';

beforeAll(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'glasswing-explorer-'));
  const model = buildMobileNetV2Shaped({ inputShape: [64, 64, 3], alpha: 0.35, depth: 1, lastFilters: 32, numClasses: CLASS_NAMES.length, seed: 21 });
  // layers model: pixels in [0, 255], ImageNet-style mean/std inside the model, center crop, a labels file with index prefixes
  layersDir = path.join(tmp, 'colour-layers');
  await saveModel(model, layersDir);
  fs.writeFileSync(path.join(layersDir, 'labels.txt'), CLASS_NAMES.map((n, i) => `${i} ${n}`).join('\n') + '\n');
  fs.writeFileSync(path.join(layersDir, 'glasswing.json'), JSON.stringify({ inputSize: [64, 64], range: [0, 255], mean: [123.7, 116.3, 103.5], std: [58.4, 57.1, 57.4], resize: 'center-crop', labels: 'labels.txt' }));
  // graph model (converter-style, BatchNorm folded, open input size): [-1, 1], stretched, class names inline
  graphDir = path.join(tmp, 'colour-graph');
  await saveGraphModel(exportGraphModel(model, { foldBatchNorm: true, dynamicSize: true }), graphDir);
  fs.writeFileSync(path.join(graphDir, 'glasswing.json'), JSON.stringify({ inputSize: [64, 64], range: [-1, 1], resize: 'stretch', classNames: CLASS_NAMES }));
  model.dispose();
  exactPng = path.join(tmp, 'exact-64.png');
  fs.writeFileSync(exactPng, encodePng(photo(64, 64)));
  resizedPng = path.join(tmp, 'photo-150x97.png');
  fs.writeFileSync(resizedPng, encodePng(photo(150, 97)));

  // ImageNet size: 224×224, 1000 classes, a TF-Hub-style labels file with a leading "background" row, uint8-quantised weights
  imagenetDir = path.join(tmp, 'imagenet-graph');
  const big = buildMobileNetV2Shaped({ inputShape: [224, 224, 3], alpha: 0.35, depth: 1, lastFilters: 64, numClasses: 1000, seed: 4, calibrationImages: 2 });
  await saveGraphModel(exportGraphModel(big, { foldBatchNorm: true, quantize: 'uint8' }), imagenetDir);
  big.dispose();
  fs.writeFileSync(path.join(imagenetDir, 'labels.txt'), ['background', ...Array.from({ length: 1000 }, (_, i) => `class ${i}`)].join('\n'));
  fs.writeFileSync(path.join(imagenetDir, 'glasswing.json'), JSON.stringify({ inputSize: [224, 224], range: [-1, 1], resize: 'center-crop', cropFraction: 0.875, labels: 'labels.txt', labelsOffset: 1 }));
  bigJpeg = path.join(tmp, 'photo-640x480.jpg');
  fs.writeFileSync(bigJpeg, encodeJpeg(photo(640, 480), 90));

  const { createWebServer, listenWebServer } = await import('../scripts/serve-web.mjs');
  server = await createWebServer({ count: 4 });
  base = await listenWebServer(server, { port: 0 });
}, 180_000);

afterAll(() => {
  server?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface PageRun {
  methods: string[];
  cards: Array<{ method: string; distinct: number }>;
  skipped: Array<{ method: string; kind: string; text: string }>;
  results: Record<string, { values: number[]; shape: number[]; timeMs: number; target: number }>;
  input: number[];
  top: string;
  classNames: string[];
  info: string;
}

/** Load a model folder and a photo through the page's inputs, run every method (or only `only`, one by one with the explain button), collect what it shows. */
async function runInPage(dir: string, png: string, only?: string[]): Promise<PageRun> {
  const { chromium: pw } = await import('playwright-core');
  const browser = await pw.launch({ executablePath: await chromium(), args: CHROMIUM_FLAGS });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    await page.goto(base);
    await page.waitForFunction(() => document.body.dataset.ready || document.body.dataset.error, undefined, { timeout: 60_000 });
    expect(await page.evaluate(() => document.body.dataset.error)).toBeUndefined();
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
    let baseline: number | undefined;
    await page.setInputFiles('#model-folder', dir);
    await page.waitForFunction(() => document.body.dataset.model || document.body.dataset.error, undefined, { timeout: 60_000 });
    expect(await page.evaluate(() => document.body.dataset.error)).toBeUndefined();
    await page.setInputFiles('#image-file', png);
    await page.waitForFunction(() => document.body.dataset.photo || document.body.dataset.error, undefined, { timeout: 30_000 });
    expect(await page.evaluate(() => document.body.dataset.error)).toBeUndefined();
    if (only) {
      // twice: the second round must end with as many tensors as the first (caches fill on first use)
      const counts: number[] = [];
      for (const round of [0, 1]) {
        for (const m of only) {
          await page.evaluate(() => delete document.body.dataset.done);
          await page.selectOption('#method', m);
          await page.click('#run');
          await page.waitForFunction(() => document.body.dataset.done || document.body.dataset.error, undefined, { timeout: 60_000 });
          expect(await page.evaluate(() => document.body.dataset.error), m).toBeUndefined();
        }
        counts[round] = await page.evaluate(() => (window as unknown as { explorer: { numTensors(): number } }).explorer.numTensors());
      }
      expect(counts[1], 'tensors after the second round').toBe(counts[0]);
      baseline = counts[0];
    } else {
      await page.click('#run-all');
      await page.waitForFunction(() => document.body.dataset.allDone, undefined, { timeout: 170_000 });
    }
    const run = await page.evaluate(async () => {
      const w = window as unknown as { explorer: { results: PageRun['results']; inputValues(): Promise<number[]>; classifier: { classNames: string[] } } };
      const cards = Array.from(document.querySelectorAll('#results .card'), (card) => {
        const c = card.querySelector('canvas.map') as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set<number>();
        for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return { method: (card as HTMLElement).dataset.method!, distinct: seen.size, bar: !!card.querySelector('canvas.bar') };
      });
      return {
        methods: Array.from(document.querySelectorAll('#method option'), (o) => (o as HTMLOptionElement).value),
        cards,
        skipped: Array.from(document.querySelectorAll('#skipped li'), (li) => ({ method: (li as HTMLElement).dataset.method!, kind: (li as HTMLElement).dataset.kind!, text: li.textContent ?? '' })),
        results: w.explorer.results,
        input: await w.explorer.inputValues(),
        top: Array.from(document.querySelectorAll('#topk .name'), (n) => n.textContent).join(' | '),
        classNames: w.explorer.classifier.classNames,
        info: document.getElementById('modelinfo')!.textContent ?? '',
        bars: cards.every((c) => c.bar),
      };
    });
    expect(run.bars, 'every card has a colour bar').toBe(true);
    if (baseline !== undefined) {
      // to a shipped model and back: the shipped one is released, the input remade from the photo
      for (const model of ['mnist-cnn', 'own']) {
        await page.evaluate(() => delete document.body.dataset.top);
        await page.selectOption('#model', model);
        await page.waitForFunction(() => document.body.dataset.top || document.body.dataset.error, undefined, { timeout: 30_000 });
      }
      expect(await page.evaluate(() => (window as unknown as { explorer: { numTensors(): number } }).explorer.numTensors()), 'tensors after switching models').toBe(baseline);
    }
    expect(errors).toEqual([]);
    return run;
  } finally {
    await browser.close();
  }
}

function relL2(ref: ArrayLike<number>, got: ArrayLike<number>): number {
  let d = 0;
  let r = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (ref[i] - got[i]) ** 2;
    r += ref[i] ** 2;
  }
  return Math.sqrt(d / Math.max(r, 1e-30));
}

/** The page's run checked: every method painted or refused for a stated reason, maps equal to Node's on the page's own input. */
/** Node's maps for the page's input (its own shape), compared method by method. */
async function compareWithNode(dir: string, run: PageRun, methods: string[], shape: [number, number, number, number]): Promise<void> {
  const c = await loadClassifier(dir);
  const x = tf.tensor4d(run.input, shape);
  try {
    for (const m of methods) {
      const e = await explain(m, c, x);
      const ref = await e.attribution.data();
      e.dispose();
      const got = run.results[m];
      expect(got, m).toBeDefined();
      expect(got.values.length, m).toBe(ref.length);
      expect(relL2(ref, got.values), m).toBeLessThan(1e-4);
    }
  } finally {
    x.dispose();
    c.dispose();
    c.model?.dispose();
  }
}

async function check(dir: string, run: PageRun, expectedInfo: RegExp): Promise<void> {
  expect(run.info).toMatch(expectedInfo);
  expect(run.classNames).toEqual(CLASS_NAMES);
  expect(run.top).toMatch(/golden retriever|tabby cat|tiger shark|goldfish|espresso/);
  expect(run.methods).toEqual(listMethods().map((m) => m.name));
  const painted = new Set(run.cards.map((c) => c.method));
  // a picture, not one flat colour — unless the method's map is zero everywhere (e.g. a neuron whose rectifier is off for this input)
  for (const c of run.cards) {
    if (c.distinct === 1) expect(run.results[c.method].values.every((v) => v === 0), c.method).toBe(true);
  }
  expect(run.cards.filter((c) => c.distinct > 1).length).toBeGreaterThanOrEqual(run.methods.length - LATENT.length - 2);
  expect(run.skipped.filter((s) => s.kind === 'failed')).toEqual([]);
  for (const s of run.skipped) {
    expect(LATENT, `${s.method} was refused: ${s.text}`).toContain(s.method);
    expect(s.text).toMatch(/generator|28/);
  }
  for (const m of run.methods) expect(painted.has(m) || run.skipped.some((s) => s.method === m), m).toBe(true);
  expect(painted.size).toBeGreaterThanOrEqual(run.methods.length - LATENT.length);
  for (const [m, r] of Object.entries(run.results)) expect(r.values.every(Number.isFinite), m).toBe(true);

  // Node, on the very input the page made from the photo
  await compareWithNode(dir, run, COMPARED, [1, 64, 64, 3]);
}

describe('the explorer with the user\'s own colour models (headless chromium)', () => {
  it('a layers model folder (range [0, 255], mean/std, labels file) and a 64×64 photo: every method, maps equal to Node\'s', async () => {
    const run = await runInPage(layersDir, exactPng);
    await check(layersDir, run, /input 64×64×3, range \[0, 255\], 5 classes, mean 123\.7\/116\.3\/103\.5/);
    // a photo of the input size is the input, pixel for pixel, as Node's loader makes it
    const c = await loadClassifier(layersDir);
    const p = await loadPhoto(exactPng, c);
    const ref = await p.input.data();
    p.input.dispose();
    c.dispose();
    c.model?.dispose();
    expect(Math.max(...run.input.map((v, i) => Math.abs(v - ref[i])))).toBeLessThan(1e-3);
  }, 240_000);

  it('a graph model folder (range [-1, 1], stretch, class names inline) and a 150×97 photo: every method, maps equal to Node\'s', async () => {
    const run = await runInPage(graphDir, resizedPng);
    await check(graphDir, run, /input 64×64×3, range \[-1, 1\], 5 classes, stretch/);
    // resized by Chromium's canvas instead of Skia's in Node: the same picture up to resampling
    const c = await loadClassifier(graphDir);
    const p = await loadPhoto(resizedPng, c);
    const ref = await p.input.data();
    p.input.dispose();
    c.dispose();
    const meanAbs = run.input.reduce((a, v, i) => a + Math.abs(v - ref[i]), 0) / ref.length;
    expect(meanAbs).toBeLessThan(0.05); // of a range 2 wide
  }, 240_000);

  it('a folder without a model and a file that is no image are reported in the page, with what was expected', async () => {
    const { chromium: pw } = await import('playwright-core');
    const browser = await pw.launch({ executablePath: await chromium(), args: CHROMIUM_FLAGS });
    try {
      const page = await browser.newPage();
      await page.goto(base);
      await page.waitForFunction(() => document.body.dataset.ready || document.body.dataset.error, undefined, { timeout: 60_000 });
      const empty = path.join(tmp, 'no-model');
      fs.mkdirSync(empty, { recursive: true });
      fs.writeFileSync(path.join(empty, 'labels.txt'), 'a\nb\n');
      await page.setInputFiles('#model-folder', empty);
      await page.waitForFunction(() => document.body.dataset.error, undefined, { timeout: 30_000 });
      expect(await page.textContent('#status')).toMatch(/^loading the model failed: expected a model\.json in the folder; got files \[no-model\/labels\.txt\]/);
      await page.setInputFiles('#image-file', { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not an image') });
      await page.waitForFunction(() => /reading the image failed/.test(document.getElementById('status')!.textContent ?? ''), undefined, { timeout: 30_000 });
      expect(await page.textContent('#status')).toMatch(/expected a PNG\/JPEG image in notes\.png; could not decode it/);
      // the shipped model is still there and works
      await page.click('#run');
      await page.waitForFunction(() => document.body.dataset.done, undefined, { timeout: 60_000 });
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('ImageNet size: a 224×224 uint8-quantised graph model with 1000 named classes and a 640×480 JPEG; maps equal to Node\'s', async () => {
    const methods = ['gradient', 'grad-cam', 'lrp', 'integrated-gradients'];
    const run = await runInPage(imagenetDir, bigJpeg, methods);
    expect(run.info).toMatch(/input 224×224×3, range \[-1, 1\], 1000 classes, center-crop/);
    expect(run.classNames[0]).toBe('class 0'); // the background row skipped
    expect(run.top.split(' | ')).toHaveLength(5);
    expect(run.top).toMatch(/^\d+: class \d+/);
    await compareWithNode(imagenetDir, run, methods, [1, 224, 224, 3]);
  }, 240_000);
});
