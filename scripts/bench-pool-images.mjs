/**
 * The per-image counterfactual and robustness methods on the worker pool (Node worker_threads): ms
 * per image of DeepFool, GeoSal, FGSM, PGD-40, LAE, CDeepEx (shipped VAE) and runAttack(PGD-40) on the
 * shipped MNIST CNN with 1, 2 (and more) threads, MNIST test digits. Each row: a warm-up call
 * (workers started, classifier and generator shipped), then the median of `--repeats` calls; the
 * 1-minute load average beside it (the machine is shared: compare the columns of one row).
 *
 *   npm run build && node scripts/bench-pool-images.mjs [--workers 1,2] [--batch 8] [--repeats 3] [--json out/x.json]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lib = await import(pathToFileURL(path.join(root, 'dist', 'src', 'index.js')).href);
const { getPool, shutdownPool } = await import(pathToFileURL(path.join(root, 'dist', 'src', 'engine', 'pool', 'pool.js')).href);
const { runAttack, attacks } = await import(pathToFileURL(path.join(root, 'dist', 'src', 'robustness', 'attack-runner.js')).href);

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const workers = arg('--workers', '1,2').split(',').map(Number);
const batch = Number(arg('--batch', 8));
const repeats = Number(arg('--repeats', 3));

const CASES = [
  { label: 'deepfool', method: 'deepfool', options: {} },
  { label: 'geosal', method: 'geosal', options: {} },
  { label: 'fgsm', method: 'fgsm', options: {} },
  { label: 'pgd (40 steps)', method: 'pgd', options: { steps: 40 } },
  { label: 'lae (mnist-vae-10d)', method: 'lae', options: {}, target: 'second' },
  { label: 'cdeepex (mnist-vae-10d, 50 outer steps)', method: 'cdeepex', options: { outerSteps: 50 } },
  { label: 'runAttack pgd-40', attack: () => attacks.pgd({ steps: 40 }) },
];

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

await lib.initBackend();
const c = await lib.loadDefaultClassifier('mnist-cnn');
const d = await lib.loadMnist({ split: 'test', limit: batch });
const x = d.images;
const labels = Array.from(d.labels);
const rows = [];
for (const cs of CASES) {
  const row = { case: cs.label, batch };
  for (const w of workers) {
    const once = async () => {
      const t0 = performance.now();
      if (cs.attack) await runAttack(c, x, labels, cs.attack(), { workers: w, showProgress: false });
      else (await lib.explain(cs.method, c, x, { workers: w, options: cs.options, target: cs.target })).dispose();
      return performance.now() - t0;
    };
    if (w > 1) await getPool().warm(w - 1, c);
    await once(); // warm-up: caches, shipping
    const ms = [];
    for (let i = 0; i < repeats; i++) ms.push(await once());
    row[`w${w}_ms_per_image`] = median(ms) / batch;
    row[`w${w}_split`] = w > 1 && getPool().lastRun ? `${getPool().lastRun.inWorkers} in workers / ${getPool().lastRun.inCaller} in caller` : 'in caller';
    row[`w${w}_load`] = os.loadavg()[0];
  }
  if (workers.includes(1)) for (const w of workers) row[`w${w}_speedup`] = row.w1_ms_per_image / row[`w${w}_ms_per_image`];
  rows.push(row);
  console.log(JSON.stringify(row));
}
await shutdownPool();
const json = arg('--json');
if (json) fs.writeFileSync(path.resolve(json), JSON.stringify(rows, null, 1));
console.log(`uptime: ${execSync('uptime').toString().trim()}`);
console.log(['case', ...workers.map((w) => `${w} thread${w > 1 ? 's' : ''} (ms/image)`), ...workers.filter((w) => w > 1).map((w) => `speed-up ×${w}`)].join(' | '));
for (const r of rows) {
  console.log([r.case, ...workers.map((w) => r[`w${w}_ms_per_image`].toFixed(1)), ...workers.filter((w) => w > 1).map((w) => (r[`w${w}_speedup`] ?? NaN).toFixed(2))].join(' | '));
}
