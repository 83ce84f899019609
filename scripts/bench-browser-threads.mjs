/**
 * Threaded wasm vs the worker pool vs one thread in headless Chromium (Debian's chromium through
 * playwright-core, as the browser tests drive it), in a cross-origin-isolated page served by the
 * explorer's server. Configurations: `1` = the SIMD build, one thread; `t1` = the threaded build with
 * 1 XNNPACK thread (tfjs' own choice on 2 cores); `N` ≥ 2 = the threaded build with N threads;
 * `wN` = the SIMD build with the worker pool at N threads (the page + N − 1 Web Workers);
 * `auto` = the bundle's defaults. Each configuration runs in a fresh page (the wasm module starts
 * once per page); the configurations alternate over `--rounds`.
 *
 * Rows: the shipped MNIST CNN's forward and input gradient (Classifier.logits / inputGradient: one
 * thread's work, what XNNPACK threads can speed up) at batch 1 and 32, and through `explain` (what the
 * pool splits): gradient at batch 32, integrated gradients (50 steps) and SmoothGrad (25 samples) at
 * batch 1, DeepFool at batch 8; a 224² MobileNetV2-shaped model's forward and gradient at batch 1,
 * explain('gradient') at batch 4 and integrated gradients (8 steps) at batch 1.
 *
 *   npm run build && node scripts/bench-browser-threads.mjs [--configs 1,2,w2] [--rounds 2] [--repeats 5] [--mobilenet true] [--json out/x.json]
 *
 * Prints a table (median of the repeats over all rounds, ms/image) with the machine's load average.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createWebServer, listenWebServer } from './serve-web.mjs';


const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const PAGE = `<!doctype html><html><body><pre id="out">running</pre><script type="module">
import { initBackend, setWasmPaths, setWasmThreads, wasmThreadCount, loadLayersModel, Classifier, inputGradient, explain, getPool, shutdownPool, buildMobileNetV2Shaped, tf } from '/glasswing.js';
const q = new URLSearchParams(location.search);
const repeats = Number(q.get('repeats') ?? 5);
const out = { isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency, rows: [] };
function median(a) { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; }
async function time(fn) {
  const r = await fn(); const ts = Array.isArray(r) ? r : [r];
  for (const t of ts) await t.data();
  tf.dispose(ts);
}
async function bench(name, c, shape, kind, f) {
  const x = tf.randomUniform(shape, 0, 1, 'float32', 7);
  const run = () => f(x);
  await time(run); await time(run);                   // warm-up: packed weights, caches, workers' copies
  const ms = [];
  for (let i = 0; i < repeats; i++) { const t0 = performance.now(); await time(run); ms.push(performance.now() - t0); }
  x.dispose();
  out.rows.push({ model: name, kind, batch: shape[0], ms_per_image: median(ms) / shape[0], min_ms_per_image: Math.min(...ms) / shape[0] });
}
const forward = (c) => (x) => c.logits(x);
const gradient = (c) => (x) => { const g = inputGradient(c, x, new Array(x.shape[0]).fill(1)); return [g.grad, g.scores]; };
// explain has read its attribution when it returns (its timing covers the computation)
const method = (c, m, options, workers) => async (x) => { (await explain(m, c, x, { target: 1, options, workers })).dispose(); return []; };
try {
  setWasmPaths('/');
  const t = q.get('threads');
  const workers = t.startsWith('w') ? Number(t.slice(1)) : 1;
  if (t === 'auto') setWasmThreads('auto');
  else if (t.startsWith('w')) setWasmThreads(1);
  else if (t.startsWith('t')) setWasmThreads(Number(t.slice(1)), { threadedBuild: true }); // 't1': the threaded build with 1 thread
  else setWasmThreads(Number(t));
  out.backend = await initBackend();
  out.threads = await wasmThreadCount();
  out.workers = workers;
  out.wasm = performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.endsWith('.wasm')).map((n) => n.split('/').pop());
  const w = t === 'auto' ? undefined : workers;
  const mnist = Classifier.fromModel(await loadLayersModel('/models/mnist-cnn/model.json'));
  if (workers > 1) await getPool().warm(workers - 1, mnist);
  for (const b of [1, 32]) {
    await bench('mnist-cnn', mnist, [b, 28, 28, 1], 'forward', forward(mnist));
    await bench('mnist-cnn', mnist, [b, 28, 28, 1], 'gradient', gradient(mnist));
  }
  await bench('mnist-cnn', mnist, [32, 28, 28, 1], 'explain gradient', method(mnist, 'gradient', {}, w));
  await bench('mnist-cnn', mnist, [1, 28, 28, 1], 'explain integrated-gradients-50', method(mnist, 'integrated-gradients', { steps: 50 }, w));
  await bench('mnist-cnn', mnist, [1, 28, 28, 1], 'explain smoothgrad-25', method(mnist, 'smoothgrad', { samples: 25 }, w));
  await bench('mnist-cnn', mnist, [8, 28, 28, 1], 'explain deepfool', method(mnist, 'deepfool', {}, w));
  if (q.get('mobilenet') !== 'false') {
    const m = Classifier.fromModel(buildMobileNetV2Shaped({ seed: 0 }));
    if (workers > 1) await getPool().warm(workers - 1, m);
    await bench('mobilenetv2-224', m, [1, 224, 224, 3], 'forward', forward(m));
    await bench('mobilenetv2-224', m, [1, 224, 224, 3], 'gradient', gradient(m));
    await bench('mobilenetv2-224', m, [4, 224, 224, 3], 'explain gradient', method(m, 'gradient', {}, w));
    await bench('mobilenetv2-224', m, [1, 224, 224, 3], 'explain integrated-gradients-8', method(m, 'integrated-gradients', { steps: 8 }, w));
  }
  await shutdownPool();
} catch (err) { out.error = String((err && err.stack) || err); }
document.getElementById('out').textContent = JSON.stringify(out);
</script></body></html>`;

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

export async function benchBrowserThreads({ configs = ['1', '2'], rounds = 2, repeats = 5, mobilenet = true } = {}) {
  const server = await createWebServer({ count: 8, pages: { '/bench-threads.html': PAGE } });
  const base = await listenWebServer(server, { port: 0 });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: execSync('command -v chromium').toString().trim(), args: CHROMIUM_FLAGS });
  const results = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const cfg of configs) {
        const page = await browser.newPage();
        const logs = [];
        page.on('pageerror', (e) => logs.push(String(e)));
        await page.goto(`${base}bench-threads.html?threads=${cfg}&repeats=${repeats}&mobilenet=${mobilenet}`);
        await page.waitForFunction(() => document.getElementById('out')?.textContent !== 'running', undefined, { timeout: 900_000 });
        const got = JSON.parse(await page.textContent('#out'));
        await page.close();
        if (got.error) throw new Error(`config ${cfg}: ${got.error}\n${logs.join('\n')}`);
        results.push({ config: cfg, round: r, load: os.loadavg()[0], ...got });
      }
    }
  } finally {
    await browser.close();
    server.close();
  }
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const configs = arg('--configs', '1,2').split(',');
  const results = await benchBrowserThreads({
    configs,
    rounds: Number(arg('--rounds', 2)),
    repeats: Number(arg('--repeats', 5)),
    mobilenet: arg('--mobilenet', 'true') !== 'false',
  });
  const json = arg('--json');
  if (json) fs.writeFileSync(path.resolve(json), JSON.stringify(results, null, 1));
  const keyOf = (row) => `${row.model} ${row.kind} b${row.batch}`;
  const table = new Map();
  for (const res of results) {
    for (const row of res.rows) {
      const k = keyOf(row);
      if (!table.has(k)) table.set(k, {});
      (table.get(k)[res.config] ??= []).push(row.ms_per_image);
    }
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(`uptime: ${execSync('uptime').toString().trim()}`);
  for (const c of configs) {
    const r = results.find((x) => x.config === c);
    console.log(`config ${c}: backend ${r.backend}, isolated ${r.isolated}, XNNPACK threads ${r.threads}, pool threads ${r.workers}, wasm ${r.wasm.join(' ')}`);
  }
  console.log(['case', ...configs].join(' | '));
  for (const [k, v] of table) console.log([k, ...configs.map((c) => (v[c] ? med(v[c]).toFixed(2) : '-'))].join(' | '));
  console.log(`rounds: ${results.map((r) => `${r.config}@load ${r.load.toFixed(2)}`).join(', ')}`);
}

