/**
 * Build the browser bundle: dist/browser/glasswing.js (ES module, src/browser.ts and its
 * dependencies) and the tfjs wasm binaries beside it.
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

export async function buildBrowser() {
  fs.mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [path.join(root, 'src', 'browser.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    outfile: path.join(out, 'glasswing.js'),
    // Node-only branches (the optional tfjs-node backend, locating .wasm files on disk) are never taken in a browser.
    external: ['node:*', '@tensorflow/tfjs-node'],
    logLevel: 'warning',
  });
  const require = createRequire(import.meta.url);
  const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  for (const f of fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) fs.copyFileSync(path.join(wasmDir, f), path.join(out, f));
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = await buildBrowser();
  console.log(`browser bundle → ${path.relative(process.cwd(), dir)}/glasswing.js`);
}
