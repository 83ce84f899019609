/**
 * Memory budget: how many samples a method may evaluate at once.
 *
 * Every method that evaluates many inputs (integrated-gradients steps, SmoothGrad samples, occlusion
 * windows, LIME and prediction-difference samples, attack and counterfactual iterations, the
 * contrastive sweep, batched gradients and scores) asks `batchSizeFor(classifier, kind, requested)`
 * for its internal batch size: the smaller of the method's explicit `batchSize` option (an upper
 * bound) and what fits in the budget, given the classifier's measured per-sample footprint.
 *
 * Why: on wasm the heap cannot grow past ~3.9 GB (wasm32), and an allocation that fails there does
 * not throw — tfjs-backend-wasm writes the tensor to address 0 and silently corrupts the heap (or the
 * module aborts). A 224×224 ResNet keeps ~0.3 GB of activations per image for the backward pass, so
 * the old fixed batch sizes (64–256) could not work.
 *
 * Footprint: measured once per classifier and input shape by running one sample (forward, and
 * forward + input gradient) and recording the peak of the bytes allocated on the backend during the
 * run — every buffer the backend allocates counts, tensors and kernels' scratch buffers alike (see
 * `installAllocationTracker`). The measured peak is multiplied by FOOTPRINT_SAFETY for allocations the
 * backend makes outside its tensor storage (XNNPACK's packed weights and im2col buffers). Before that
 * one-sample run, a lower bound computed from the graph's node shapes (every activation of one
 * sample, which the executor keeps alive under tf.tidy) is checked against the budget, so a model
 * that obviously cannot fit fails without any work.
 *
 * Budget: the default (DEFAULT_MEMORY_BUDGET, 1 GiB) fits a browser tab and leaves most of the wasm
 * heap for the caller's own tensors; `setMemoryBudget` or GLASSWING_MEMORY_BUDGET change it globally,
 * `withMemoryBudget` (what `explain`'s `memoryBudget` option uses) for one call. On wasm the budget is
 * further capped at half of what the heap limit leaves after the tensors already alive.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { MemoryBudgetError, OptionError } from '../core/errors.js';

/** 'forward': logits only; 'gradient': logits and the input gradient (activations kept for the backward pass). */
export type MemoryKind = 'forward' | 'gradient';

/** Default working-set budget of one call: 1 GiB. */
export const DEFAULT_MEMORY_BUDGET = 1024 * 1024 * 1024;

/**
 * Usable wasm heap: wasm32 memories stop at 4 GiB; measured here (Node 20, tfjs-backend-wasm 4.22),
 * the heap grew to 3,936 MiB before malloc failed. 3.5 GiB leaves room for fragmentation and the
 * allocations the backend makes outside its tensor storage.
 */
export const WASM_HEAP_LIMIT = 3.5 * 1024 * 1024 * 1024;

/** Factor on the measured peak for allocations outside the backend's tensor storage. */
export const FOOTPRINT_SAFETY = 1.25;

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** Bytes from a number of bytes or a string such as '512MB', '1.5 GiB', '800m'. */
export function parseBytes(value: number | string, what = 'memory budget'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new OptionError(`expected ${what} to be a positive number of bytes; got ${value}`);
    return Math.floor(value);
  }
  const m = /^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$/.exec(String(value));
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined || !(Number(m[1]) > 0)) {
    throw new OptionError(`expected ${what} as bytes or a size like "512MB" or "1.5GB"; got ${JSON.stringify(value)}`);
  }
  return Math.floor(Number(m[1]) * unit);
}

/** Human-readable size for messages: 1.2 GB, 340.5 MB, 12 kB. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(0)} kB`;
  return `${bytes} B`;
}

let globalBudget: number | undefined;
const scoped: number[] = [];

function envBudget(): number | undefined {
  const v = typeof process !== 'undefined' ? process.env?.GLASSWING_MEMORY_BUDGET : undefined;
  return v ? parseBytes(v, 'GLASSWING_MEMORY_BUDGET') : undefined;
}

/** Set the global budget (bytes or a size string); undefined restores the default / GLASSWING_MEMORY_BUDGET. */
export function setMemoryBudget(budget: number | string | undefined): void {
  globalBudget = budget === undefined ? undefined : parseBytes(budget);
}

