/**
 * Backend recovery: a wasm abort must not poison the process.
 *
 * When the wasm module aborts (out of memory, `memory access out of bounds`, `table index is out of
 * bounds`, `divide by zero`, `unreachable`, `Aborted()`), its heap is in an unknown state: later
 * kernels read garbage or abort at once. `guardBackend(fn)` — used by `explain` and the other
 * long-running entry points — catches such an error (and any other error after which a tiny
 * self-check computes wrong numbers), re-creates the wasm backend, and throws a BackendResetError
 * for that call only; the next call works.
 *
 * Re-creating the backend: the old backend is made inert (its dispose and disposeData no longer call
 * into the broken module), removed, and registered again with tfjs-backend-wasm's own factory, which
 * instantiates a new wasm module; the backend-ready hooks run again (allocation tracker, Glasswing's
 * replacement kernels). Every tensor alive on the old backend is carried over to the new one with the
 * same data id, so tensor objects held by the caller stay valid: its bytes are copied from the old
 * heap (an abort rarely touches data buffers, but nothing guarantees it), except for the weights of
 * classifiers seen by a guarded call, which are restored from a host-side snapshot taken before the
 * first guarded call on that classifier (retaken when a weight variable gets a new buffer, e.g.
 * after training). The snapshot costs one float32 copy of the weights in JS memory (14 MB for
 * MobileNetV2, 100 MB for ResNet-50).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { BackendResetError, GlasswingError } from '../core/errors.js';
import { currentBackend, runBackendReadyHooks } from './backend.js';
import { clearFootprints, trackedDataIds, WasmOutOfMemory } from './memory.js';
import { uninstallWasmKernels } from './wasm-kernels/index.js';

interface WasmData { id: number; memoryOffset: number | null; shape: number[]; dtype: tf.DataType; refCount: number; stringBytes?: Uint8Array[] }
interface WasmBackendLike extends tf.KernelBackend {
  wasm: { HEAPU8: Uint8Array } | null;
  dataIdMap: { get(dataId: object): WasmData | undefined; has(dataId: object): boolean };
  move(dataId: object, values: unknown, shape: number[], dtype: tf.DataType, refCount: number): void;
}
interface EngineLike {
  registry: Record<string, tf.KernelBackend>;
  registryFactory: Record<string, { factory: () => tf.KernelBackend | Promise<tf.KernelBackend>; priority: number }>;
  state: {
    tensorInfo: WeakMap<object, { backend: tf.KernelBackend }>;
    kernelDepth: number;
    gradientDepth: number;
    activeTape: unknown;
  };
}

const ABORT_PATTERN = /Aborted\(|memory access out of bounds|table index is out of bounds|divide by zero|integer divide|unreachable|out of memory|Cannot enlarge memory|null function|function signature mismatch|integer overflow|index out of bounds|wasm out of memory/i;

/** Whether an error comes from the wasm module failing (as opposed to a Glasswing or tfjs check). */
export function isWasmAbort(err: unknown): boolean {
  if (err instanceof GlasswingError) return false;
  if (err instanceof WasmOutOfMemory) return true;
  if (typeof WebAssembly !== 'undefined' && err instanceof WebAssembly.RuntimeError) return true;
  const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return ABORT_PATTERN.test(msg);
}

/**
 * A tiny computation with known results (elementwise, matmul, conv): false when the backend
 * throws or computes wrong numbers. Runs in well under a millisecond.
 */
