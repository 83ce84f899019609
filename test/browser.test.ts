/**
 * Glasswing in a browser: the bundle from `npm run build:browser` runs in Debian's headless chromium
 * (installed by scripts/ensure-chromium.sh when missing), loads the shipped mnist-cnn over HTTP,
 * picks the wasm backend with Glasswing's kernels, and explains test digits with gradient,
 * attribution, relevance and contrastive (CDeepEx, generator fetched by URL) methods; the maps must
 * equal the ones Node computes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, currentBackend, loadDefaultClassifier, explain } from '../src/index.js';
import { encodePng } from '../src/render/png.js';
import { ensureCommand } from './support/run-node.js';

const root = path.resolve(__dirname, '..');
const METHODS = ['saliency', 'integrated-gradients', 'grad-cam', 'guided-backprop', 'lrp', 'cdeepex'];
const N = 3;

const PAGE = `<!doctype html><html><body><pre id="out">running</pre><script type="module">
import { initBackend, setWasmPaths, loadLayersModel, Classifier, explain, tf, replacedKernelNames, setGeneratorResolver, loadGeneratorFromUrl } from '/glasswing.js';
const out = {};
try {
  setWasmPaths('/');
  setGeneratorResolver((name) => loadGeneratorFromUrl('/models/' + name));
  out.backend = await initBackend();
  out.kernels = replacedKernelNames().length;
  const digits = await (await fetch('/digits.json')).json();
  const c = Classifier.fromModel(await loadLayersModel('/models/mnist-cnn/model.json'));
  const x = tf.tensor4d(digits.pixels.slice(0, ${N} * 784), [${N}, 28, 28, 1]);
  // The second round must end with as many tensors as the first (caches fill on first use).
  for (const round of [0, 1]) {
    if (round === 1) out.baseline = tf.memory().numTensors;
    for (const m of ${JSON.stringify(METHODS)}) {
      const e = await explain(m, c, x);
      out[m] = Array.from(await e.attribution.data());
      e.dispose();
    }
  }
  out.tensors = tf.memory().numTensors;
  x.dispose();
} catch (err) {
  out.error = String((err && err.stack) || err);
}
document.getElementById('out').textContent = JSON.stringify(out);
</script></body></html>`;

/** Debian's chromium, installed by scripts/ensure-chromium.sh when missing. */
function chromium(): Promise<string> {
  return ensureCommand('chromium', path.join(root, 'scripts', 'ensure-chromium.sh'));
}

// Without the background-networking flags chromium keeps dialling out on this closed network.
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let server: http.Server;
let base = '';
let pixels: number[] = [];

beforeAll(async () => {
  const { createWebServer } = await import('../scripts/serve-web.mjs');
  server = await createWebServer({ count: 8, pages: { '/exact.html': PAGE } });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  // Node explains the very digits the page fetches.
  const digits = (await (await fetch(`${base}digits.json`)).json()) as { pixels: number[] };
  pixels = digits.pixels.slice(0, N * 784);
  await initBackend();
}, 120_000);

afterAll(() => {
  server?.close();
});