/** The budget in force: the innermost withMemoryBudget, else setMemoryBudget, else GLASSWING_MEMORY_BUDGET, else the default. */
export function getMemoryBudget(): number {
  return scoped.length > 0 ? scoped[scoped.length - 1] : globalBudget ?? envBudget() ?? DEFAULT_MEMORY_BUDGET;
}

/**
 * Run fn with another budget (the per-call override `explain` uses). Calls interleaved on one
 * backend (two explain calls awaited concurrently) share the innermost budget: await them in turn.
 */
export async function withMemoryBudget<T>(budget: number | string | undefined, fn: () => Promise<T>): Promise<T> {
  if (budget === undefined) return fn();
  scoped.push(parseBytes(budget));
  try {
    return await fn();
  } finally {
    scoped.pop();
  }
}

// ---------------------------------------------------------------------------------------------
// Allocation tracking: every buffer the backend's storage holds, and the peak since a mark.

interface TrackedStorage {
  set(dataId: object, value: unknown): void;
  delete(dataId: object): boolean;
  get(dataId: object): unknown;
  has(dataId: object): boolean;
}

interface Tracker {
  live: number;
  peak: number;
  /** Every data id the storage holds (the backend's own map is a WeakMap and cannot be listed). */
  ids: Set<object>;
  sizes: WeakMap<object, number>;
}

const trackers = new WeakMap<object, Tracker>();

function entryBytes(value: unknown): number {
  const v = value as { shape?: number[]; dtype?: tf.DataType; values?: ArrayLike<unknown> & { byteLength?: number } } | undefined;
  if (!v || !Array.isArray(v.shape) || v.dtype === 'string') return 0;
  const size = v.shape.reduce((a, b) => a * b, 1);
  return size * (v.dtype === 'complex64' ? 8 : v.dtype === 'bool' ? 1 : 4);
}

/**
 * Thrown by the tracker when the wasm allocator returned no memory (it returns 0 instead of failing)
 * or was asked for 4 GB or more (its 32-bit size wraps around).
 */
export class WasmOutOfMemory extends Error {
  constructor(bytes: number) {
    super(`wasm out of memory: malloc of ${formatBytes(bytes)} failed (the wasm32 heap ends at 4 GB)`);
    this.name = 'WasmOutOfMemory';
  }
}

/**
 * Wrap the backend's data storage so it keeps a count of live and peak bytes and the set of live
 * data ids (used by backend recovery to carry tensors over). On wasm it also turns a failed malloc
 * (memoryOffset 0 for a non-empty buffer, or a buffer of ≥ 4 GB whose size wrapped around) into a
 * WasmOutOfMemory error before anything is written. Idempotent; installed by initBackend for every
 * backend.
 */
export function installAllocationTracker(backend: tf.KernelBackend): void {
  const b = backend as unknown as { dataIdMap?: TrackedStorage; data?: TrackedStorage };
  const storage = b.dataIdMap ?? b.data;
  if (!storage || trackers.has(storage)) return;
  const t: Tracker = { live: 0, peak: 0, ids: new Set(), sizes: new WeakMap() };
  trackers.set(storage, t);
  trackers.set(backend, t);
  const set = storage.set.bind(storage);
  const del = storage.delete.bind(storage);
  const isWasm = 'wasm' in (backend as object);
  storage.set = (dataId: object, value: unknown) => {
    const bytes = entryBytes(value);
    // malloc's size is a 32-bit size_t: a buffer of 4 GB or more was allocated with its size wrapped around.
    if (isWasm && bytes > 0 && (bytes >= 2 ** 32 || (value as { memoryOffset?: number }).memoryOffset === 0)) throw new WasmOutOfMemory(bytes);
    const old = t.sizes.get(dataId);
    if (old !== undefined) t.live -= old;
    set(dataId, value);
    t.sizes.set(dataId, bytes);
    t.ids.add(dataId);
    t.live += bytes;
    if (t.live > t.peak) t.peak = t.live;
  };
  storage.delete = (dataId: object) => {
    const old = t.sizes.get(dataId);
    if (old !== undefined) {
      t.live -= old;
      t.sizes.delete(dataId);
    }
    t.ids.delete(dataId);
    return del(dataId);
  };
}

