/**
 * Backend selection. Order: tfjs-node when the user installed it (optional: it cannot be installed
 * without outside network), then wasm (SIMD), then the pure-JS cpu backend.
 * GLASSWING_BACKEND=wasm|cpu|node overrides the order.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { installWasmKernels, stockKernelsRequested } from './wasm-kernels/index.js';
import { installAllocationTracker } from './memory.js';

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

async function tryWasm(): Promise<boolean> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm files are read from the installed package; a browser fetches them from
    // wherever the page's setWasmPaths (or the bundle's folder by default) says.
    if (typeof process !== 'undefined' && process.versions?.node) {
      const { createRequire } = await import('node:module');
      const require = createRequire(import.meta.url);
      const dir = require.resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/\\]+$/, '');
      wasm.setWasmPaths(dir.endsWith('/') ? dir : dir + '/');
    }
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

async function select(requested?: string): Promise<BackendName> {
  const fromEnv = typeof process !== 'undefined' ? process.env?.GLASSWING_BACKEND : undefined;
  const want = (requested ?? fromEnv ?? '').trim().toLowerCase();
  if (want && !['node', 'wasm', 'cpu'].includes(want)) {
    throw new Error(`GLASSWING_BACKEND must be one of node, wasm, cpu; got "${want}"`);
  }
  const order: BackendName[] = want ? [want as BackendName] : ['node', 'wasm', 'cpu'];
  for (const name of order) {
    const ok = name === 'node' ? await tryNode() : name === 'wasm' ? await tryWasm() : await tf.setBackend('cpu');
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

// Replacement wasm kernels (missing, wrong or slow gradients in stock tfjs 4.22); GLASSWING_STOCK_KERNELS=1 skips them.
onBackendReady((name) => {
  if (name === 'wasm' && !stockKernelsRequested()) installWasmKernels();
});

export function currentBackend(): BackendName | undefined {
  return chosen;
}