export function backendHealthy(): boolean {
  try {
    const out = tf.tidy(() => {
      const a = tf.tensor1d([1, 2, 3, 4]);
      const s = tf.add(a, 1);
      const m = tf.matMul(tf.reshape(a, [2, 2]), tf.reshape(a, [2, 2]));
      const c = tf.conv2d(tf.reshape(a, [1, 2, 2, 1]) as tf.Tensor4D, tf.ones([2, 2, 1, 1]) as tf.Tensor4D, 1, 'valid');
      return tf.concat([s, tf.reshape(m, [4]), tf.reshape(c, [1])]);
    });
    const v = out.dataSync();
    out.dispose();
    const want = [2, 3, 4, 5, 7, 10, 15, 22, 10];
    return want.every((w, i) => v[i] === w);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Weight snapshots of classifiers seen by guarded calls

interface WeightSnapshot { dataIds: object[]; variables: tf.Variable[]; values: Float32Array[] }

const snapshots = new WeakMap<Classifier, WeightSnapshot>();
const liveClassifiers = new Set<WeakRef<Classifier>>();

function modelVariables(classifier: Classifier): tf.Variable[] {
  const model = classifier.model as unknown as { weights?: Array<{ read(): tf.Tensor; val?: tf.Variable }> } | undefined;
  // graph models and the preprocess node hold plain tensors (graphWeights): snapshot those too
  const own = (classifier.graphWeights ?? []) as tf.Variable[];
  if (!model?.weights) return own;
  return [...model.weights.map((w) => (w.val ?? w.read()) as tf.Variable), ...own];
}

/**
 * Keep a host copy of the classifier's weights (idempotent; retaken when a weight variable got a
 * new buffer since the last snapshot). Called at the start of every guarded call.
 */
export function snapshotWeights(classifier: Classifier): void {
  if (currentBackend() !== 'wasm') return;
  const vars = modelVariables(classifier);
  const prev = snapshots.get(classifier);
  if (prev && prev.variables.length === vars.length && vars.every((v, i) => prev.dataIds[i] === v.dataId && prev.variables[i] === v)) return;
  if (!prev) liveClassifiers.add(new WeakRef(classifier));
  snapshots.set(classifier, {
    variables: vars,
    dataIds: vars.map((v) => v.dataId),
    values: vars.map((v) => (v.dtype === 'float32' ? (v.dataSync() as Float32Array).slice() : Float32Array.from(v.dataSync() as ArrayLike<number>))),
  });
}

function snapshotValues(): Map<object, Float32Array> {
  const byId = new Map<object, Float32Array>();
  for (const ref of liveClassifiers) {
    const c = ref.deref();
    if (!c) {
      liveClassifiers.delete(ref);
      continue;
    }
    const s = snapshots.get(c);
    if (!s) continue;
    s.variables.forEach((v, i) => {
      if (v.dataId === s.dataIds[i] && v.dtype === 'float32') byId.set(v.dataId, s.values[i]);
    });
    clearFootprints(c);
  }
  return byId;
}

// ---------------------------------------------------------------------------------------------
// Reset

let resets = 0;

/** How many times the backend was re-created in this process (tests, diagnostics). */
export function backendResetCount(): number {
  return resets;
}

/**
 * Re-create the wasm backend and carry every live tensor over (see the module comment). Returns the
 * number of tensors carried over. No-op on other backends.
 */
export async function resetBackend(): Promise<number> {
  if (tf.getBackend() !== 'wasm') return 0;
  const engine = tf.engine() as unknown as EngineLike;
  const old = engine.registry.wasm as WasmBackendLike;
  const entry = engine.registryFactory.wasm;
  const ids = trackedDataIds(old) ?? new Set<object>();
  const restore = snapshotValues();
  // 1. Copy every tensor's bytes out of the old heap.
  const heap = old.wasm?.HEAPU8;
  const carried: Array<{ dataId: object; values: unknown; shape: number[]; dtype: tf.DataType; refCount: number }> = [];
  for (const dataId of ids) {
    const info = engine.state.tensorInfo.get(dataId);
    const d = old.dataIdMap.get(dataId);
    if (!info || info.backend !== old || !d) continue;
    let values: unknown;
    if (d.dtype === 'string') values = d.stringBytes;
    else {
      const size = d.shape.reduce((a, b) => a * b, 1);
      const bytes = size * (d.dtype === 'bool' ? 1 : 4);
      const buf = new Uint8Array(bytes);
      const off = d.memoryOffset ?? 0;
      if (heap && off > 0 && off + bytes <= heap.length) buf.set(heap.subarray(off, off + bytes));
      const snap = restore.get(dataId);
      if (snap && snap.byteLength === bytes) buf.set(new Uint8Array(snap.buffer, snap.byteOffset, bytes));
      values = d.dtype === 'int32' ? new Int32Array(buf.buffer) : d.dtype === 'bool' ? buf : new Float32Array(buf.buffer);
    }
    carried.push({ dataId, values, shape: d.shape, dtype: d.dtype, refCount: d.refCount });
  }
  // 2. Make the old backend inert and remove it.
  (old as unknown as { disposeData: () => boolean }).disposeData = () => true;
  (old as unknown as { dispose: () => void }).dispose = () => {};
  (old as unknown as { readSync: () => never }).readSync = () => {
    throw new Error('internal: tensor read from a wasm backend that was reset');
  };
  // Stock kernels back (the new backend's ready hook installs the replacements again); the derived
  // buffers it releases go to the inert disposeData.
  uninstallWasmKernels();
  tf.removeBackend('wasm');
  // 3. A fresh wasm module from tfjs-backend-wasm's own factory, and Glasswing's hooks on it.
  tf.registerBackend('wasm', entry.factory, entry.priority);
  if (!(await tf.setBackend('wasm'))) throw new Error('internal: the wasm backend could not be re-created');
  await tf.ready();
  // An abort in the middle of a kernel or a gradient leaves the engine's counters raised.
  engine.state.kernelDepth = 0;
  engine.state.gradientDepth = 0;
  engine.state.activeTape = null;
  await runBackendReadyHooks('wasm');
  // 4. The tensors, under their old data ids, on the new backend.
  const fresh = engine.registry.wasm as WasmBackendLike;
  for (const t of carried) {
    fresh.move(t.dataId, t.values, t.shape, t.dtype, t.refCount);
    engine.state.tensorInfo.get(t.dataId)!.backend = fresh;
  }
  resets++;
  return carried.length;
}

let depth = 0;

/**
 * Run fn; if the wasm backend fails inside it, re-create the backend and throw BackendResetError.
 * Classifiers passed in get their weights snapshotted first. Nested guarded calls leave the reset
 * to the outermost one.
 */
export async function guardBackend<T>(what: string, classifiers: Classifier[], fn: () => Promise<T>): Promise<T> {
  for (const c of classifiers) snapshotWeights(c);
  depth++;
  try {
    return await fn();
  } catch (err) {
    if (depth > 1 || tf.getBackend() !== 'wasm' || err instanceof BackendResetError) throw err;
    // Any other error, Glasswing's own included (e.g. NaN found in garbage), gets the self-check.
    if (!isWasmAbort(err) && backendHealthy()) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    await resetBackend();
    throw new BackendResetError(
      `${what} failed inside the wasm backend (${msg.split('\n')[0]}); the backend was re-initialised and the classifier weights restored: retry, with a smaller memory budget if it ran out of memory`,
      err,
    );
  } finally {
    depth--;
  }
}
