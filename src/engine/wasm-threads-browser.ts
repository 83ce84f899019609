/**
 * Threads of the wasm backend in a browser page (the bundle's counterpart of wasm-threads.ts).
 *
 * tfjs-backend-wasm starts its threaded-SIMD build by itself when the page is cross-origin isolated
 * (COOP same-origin + COEP require-corp: SharedArrayBuffer can be posted), with a thread count the
 * C++ side derives from `navigator.hardwareConcurrency` — half the logical cores, i.e. ONE XNNPACK
 * thread on a 2-core machine, which is the threaded build's overhead without its benefit. The page
 * decides here, before `initBackend()`:
 *
 * - `1`: the single-threaded SIMD build, even in an isolated page (the threaded build's flag is
 *   switched off, so no pthread workers are started);
 * - `N ≥ 2`: the threaded build with N XNNPACK threads (needs `crossOriginIsolated`; else a typed
 *   error). The C++ side caps the pool at half of `navigator.hardwareConcurrency`, so that value is
 *   raised to 2·N while the backend starts and restored when it is ready;
 * - `'auto'` (the bundle's default): the configuration measured fastest (docs/browser.md, "Threads and
 *   workers in the browser"): see {@link autoWasmThreads} (today: 1, the SIMD build).
 *
 * The threaded build's worker script is not a file: tfjs makes it from a string in the bundle (a
 * blob: URL) and hands the pthread workers the module factory as a Blob, so nothing is fetched but
 * the .wasm binary, from the folder given to `setWasmPaths`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { OptionError } from '../core/errors.js';
import { onBackendReady, initBackend, currentBackend, type BackendName } from './backend.js';

/** What the page asked for: a thread count, or 'auto'. */
export type WasmThreadsSetting = number | 'auto';

let setting: WasmThreadsSetting = 'auto';
let forceThreadedBuild = false;
let restore: (() => void) | undefined;
let applied: number | undefined;

/** True in a cross-origin-isolated page (SharedArrayBuffer usable, threaded wasm possible). */
export function isCrossOriginIsolated(): boolean {
  return typeof globalThis !== 'undefined' && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
}

/** Logical cores the browser reports (1 when it does not say). */
function logicalCores(): number {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  return typeof n === 'number' && n >= 1 ? n : 1;
}

/**
 * The thread count 'auto' stands for: the measured-faster configuration, 1 (the SIMD build). In
 * headless Chromium on the 2-core test machine, shared with other jobs (load average 5–8), the
 * threaded build with 2 XNNPACK threads was 2–30× SLOWER than the SIMD build on every case (MNIST
 * CNN forward/gradient at batch 1 and 32, MobileNetV2 224² forward and gradient): each parallel
 * operator ends in a barrier that waits for the other thread, and a descheduled thread costs a
 * scheduler slice per operator. The threaded build with 1 thread (tfjs' own choice there) was no
 * faster than the SIMD build (±20 % at load 5–8, up to 2× slower at load 12–13). Figures:
 * docs/browser.md, "Threads and workers in the browser". A page that owns its
 * cores can still ask for threads with setWasmThreads(N); the pool's Web Workers
 * (transport-browser) split the work without per-operator barriers.
 */
export function autoWasmThreads(): number {
  return 1;
}

/**
 * Choose the wasm backend's threads for this page; call before `initBackend()` (the wasm module
 * is instantiated once per page). `1` = single-threaded SIMD build; `N ≥ 2` = threaded build with N
 * threads (cross-origin isolated pages only); `'auto'` = {@link autoWasmThreads}.
 * `threadedBuild: true` with 1 thread starts the threaded build with one XNNPACK thread — what tfjs
 * itself picks in an isolated page on a 2-core machine — for measurements.
 */
export function setWasmThreads(threads: WasmThreadsSetting, opts: { threadedBuild?: boolean } = {}): void {
  if (threads !== 'auto' && (!Number.isInteger(threads) || threads < 1 || threads > 8)) {
    throw new OptionError(`expected wasm threads to be 'auto' or an integer from 1 to 8; got ${String(threads)}`);
  }
  if (applied !== undefined) throw new OptionError('setWasmThreads must be called before initBackend(): the wasm backend has already started');
  if (threads !== 'auto' && threads > 1 && !isCrossOriginIsolated()) {
    throw new OptionError(`${threads} wasm threads need a cross-origin-isolated page (COOP: same-origin, COEP: require-corp); this page is not`);
  }
  if (opts.threadedBuild && !isCrossOriginIsolated()) throw new OptionError('the threaded wasm build needs a cross-origin-isolated page (COOP: same-origin, COEP: require-corp); this page is not');
  setting = threads;
  forceThreadedBuild = opts.threadedBuild === true;
}

/** The setting given to setWasmThreads ('auto' unless changed). */
export function wasmThreadsSetting(): WasmThreadsSetting {
  return setting;
}

/**
 * Apply the setting to tfjs-backend-wasm; called by the browser's initBackend right before the
 * backend starts. Returns the thread count asked for.
 */
export function applyWasmThreads(): number {
  const n = setting === 'auto' ? autoWasmThreads() : setting;
  if (applied !== undefined) return applied;
  applied = n;
  if (n <= 1 && !forceThreadedBuild) {
    // The plain SIMD build: no pthread workers, no SharedArrayBuffer heap.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    return n;
  }
  setThreadsCount(n);
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav && logicalCores() < 2 * n) {
    // The C++ side caps XNNPACK's pool at hardwareConcurrency / 2: report 2·N cores while it starts.
    Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * n, configurable: true });
    restore = () => {
      delete (nav as { hardwareConcurrency?: number }).hardwareConcurrency;
      restore = undefined;
    };
  }
  return n;
}

// The own-property shadowing navigator.hardwareConcurrency goes as soon as the backend is up.
onBackendReady(() => restore?.());

/**
 * The browser bundle's `initBackend`: applies the page's wasm-threads setting, then starts the
 * backend as everywhere else (Glasswing's kernels installed by the backend-ready hooks).
 */
export async function initBrowserBackend(requested?: BackendName): Promise<BackendName> {
  if (currentBackend() === undefined && (requested === undefined || requested === 'wasm')) applyWasmThreads();
  return initBackend(requested);
}
