/**
 * Build the browser bundle: dist/browser/glasswing.js (ES module, src/browser.ts and its
 * dependencies), the worker pool's Web Worker bundle dist/browser/glasswing-worker.js
 * (src/engine/pool/worker-browser.ts: a pool worker with its own wasm backend, Glasswing's kernels and
 * every method), and the tfjs wasm binaries beside them — the threaded-SIMD build's too (its pthread
 * worker script is made from a string inside the bundle, so nothing else is needed and nothing is
 * fetched from elsewhere).
 *
 *   npm run build:browser
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'browser');

/**
 * The pool's Node transport (worker_threads) is imported lazily by the pool and never in a browser,
 * where the page sets the Web Worker transport; its static `node:` imports would otherwise become
 * top-level imports of the ES module bundle, which a browser cannot resolve.
 */
const nodeOnly = {
  name: 'glasswing-node-only',
  setup(b) {
    b.onResolve({ filter: /[\\/]node-transport\.js$|^\.\/node-transport\.js$/ }, (args) => ({ path: args.path, namespace: 'glasswing-node-only' }));
    b.onLoad({ filter: /.*/, namespace: 'glasswing-node-only' }, () => ({
      contents: "export const nodeTransport = () => { throw new Error('the Node worker transport is not in the browser bundle: call setPoolTransport(browserTransport(url))'); };",
      loader: 'js',
    }));
  },
};

/**
 * Both bundles register the methods the page has: from src/robustness only the
 * registered attacks (fgsm, pgd) — its index also exports the Node-side runners (adversarial
 * training, datasets, progress bars on a terminal).
 */
const browserMethods = {
  name: 'glasswing-browser-methods',
  setup(b) {
    b.onResolve({ filter: /[\\/]robustness[\\/]index\.js$/ }, (args) => ({ path: path.resolve(args.resolveDir, args.path), namespace: 'glasswing-robustness' }));
    b.onLoad({ filter: /.*/, namespace: 'glasswing-robustness' }, (args) => ({
      contents: "import './fgsm.ts';\nimport './pgd.ts';\n",
      resolveDir: path.dirname(args.path),
      loader: 'ts',
    }));
  },
};

export async function buildBrowser() {
  fs.mkdirSync(out, { recursive: true });
  const common = {
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    // Node-only branches (the optional tfjs-node backend, locating .wasm files on disk) are never taken in a browser.
    external: ['node:*', '@tensorflow/tfjs-node'],
    plugins: [nodeOnly, browserMethods],
    logLevel: 'warning',
  };
  await build({ ...common, entryPoints: [path.join(root, 'src', 'browser.ts')], outfile: path.join(out, 'glasswing.js') });
  await build({ ...common, entryPoints: [path.join(root, 'src', 'engine', 'pool', 'worker-browser.ts')], outfile: path.join(out, 'glasswing-worker.js') });
  const require = createRequire(import.meta.url);
  const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  for (const f of fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) fs.copyFileSync(path.join(wasmDir, f), path.join(out, f));
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = await buildBrowser();
  console.log(`browser bundle → ${path.relative(process.cwd(), dir)}/glasswing.js`);
}
