/**
 * Opt-in multi-threaded wasm in Node (GLASSWING_WASM_THREADS=N, N ≥ 2; default 1 thread).
 *
 * tfjs-backend-wasm 4.22 switches threads off in Node (tfjs issue #3830): its flag
 * WASM_HAS_MULTITHREAD_SUPPORT is false there, and the emscripten pthread workers it would start
 * are handed blob: URLs, which Node's worker_threads cannot load. The shipped threaded-SIMD build
 * does run in Node when (a) the flag is set, (b) the worker script is a file — the package's worker
 * source, with its one browser-only line (importing the main script from a Blob) replaced by the
 * path of the shipped wasm-out/tfjs-backend-wasm-threaded-simd.js — and (c) the C++ side, which
 * caps its pool at half the logical cores, is told there are at least 2·N cores while it starts.
 * All three are tfjs internals: this is optional, measured (docs/engine.md), and off by default.
 *
 * XNNPACK then splits each convolution/matmul over N threads: ~2× on conv-heavy batches with 2
 * free cores, nothing for the JS-side loops of the replacement kernels. Node modules are imported
 * lazily so the browser bundle (where the page's own COOP/COEP decide about threads) never loads them.
 */
import { OptionError } from '../core/errors.js';

/** Threads asked for by GLASSWING_WASM_THREADS (1 when unset). */
export function requestedWasmThreads(): number {
  const v = typeof process !== 'undefined' ? process.env?.GLASSWING_WASM_THREADS : undefined;
  if (v == null || v === '') return 1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new OptionError(`expected GLASSWING_WASM_THREADS to be an integer from 1 to 64; got "${v}"`);
  return n;
}

const WORKER_PATCH_POINT = 'var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)';

/**
 * Prepare tfjs-backend-wasm to start with `threads` XNNPACK threads; call before tf.setBackend('wasm')
 * and call the returned function right after it (it undoes the temporary patches).
 */
export async function prepareWasmThreads(
  tf: { env(): { set(flag: string, value: unknown): void } },
  wasm: { setThreadsCount(n: number): void },
  threads: number,
): Promise<() => void> {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const outDir = join(require.resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/\\]+$/, ''), '..', 'wasm-out');
  const mainScript = join(outDir, 'tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require(join(outDir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  // tfjs escapes the newlines of string literals the same way before making its Blob.
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  if (!source.includes(WORKER_PATCH_POINT)) {
    throw new Error('GLASSWING_WASM_THREADS: this tfjs-backend-wasm build has an unknown pthread worker; run with 1 thread');
  }
  const dir = mkdtempSync(join(tmpdir(), 'glasswing-wasm-'));
  const workerFile = join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js');
  writeFileSync(workerFile, source.replace(WORKER_PATCH_POINT, `importScripts(${JSON.stringify(mainScript)})`));

  const os = require('node:os') as { cpus: () => unknown[] };
  const cpus = os.cpus;
  const createObjectURL = URL.createObjectURL;
  os.cpus = () => {
    const c = cpus();
    while (c.length < 2 * threads) c.push(c[0]);
    return c;
  };
  URL.createObjectURL = ((obj: Blob) => (obj instanceof Blob && obj.type === 'application/javascript' ? workerFile : createObjectURL(obj))) as typeof URL.createObjectURL;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  return () => {
    os.cpus = cpus;
    URL.createObjectURL = createObjectURL;
  };
}