/** Data ids alive on a tracked backend (recovery). */
export function trackedDataIds(backend: tf.KernelBackend): Set<object> | undefined {
  return trackers.get(backend)?.ids;
}

/** Bytes currently held by the backend's storage (tracked backends), else tf.memory().numBytes. */
export function liveBytes(): number {
  const t = trackers.get(tf.backend());
  return t ? t.live : tf.memory().numBytes;
}

/** Run fn and return its result and the peak of the bytes the backend held above the start (sync). */
export function measurePeak<T>(fn: () => T): { result: T; peakBytes: number } {
  const t = trackers.get(tf.backend());
  if (!t) {
    // Untracked backend: the engine's own bookkeeping (tensors only).
    const start = tf.memory().numBytes;
    const result = fn();
    return { result, peakBytes: Math.max(0, tf.memory().numBytes - start) };
  }
  const start = t.live;
  const savedPeak = t.peak;
  t.peak = start;
  try {
    const result = fn();
    return { result, peakBytes: t.peak - start };
  } finally {
    t.peak = Math.max(savedPeak, t.peak);
  }
}

/** measurePeak for async work (benchmarks): other work interleaved on the backend counts too. */
export async function measurePeakAsync<T>(fn: () => Promise<T>): Promise<{ result: T; peakBytes: number }> {
  const t = trackers.get(tf.backend());
  if (!t) {
    const start = tf.memory().numBytes;
    const result = await fn();
    return { result, peakBytes: Math.max(0, tf.memory().numBytes - start) };
  }
  const start = t.live;
  const savedPeak = t.peak;
  t.peak = start;
  // A backend reset inside fn replaces the tracker: read the one in force at the end.
  try {
    const result = await fn();
    const now = trackers.get(tf.backend()) ?? t;
    return { result, peakBytes: Math.max(0, (now === t ? t.peak : now.peak) - start) };
  } finally {
    t.peak = Math.max(savedPeak, t.peak);
  }
}

// ---------------------------------------------------------------------------------------------
// Per-sample footprint

export interface Footprint {
  /** Bytes one sample needs for a forward pass. */
  forward: number;
  /** Bytes one sample needs for the logits and the input gradient. */
  gradient: number;
  /** How the figures were obtained. */
  source: 'measured' | 'estimated';
}

const footprints = new WeakMap<Classifier, Map<string, Footprint>>();

/** Lower bound of the forward footprint from the graph: every node's activation of one sample (float32). */
export function activationBytes(classifier: Classifier): number | undefined {
  const g = classifier.graph;
  if (!g) return undefined;
  let total = 0;
  for (const n of g.nodes) total += n.shape.reduce((a, b) => a * b, 1) * 4;
  return total;
}

/**
 * The classifier's per-sample footprint for inputs of `shape` ([H, W, C]; default its input
 * shape), measured on one sample the first time and cached.
 */
export function footprint(classifier: Classifier, shape: number[] = classifier.inputShape): Footprint {
  const key = `${tf.getBackend()}:${shape.join('x')}`;
  let byShape = footprints.get(classifier);
  const hit = byShape?.get(key);
  if (hit) return hit;
  const mid = (classifier.domain.low + classifier.domain.high) / 2;
  const fwd = measurePeak(() => tf.tidy(() => {
    const x = tf.fill([1, ...shape], mid);
    return classifier.logits(x).dataSync()[0];
  })).peakBytes;
  const grad = measurePeak(() => tf.tidy(() => {
    const x = tf.fill([1, ...shape], mid);
    const g = tf.grad((v: tf.Tensor) => tf.sum(classifier.logits(v)))(x);
    return g.dataSync()[0];
  })).peakBytes;
  const fp: Footprint = {
    forward: Math.ceil(Math.max(fwd, 1) * FOOTPRINT_SAFETY),
    gradient: Math.ceil(Math.max(grad, fwd, 1) * FOOTPRINT_SAFETY),
    source: 'measured',
  };
  if (!byShape) {
    byShape = new Map();
    footprints.set(classifier, byShape);
  }
  byShape.set(key, fp);
  return fp;
}

