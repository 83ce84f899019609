/**
 * Entry of a browser pool worker (a Web Worker running dist/browser/glasswing-worker.js, built by
 * scripts/build-browser.mjs): its own wasm backend with Glasswing's kernels, the method modules, and
 * `serveWorker` over the worker's global scope (see worker-main.ts).
 *
 * The wasm binaries are fetched from the worker script's own folder (the build puts the worker
 * bundle beside them); `?wasm=URL` in the worker's URL names another folder. Each worker runs the
 * single-threaded SIMD build: the pool is the parallelism, and XNNPACK threads inside each worker would
 * oversubscribe the cores (and start nested pthread workers in every pool worker).
 */
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { serveWorker } from './worker-main.js';
import type { HostMessage, WorkerMessage } from './protocol.js';

interface WorkerScope {
  location: { href: string };
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: 'message', handler: (e: { data: unknown }) => void): void;
}

const scope = globalThis as unknown as WorkerScope;
const here = new URL(scope.location.href);
setWasmPaths(here.searchParams.get('wasm') ?? new URL('./', here).href);
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
serveWorker({
  post: (message: WorkerMessage, transfer: Transferable[]) => scope.postMessage(message, transfer),
  onMessage: (handler: (message: HostMessage) => void) => scope.addEventListener('message', (e) => handler(e.data as HostMessage)),
});
