/**
 * What crosses a thread boundary: values with tensors inside (method options, chunk payloads and
 * results, a classifier's weights) become plain data that structured cloning can copy, and typed
 * errors keep their class.
 *
 * Why not send tensors as they are: a tensor is a handle into one backend's memory (a wasm heap),
 * which another thread cannot read. Each tensor is read once (`dataSync`, a copy), its buffer is
 * transferred (moved, not copied again) and the receiver makes a tensor of it on its own backend —
 * a tensor the receiver owns and disposes.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as errors from '../../core/errors.js';
import { GlasswingError } from '../../core/errors.js';

/** A tensor on the wire. */
export interface WireTensor {
  __gwTensor: true;
  shape: number[];
  dtype: tf.DataType;
  data: Float32Array | Int32Array | Uint8Array;
}

/** A Map on the wire (its values may hold tensors). */
interface WireMap {
  __gwMap: Array<[unknown, unknown]>;
}

type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Uint8ClampedArray;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function ownsBuffer(a: TypedArray): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !(typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer);
}

/**
 * Encode a value for postMessage. Tensors are read (a copy) and their buffers added to `transfer`;
 * typed arrays are cloned (the sender may still use them) unless `transferArrays` is set. Functions
 * are not allowed (they cannot be shipped): the error names the path.
 */
export function encode(value: unknown, transfer: Transferable[], opts: { transferArrays?: boolean } = {}, path = 'value'): unknown {
  if (value instanceof tf.Tensor) {
    if (value.dtype === 'string' || value.dtype === 'complex64') throw new errors.OptionError(`cannot send a ${value.dtype} tensor to a worker (${path})`);
    const data = value.dataSync() as Float32Array | Int32Array | Uint8Array;
    const copy = ownsBuffer(data) ? data : data.slice();
    transfer.push(copy.buffer);
    return { __gwTensor: true, shape: value.shape.slice(), dtype: value.dtype, data: copy } satisfies WireTensor;
  }
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'function') throw new errors.OptionError(`cannot send a function to a worker (${path})`);
    return value;
  }
  if (ArrayBuffer.isView(value)) {
    const a = value as TypedArray;
    if (opts.transferArrays && ownsBuffer(a)) transfer.push(a.buffer);
    return a;
  }
  if (Array.isArray(value)) return value.map((v, i) => encode(v, transfer, opts, `${path}[${i}]`));
  if (value instanceof Map) return { __gwMap: [...value].map(([k, v]) => [k, encode(v, transfer, opts, `${path}.${String(k)}`)]) } satisfies WireMap;
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = encode(v, transfer, opts, `${path}.${k}`);
    return out;
  }
  // Dates, RegExps, Sets and other cloneable objects go as they are.
  return value;
}

/** Decode what `encode` made; every tensor is created on this thread's backend and also pushed to `created`. */
export function decode(value: unknown, created: tf.Tensor[] = []): any {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return value.map((v) => decode(v, created));
  const o = value as Record<string, unknown>;
  if (o.__gwTensor === true) {
    const w = o as unknown as WireTensor;
    const t = tf.tensor(w.data, w.shape, w.dtype);
    created.push(t);
    return t;
  }
  if (Array.isArray(o.__gwMap)) return new Map((o as unknown as WireMap).__gwMap.map(([k, v]) => [k, decode(v, created)]));
  if (isPlainObject(o)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = decode(v, created);
    return out;
  }
  return value;
}

/** Whether a value holds a function anywhere (such a value cannot be sent to a worker). */
export function holdsFunction(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof tf.Tensor) return false;
  if (value instanceof Map) return [...value.values()].some(holdsFunction);
  return (Array.isArray(value) ? value : Object.values(value)).some(holdsFunction);
}

/** Whether a value holds a tensor anywhere (to decide whether it can be sent as it is). */
export function holdsTensor(value: unknown): boolean {
  if (value instanceof tf.Tensor) return true;
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return false;
  if (value instanceof Map) return [...value.values()].some(holdsTensor);
  return (Array.isArray(value) ? value : Object.values(value)).some(holdsTensor);
}

/** An error on the wire: its class name, message and the extra fields of typed errors. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  fields?: Record<string, unknown>;
}

/** Error classes a worker's error may be rebuilt as: Glasswing's typed errors and the registered extra ones. */
const errorClasses = new Map<string, new (...args: any[]) => Error>();
for (const v of Object.values(errors)) {
  if (typeof v === 'function' && (v === GlasswingError || v.prototype instanceof GlasswingError)) errorClasses.set(v.name, v as new (...args: any[]) => Error);
}

/** Let errors of this class keep their class across threads (the pool's own errors register here). */
export function registerWireError(cls: new (...args: any[]) => Error): void {
  errorClasses.set(cls.name, cls);
}

export function encodeError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err)) {
    if (k === 'name' || k === 'message' || k === 'stack') continue;
    // causes and other objects may not clone; numbers and strings (budgets, sizes) do
    if (v === null || ['number', 'string', 'boolean'].includes(typeof v)) fields[k] = v;
  }
  return { name: err.name, message: err.message, stack: err.stack, fields };
}

/**
 * Rebuild an error thrown on another thread: a Glasswing typed error keeps its class (so
 * `instanceof OptionError` works in the caller); others become plain Errors with the same name.
 */
export function decodeError(w: WireError): Error {
  const cls = errorClasses.get(w.name);
  const e: Error = cls ? Object.create(cls.prototype) : new Error(w.message);
  Object.defineProperty(e, 'message', { value: w.message, writable: true, configurable: true });
  Object.defineProperty(e, 'name', { value: w.name, writable: true, configurable: true });
  if (w.stack) Object.defineProperty(e, 'stack', { value: w.stack, writable: true, configurable: true });
  Object.assign(e, w.fields ?? {});
  return e;
}
