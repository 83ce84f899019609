/**
 * Backend selection. Order: tfjs-node when the user installed it (optional: it cannot be installed
 * without outside network), then wasm (SIMD), then the pure-JS cpu backend.
 * GLASSWING_BACKEND=wasm|cpu|node overrides the order. GLASSWING_WASM_THREADS=N (N ≥ 2) starts the
 * wasm backend with N XNNPACK threads in Node (opt-in; 1 thread by default; see wasm-threads.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { installWasmKernels, stockKernelsRequested } from './wasm-kernels/index.js';
import { requestedWasmThreads } from './wasm-threads.js';
import { installAllocationTracker } from './memory.js';
import { installReadYield } from './event-loop.js';

export type BackendName = 'node' | 'wasm' | 'cpu';

let chosen: BackendName | undefined;
let pending: Promise<BackendName> | undefined;
const postInitHooks: Array<(name: BackendName) => void | Promise<void>> = [];

/** Code that patches a backend (e.g. replacement wasm gradient kernels) registers itself here. */
export function onBackendReady(hook: (name: BackendName) => void | Promise<void>): void {
  postInitHooks.push(hook);
}

async function tryNode(): Promise<boolean> {
  try {
    // Indirect specifier so bundlers and tsc do not require the optional package.
    const spec = '@tensorflow/tfjs-node';
    await import(spec);
    return tf.findBackend('tensorflow') != null && (await tf.setBackend('tensorflow'));
  } catch {
    return false;
  }
}

async function tryWasm(threads: number): Promise<boolean> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm files are read from the installed package; a browser fetches them from
    // wherever the page's setWasmPaths (or the bundle's folder by default) says.
    if (typeof process !== 'undefined' && process.versions?.node) {
      const { createRequire } = await import('node:module');
      const require = createRequire(import.meta.url);
      const dir = require.resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/\\]+$/, '');
      wasm.setWasmPaths(dir.endsWith('/') ? dir : dir + '/');
      if (threads > 1) {
        // opt-in (GLASSWING_WASM_THREADS): relies on tfjs internals, see wasm-threads.ts
        const { prepareWasmThreads } = await import('./wasm-threads.js');
        const restore = await prepareWasmThreads(tf, wasm, threads);
        try {
          const ok = await tf.setBackend('wasm');
          if (ok) unrefWasmWorkers();
          return ok;
        } finally {
          restore();
        }
      }
    }
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

/**
 * Let the process exit while the pthread pool idles: emscripten's Node workers are ref'd and would
 * keep the event loop alive after the program's last line (the pool is created whole at start-up).
 */
function unrefWasmWorkers(): void {
  const b = tf.findBackend('wasm') as unknown as { wasm?: { PThread?: { unusedWorkers?: Array<{ unref?: () => void }>; runningWorkers?: Array<{ unref?: () => void }> } } };
  const p = b?.wasm?.PThread;
  for (const w of [...(p?.unusedWorkers ?? []), ...(p?.runningWorkers ?? [])]) w.unref?.();
}

async function select(requested?: string): Promise<BackendName> {
  const fromEnv = typeof process !== 'undefined' ? process.env?.GLASSWING_BACKEND : undefined;
  const want = (requested ?? fromEnv ?? '').trim().toLowerCase();
  if (want && !['node', 'wasm', 'cpu'].includes(want)) {
    throw new Error(`GLASSWING_BACKEND must be one of node, wasm, cpu; got "${want}"`);
  }
  const order: BackendName[] = want ? [want as BackendName] : ['node', 'wasm', 'cpu'];
  // validated here, not inside tryWasm (whose failures fall through to the next backend)
  const threads = order.includes('wasm') ? requestedWasmThreads() : 1;
  for (const name of order) {
    const ok = name === 'node' ? await tryNode() : name === 'wasm' ? await tryWasm(threads) : await tf.setBackend('cpu');
    if (ok) {
      await tf.ready();
      for (const hook of postInitHooks) await hook(name);
      return name;
    }
    if (want) throw new Error(`backend "${want}" was requested but could not be initialised`);
  }
  throw new Error('no TensorFlow.js backend could be initialised');
}

/**
 * Initialise the backend once per process and return its name. Later calls return the same name;
 * a call naming a different backend switches to it.
 */
export async function initBackend(requested?: BackendName): Promise<BackendName> {
  if (chosen && (!requested || requested === chosen)) return chosen;
  if (pending && !requested) return pending;
  pending = select(requested).then((name) => (chosen = name));
  return pending;
}

/** Run the backend-ready hooks again (after backend recovery has re-created the backend). */
export async function runBackendReadyHooks(name: BackendName): Promise<void> {
  for (const hook of postInitHooks) await hook(name);
}

// Byte counts and live buffers of every backend (memory budget, recovery); first, so later hooks' buffers count.
postInitHooks.unshift(() => installAllocationTracker(tf.backend()));

// Awaited reads give the event loop a turn during long runs (event-loop.ts says why).
onBackendReady(() => installReadYield(tf.backend() as unknown as { read?: (dataId: object) => Promise<unknown> }));

// Replacement wasm kernels (missing, wrong or slow gradients in stock tfjs 4.22); GLASSWING_STOCK_KERNELS=1 skips them.
onBackendReady((name) => {
  if (name === 'wasm' && !stockKernelsRequested()) installWasmKernels();
});

export function currentBackend(): BackendName | undefined {
  return chosen;
}

/** XNNPACK threads of the wasm backend (1 unless GLASSWING_WASM_THREADS asked for more); 0 on other backends. */
export async function wasmThreadCount(): Promise<number> {
  if (chosen !== 'wasm') return 0;
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  return wasm.getThreadsCount();
}
