/**
 * Shared plumbing for the replacement wasm kernels: access to the stock kernels (saved before they
 * are replaced), typed views on the wasm heap, and disposal of intermediate buffers.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's BackendWasm that the replacement kernels use. */
export interface WasmBackend extends tf.KernelBackend {
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number; refCount: number; shape: number[] } | undefined; has(dataId: object): boolean };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

export type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: WasmBackend; attrs: tf.NamedAttrMap };
export type WasmKernelFunc = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** Stock wasm kernels captured at install time, so replacements can call them and uninstall can restore them. */
const stock = new Map<string, tf.KernelConfig>();

export function saveStock(name: string): tf.KernelConfig | undefined {
  if (!stock.has(name)) {
    const k = tf.getKernel(name, 'wasm');
    if (k) stock.set(name, k);
  }
  return stock.get(name);
}

export function stockKernels(): Map<string, tf.KernelConfig> {
  return stock;
}

/** Call a stock wasm kernel (never a replacement) directly on TensorInfos. */
export function callStock(name: string, backend: WasmBackend, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
  const k = stock.get(name) ?? tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel ${name} is not registered`);
  const out = k.kernelFunc({ inputs, backend, attrs });
  return Array.isArray(out) ? out[0] : out;
}

export function f32(backend: WasmBackend, info: tf.TensorInfo): Float32Array {
  const a = backend.typedArrayFromHeap(info);
  if (!(a instanceof Float32Array)) throw new Error(`expected a float32 tensor, got ${info.dtype}`);
  return a;
}

/** Release an intermediate buffer created inside a kernel. */
export function free(backend: WasmBackend, ...infos: Array<tf.TensorInfo | undefined>): void {
  for (const info of infos) if (info) backend.disposeData(info.dataId);
}

/** A view of the same buffer with another shape (no copy, no reference taken: use only as a kernel input). */
export function view(info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

export function transpose(backend: WasmBackend, x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
  return callStock('Transpose', backend, { x }, { perm });
}

export function size(shape: number[]): number {
  let s = 1;
  for (const d of shape) s *= d;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Buffers derived from a source buffer (flipped filters, transposed weights), cached per source
// dataId and released when the source buffer is released. Weights keep their dataId across calls
// (Identity shares buffers), so each is flipped/transposed once and XNNPACK's packed-weight cache,
// keyed by buffer id, keeps working.

const derivedCache = new Map<object, Map<string, tf.TensorInfo>>();
const patchedBackends = new WeakSet<object>();

function watchDisposal(backend: WasmBackend): void {
  if (patchedBackends.has(backend)) return;
  patchedBackends.add(backend);
  const original = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: object, force?: boolean): boolean => {
    const released = original(dataId, force);
    if (released && derivedCache.size > 0) {
      const derived = derivedCache.get(dataId);
      if (derived && !backend.dataIdMap.has(dataId)) {
        derivedCache.delete(dataId);
        for (const d of derived.values()) original(d.dataId, true);
      }
    }
    return released;
  };
}

export function cachedDerived(backend: WasmBackend, src: tf.TensorInfo, tag: string, make: () => tf.TensorInfo): tf.TensorInfo {
  watchDisposal(backend);
  const key = `${tag}:${src.shape.join('x')}`;
  let entries = derivedCache.get(src.dataId);
  const hit = entries?.get(key);
  if (hit) return hit;
  const value = make();
  if (!entries) {
    entries = new Map();
    derivedCache.set(src.dataId, entries);
  }
  entries.set(key, value);
  return value;
}

/** Number of source buffers with cached derived buffers (tests). */
export function derivedCacheSize(): number {
  return derivedCache.size;
}

/** Release every cached derived buffer (e.g. when the replacement kernels are uninstalled). */
export function clearDerivedCache(backend?: WasmBackend): void {
  if (backend) for (const m of derivedCache.values()) for (const d of m.values()) backend.disposeData(d.dataId, true);
  derivedCache.clear();
}