/** Forget cached footprints (after a backend reset, or when a classifier's model changed). */
export function clearFootprints(classifier?: Classifier): void {
  if (classifier) footprints.delete(classifier);
}

/**
 * The budget actually available: the budget in force, capped on wasm by half of what the heap limit
 * leaves after the bytes already held — the heap was measured growing to 1.2–2.5× the tracked peak
 * (XNNPACK's packed weights live outside the tracked storage, and freed blocks fragment).
 */
export function availableBudget(budget = getMemoryBudget()): number {
  if (tf.getBackend() !== 'wasm') return budget;
  return Math.max(0, Math.min(budget, (WASM_HEAP_LIMIT - liveBytes()) / 2));
}

function describe(kind: MemoryKind): string {
  return kind === 'forward' ? 'forward pass' : 'forward and backward pass';
}

/**
 * Throw MemoryBudgetError unless one sample fits. Uses the graph's lower bound first (no work),
 * then the measured footprint.
 */
export function assertFits(classifier: Classifier, kind: MemoryKind, shape: number[] = classifier.inputShape): Footprint {
  const budget = availableBudget();
  const lower = shape.join() === classifier.inputShape.join() ? activationBytes(classifier) : undefined;
  if (lower !== undefined && lower > budget) {
    throw new MemoryBudgetError(
      `one sample of classifier "${classifier.name}" needs at least ${formatBytes(lower)} for a ${describe(kind)} (its activations); the memory budget is ${formatBytes(budget)}: raise it (setMemoryBudget, GLASSWING_MEMORY_BUDGET or the call's memoryBudget)`,
      lower, budget,
    );
  }
  const fp = footprint(classifier, shape);
  if (fp[kind] > budget) {
    throw new MemoryBudgetError(
      `one sample of classifier "${classifier.name}" needs ${formatBytes(fp[kind])} for a ${describe(kind)}; the memory budget is ${formatBytes(budget)}: raise it (setMemoryBudget, GLASSWING_MEMORY_BUDGET or the call's memoryBudget)`,
      fp[kind], budget,
    );
  }
  return fp;
}

/**
 * Samples per internal batch: min(requested, what fits in the budget), at least 1. Throws
 * MemoryBudgetError when not even one sample fits. `rowsPerSample` counts extra copies one logical
 * sample costs (e.g. an image tiled once per candidate class).
 */
export function batchSizeFor(classifier: Classifier, kind: MemoryKind, requested?: number, opts: { shape?: number[]; rowsPerSample?: number } = {}): number {
  const fp = assertFits(classifier, kind, opts.shape);
  const per = fp[kind] * Math.max(1, opts.rowsPerSample ?? 1);
  const fits = Math.max(1, Math.floor(availableBudget() / per));
  const req = requested === undefined || !Number.isFinite(requested) ? Infinity : Math.max(1, Math.floor(requested));
  return Math.min(req, fits);
}

/** Logits of x [N, K], computed in batches that fit the memory budget (one tensor, the caller's). */
export function batchedLogits(classifier: Classifier, x: tf.Tensor): tf.Tensor2D {
  const n = x.shape[0];
  const bs = batchSizeFor(classifier, 'forward', n, { shape: x.shape.slice(1) });
  if (bs >= n) return classifier.logits(x);
  return tf.tidy(() => {
    const parts: tf.Tensor2D[] = [];
    for (let s = 0; s < n; s += bs) parts.push(tf.tidy(() => classifier.logits(tf.slice(x, s, Math.min(bs, n - s)))));
    return tf.concat(parts, 0);
  });
}
