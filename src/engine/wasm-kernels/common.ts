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
