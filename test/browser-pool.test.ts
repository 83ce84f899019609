/**
 * The worker pool in a browser: headless chromium (Debian's, through playwright-core) loads the
 * bundle in the explorer's cross-origin-isolated page; the pool's Web Workers run
 * dist/browser/glasswing-worker.js (their own wasm backend and Glasswing's kernels; the classifier
 * and the CDeepEx generator are sent once per worker). A pooled explanation equals the 1-worker one
 * (≤ 1e-6 relative L2; the per-image methods bit for bit), a worker really computed chunks, and the
 * page ends with as many tensors as it started with. The threaded wasm build (setWasmThreads(2))
 * gives the same maps as the SIMD build.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as path from 'node:path';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ensureCommand } from './support/run-node.js';

const root = path.resolve(__dirname, '..');
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** [method, batch, options]: a batch-split method, two sampling methods split by chunks, per-image methods (one with a generator). */
const CASES: Array<[string, number, Record<string, unknown>]> = [
  ['gradient', 16, {}],
  ['integrated-gradients', 1, { steps: 32 }],
  ['smoothgrad', 1, { samples: 16 }],
  ['deepfool', 4, {}],
  ['cdeepex', 4, { outerSteps: 10 }],
];

const PAGE = `<!doctype html><html><body><pre id="out">running</pre><script type="module">
import { initBackend, setWasmPaths, setWasmThreads, wasmThreadCount, loadLayersModel, Classifier, explain, tf, getPool, shutdownPool, setGeneratorResolver, loadGeneratorFromUrl } from '/glasswing.js';
const q = new URLSearchParams(location.search);
const out = { isolated: self.crossOriginIsolated, rows: [] };
try {
  setWasmPaths('/');
  if (q.get('threads')) setWasmThreads(Number(q.get('threads')));
  setGeneratorResolver((name) => loadGeneratorFromUrl('/models/' + name));
  out.backend = await initBackend();
  out.threads = await wasmThreadCount();
  const c = Classifier.fromModel(await loadLayersModel('/models/mnist-cnn/model.json'));
  const digits = await (await fetch('/digits.json')).json();
  const cases = ${JSON.stringify(CASES)};
  const pooled = q.get('pool') === '1';
  if (pooled) await getPool().warm(1, c);
  // first round: caches (footprints, generators, packed weights) fill; the second must not add tensors
  for (const round of [0, 1]) {
    if (round === 1) out.baseline = tf.memory().numTensors;
    for (const [m, n, options] of cases) {
      const x = tf.tensor4d(digits.pixels.slice(0, n * 784), [n, 28, 28, 1]);
      const row = { method: m };
      const e1 = await explain(m, c, x, { workers: 1, options });
      row.one = Array.from(await e1.attribution.data());
      e1.dispose();
      if (pooled) {
        getPool().lastRun = undefined;
        const e2 = await explain(m, c, x, { workers: 2, options });
        row.two = Array.from(await e2.attribution.data());
        row.inWorkers = getPool().lastRun ? getPool().lastRun.inWorkers : 0;
        e2.dispose();
      }
      x.dispose();
      if (round === 1) out.rows.push(row);
    }
  }
  out.tensors = tf.memory().numTensors;
  await shutdownPool();
} catch (err) {
  out.error = String((err && err.stack) || err);
}
document.getElementById('out').textContent = JSON.stringify(out);
</script></body></html>`;

let server: http.Server;
let base = '';

beforeAll(async () => {
  const { createWebServer } = await import('../scripts/serve-web.mjs');
  server = await createWebServer({ count: 16, pages: { '/pool.html': PAGE } });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}, 120_000);

afterAll(() => {
  server?.close();
});

type Row = { method: string; one: number[]; two?: number[]; inWorkers?: number };
type Out = { isolated: boolean; backend: string; threads: number; rows: Row[]; baseline: number; tensors: number; error?: string };

async function runPage(query: string): Promise<Out> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: await ensureCommand('chromium', path.join(root, 'scripts', 'ensure-chromium.sh')), args: CHROMIUM_FLAGS });
  try {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (msg) => logs.push(msg.text()));
    page.on('pageerror', (err) => logs.push(String(err)));
    await page.goto(`${base}pool.html?${query}`);
    await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'running', undefined, { timeout: 240_000 });
    const got = JSON.parse((await page.textContent('#out')) ?? '{}') as Out;
    expect(got.error, logs.join('\n')).toBeUndefined();
    return got;
  } finally {
    await browser.close();
  }
}

function relL2(a: number[], b: number[]): number {
  let d = 0;
  let r = 0;
  a.forEach((v, i) => {
    d += (v - b[i]) ** 2;
    r += v * v;
  });
  return Math.sqrt(d / Math.max(r, 1e-30));
}

describe('the worker pool on Web Workers in chromium', () => {
  let simd: Out;

  it('a pooled explanation equals the 1-worker one; workers computed chunks; no tensors left', async () => {
    simd = await runPage('pool=1');
    expect(simd.isolated).toBe(true);
    expect(simd.backend).toBe('wasm');
    expect(simd.threads).toBe(1);             // the SIMD build by default
    expect(simd.tensors).toBe(simd.baseline);
    for (const r of simd.rows) {
      expect(r.two!.length, r.method).toBe(r.one.length);
      expect(r.inWorkers, `${r.method}: a Web Worker computed a chunk`).toBeGreaterThan(0);
      if (['deepfool', 'cdeepex', 'gradient'].includes(r.method)) expect(r.two, r.method).toEqual(r.one);
      else expect(relL2(r.one, r.two!), r.method).toBeLessThanOrEqual(1e-6);
    }
  }, 300_000);

  it('the threaded wasm build (2 XNNPACK threads) gives the SIMD build\'s maps', async () => {
    const threaded = await runPage('threads=2');
    expect(threaded.threads).toBe(2);
    expect(threaded.tensors).toBe(threaded.baseline);
    for (const r of threaded.rows) {
      const ref = simd.rows.find((s) => s.method === r.method)!;
      expect(relL2(ref.one, r.one), r.method).toBeLessThan(1e-5);
    }
  }, 300_000);
});