describe('the browser bundle in headless chromium', () => {
  it('explains MNIST digits with the wasm backend exactly as Node does, without leaking tensors', async () => {
    const { chromium: pw } = await import('playwright-core');
    const browser = await pw.launch({
      executablePath: await chromium(),
      args: CHROMIUM_FLAGS,
    });
    let got: Record<string, unknown>;
    try {
      const page = await browser.newPage();
      const logs: string[] = [];
      page.on('console', (msg) => logs.push(msg.text()));
      page.on('pageerror', (err) => logs.push(String(err)));
      await page.goto(`${base}exact.html`);
      await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'running', undefined, { timeout: 180_000 });
      got = JSON.parse((await page.textContent('#out')) ?? '{}') as Record<string, unknown>;
      expect(got.error, logs.join('\n')).toBeUndefined();
    } finally {
      await browser.close();
    }
    expect(got.backend).toBe('wasm');
    expect(got.kernels as number).toBeGreaterThan(5); // Glasswing's gradient kernels are installed there too
    expect(got.tensors).toBe(got.baseline);           // every method released what it made
    // The same maps in Node.
    expect(currentBackend()).toBe('wasm');
    const c = await loadDefaultClassifier('mnist-cnn');
    const x = tf.tensor4d(pixels, [N, 28, 28, 1]);
    for (const method of METHODS) {
      const e = await explain(method, c, x);
      const ref = Array.from(await e.attribution.data());
      e.dispose();
      const b = got[method] as number[];
      expect(b.length, method).toBe(ref.length);
      let d = 0;
      let r = 0;
      ref.forEach((v, i) => {
        d += (v - b[i]) ** 2;
        r += v * v;
      });
      expect(Math.sqrt(d / Math.max(r, 1e-30)), method).toBeLessThan(1e-5);
    }
    x.dispose();
    c.model?.dispose();
  }, 240_000);

  it('the explorer (web/) runs every method of the bundle on a test digit and paints its map', async () => {
    const { chromium: pw } = await import('playwright-core');
    const browser = await pw.launch({ executablePath: await chromium(), args: CHROMIUM_FLAGS });
    try {
      const page = await browser.newPage({ acceptDownloads: true });
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(String(err)));
      await page.goto(base);
      await page.waitForFunction(() => document.body.dataset.ready || document.body.dataset.error, undefined, { timeout: 60_000 });
      expect(await page.evaluate(() => document.body.dataset.error)).toBeUndefined();
      await page.click('#digits canvas:nth-child(3)');
      const methods = await page.$$eval('#method option', (os) => os.map((o) => (o as HTMLOptionElement).value));
      expect(methods).toEqual(expect.arrayContaining([...METHODS, 'occlusion', 'lime', 'deep-taylor', 'visual-backprop']));
      for (const m of methods) {
        await page.evaluate(() => delete document.body.dataset.done);
        await page.selectOption('#method', m);
        await page.click('#run');
        await page.waitForFunction(() => document.body.dataset.done || document.body.dataset.error, undefined, { timeout: 60_000 });
        expect(await page.evaluate(() => document.body.dataset.error), m).toBeUndefined();
        expect(await page.evaluate(() => document.body.dataset.done)).toBe(m);
        // The painted map is a picture, not one flat colour.
        const distinct = await page.evaluate(() => {
          const c = document.getElementById('map') as HTMLCanvasElement;
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          const seen = new Set<number>();
          for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
          return seen.size;
        });
        expect(distinct, m).toBeGreaterThan(1);
      }
      // the map has its colour bar, and downloads as a PNG
      expect(await page.$$eval('#mapbar canvas.bar', (b) => b.length)).toBe(1);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      expect(download.suggestedFilename()).toMatch(/^mnist-cnn-.+\.png$/);
      const png = fs.readFileSync(await download.path());
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      // the opacity slider redraws the overlay
      const overlayPixels = () => page.evaluate(() => {
        const c = document.getElementById('overlay') as HTMLCanvasElement;
        return Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data).join(',');
      });
      const before = await overlayPixels();
      await page.$eval('#opacity', (el) => {
        (el as HTMLInputElement).value = '1';
        el.dispatchEvent(new Event('input'));
      });
      expect(await overlayPixels()).not.toBe(before);
      // a digit drawn on the canvas becomes the input
      await page.locator('#draw').scrollIntoViewIfNeeded();
      const box = (await page.locator('#draw').boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.8, { steps: 8 });
      await page.mouse.up();
      await page.waitForFunction(() => document.getElementById('inputlabel')?.textContent === 'your drawing');
      const drawn = await page.evaluate(async () => (window as unknown as { explorer: { inputValues(): Promise<number[]> } }).explorer.inputValues());
      expect(drawn).toHaveLength(784);
      expect(Math.max(...drawn)).toBeGreaterThan(0.5);   // the stroke
      expect(Math.min(...drawn)).toBe(0);                // the black background
      // an image dropped on the page becomes the input (resized to 28×28 grey by the model's preprocessing)
      const photo = encodePng({ width: 40, height: 30, data: new Uint8ClampedArray(40 * 30 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7) % 256)) });
      await page.evaluate((b64) => {
        const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
        document.getElementById('drop')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, photo.toString('base64'));
      await page.waitForFunction(() => document.body.dataset.photo === 'dropped.png' || document.body.dataset.error, undefined, { timeout: 30_000 });
      expect(await page.evaluate(() => document.body.dataset.error)).toBeUndefined();
      expect(await page.textContent('#inputlabel')).toMatch(/^dropped\.png \(40×30 → 28×28/);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 300_000);
});
