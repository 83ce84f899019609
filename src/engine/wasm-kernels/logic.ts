/**
 * Comparisons, logical and/or, Select and bool↔float casts as branch-free loops on the wasm heap.
 *
 * Why: stock wasm runs every comparison through its general broadcasting loop (an index computation
 * per element): 11–19 ns per element here, LogicalAnd of two comparisons 51 ns, Select 16 ns —
 * against ~0.8 ns for XNNPACK's Relu. Explanation code builds masks all the time (guided backprop's
 * 1[0 < z < max], LRP's stabiliser sgn(z), rule masks, max-pool winners), so on 224² networks these
 * masks cost more than the convolutions around them. The loops below handle equal shapes and a
 * scalar on either side (what those masks use); any other broadcast goes to the stock kernel.
 *
 * Results are exact (comparisons and selections do no arithmetic): NaN compares false (true for
 * NotEqual), as in C++ and on the cpu backend. Bool tensors are one byte per element on the heap.
 */
import * as tf from '@tensorflow/tfjs-core';
import { callStock, size, type KernelArgs, type WasmBackend, type WasmKernelFunc } from './common.js';

type Arr = Float32Array | Int32Array | Uint8Array;

/** Broadcast case for a binary op: equal sizes, or a single value on one side; else undefined (stock). */
function pairing(a: tf.TensorInfo, b: tf.TensorInfo): { outShape: number[]; scalarA: boolean; scalarB: boolean } | undefined {
  const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const n = size(outShape);
  const na = size(a.shape);
  const nb = size(b.shape);
  if (na === n && nb === n) return { outShape, scalarA: false, scalarB: false };
  if (nb === 1 && na === n) return { outShape, scalarA: false, scalarB: true };
  if (na === 1 && nb === n) return { outShape, scalarA: true, scalarB: false };
  return undefined;
}

const NUMERIC = new Set(['float32', 'int32', 'bool']);

function comparison(name: string, loopSame: (a: Arr, b: Arr, o: Uint8Array, n: number) => void, loopScalar: (a: Arr, s: number, o: Uint8Array, n: number) => void, loopScalarA: (s: number, b: Arr, o: Uint8Array, n: number) => void): WasmKernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo => {
    const { a, b } = inputs;
    const p = a.dtype === b.dtype && NUMERIC.has(a.dtype) ? pairing(a, b) : undefined;
    if (!p) return callStock(name, backend, { a, b }, attrs);
    const out = backend.makeOutput(p.outShape, 'bool');
    const n = size(p.outShape);
    if (n === 0) return out;
    const av = backend.typedArrayFromHeap(a);
    const bv = backend.typedArrayFromHeap(b);
    const o = backend.typedArrayFromHeap(out) as Uint8Array;
    if (p.scalarB) loopScalar(av, bv[0], o, n);
    else if (p.scalarA) loopScalarA(av[0], bv, o, n);
    else loopSame(av, bv, o, n);
    return out;
  };
}

// One monomorphic loop per comparison (a shared loop taking a comparator closure would not inline).
export const greater = comparison('Greater',
  (a, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] > b[i]); },
  (a, s, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] > s); },
  (s, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(s > b[i]); });
export const greaterEqual = comparison('GreaterEqual',
  (a, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] >= b[i]); },
  (a, s, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] >= s); },
  (s, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(s >= b[i]); });
export const less = comparison('Less',
  (a, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] < b[i]); },
  (a, s, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] < s); },
  (s, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(s < b[i]); });
export const lessEqual = comparison('LessEqual',
  (a, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] <= b[i]); },
  (a, s, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] <= s); },
  (s, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(s <= b[i]); });
export const equal = comparison('Equal',
  (a, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] === b[i]); },
  (a, s, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] === s); },
  (s, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(s === b[i]); });
export const notEqual = comparison('NotEqual',
  (a, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] !== b[i]); },
  (a, s, o, n) => { for (let i = 0; i < n; i++) o[i] = +(a[i] !== s); },
  (s, b, o, n) => { for (let i = 0; i < n; i++) o[i] = +(s !== b[i]); });

function logical(name: string, and: boolean): WasmKernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo => {
    const { a, b } = inputs;
    const p = a.dtype === 'bool' && b.dtype === 'bool' ? pairing(a, b) : undefined;
    if (!p) return callStock(name, backend, { a, b }, attrs);
    const out = backend.makeOutput(p.outShape, 'bool');
    const n = size(p.outShape);
    if (n === 0) return out;
    const av = backend.typedArrayFromHeap(a) as Uint8Array;
    const bv = backend.typedArrayFromHeap(b) as Uint8Array;
    const o = backend.typedArrayFromHeap(out) as Uint8Array;
    if (p.scalarA || p.scalarB) {
      const s = p.scalarA ? av[0] : bv[0];
      const v = p.scalarA ? bv : av;
      if (and) for (let i = 0; i < n; i++) o[i] = v[i] & s;
      else for (let i = 0; i < n; i++) o[i] = v[i] | s;
    } else if (and) {
      for (let i = 0; i < n; i++) o[i] = av[i] & bv[i];
    } else {
      for (let i = 0; i < n; i++) o[i] = av[i] | bv[i];
    }
    return out;
  };
}

export const logicalAnd = logical('LogicalAnd', true);
export const logicalOr = logical('LogicalOr', false);

/**
 * Select (tf.where) with a bool condition of the output's size and float32 branches of that size:
 * the branch is chosen on the bits (int32 views), (t & m) | (e & ~m) with m = −c, so NaN, ±0 and
 * ±∞ are copied exactly and nothing mispredicts.
 */
export function select({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { condition, t, e } = inputs;
  const n = size(t.shape);
  const ok = condition.dtype === 'bool' && t.dtype === 'float32' && e.dtype === 'float32' && size(condition.shape) === n && size(e.shape) === n && tf.util.arraysEqual(t.shape, e.shape);
  if (!ok) return callStock('Select', backend, { condition, t, e }, attrs);
  const out = backend.makeOutput(t.shape, 'float32');
  if (n === 0) return out;
  const c = backend.typedArrayFromHeap(condition) as Uint8Array;
  const ti = int32View(backend, t, n);
  const ei = int32View(backend, e, n);
  const o = int32View(backend, out, n);
  for (let i = 0; i < n; i++) {
    const m = -c[i];
    o[i] = (ti[i] & m) | (ei[i] & ~m);
  }
  return out;
}

function int32View(backend: WasmBackend, info: tf.TensorInfo, n: number): Int32Array {
  const f = backend.typedArrayFromHeap(info) as Float32Array;
  return new Int32Array(f.buffer, f.byteOffset, n);
}

/**
 * Cast. Same dtype: the buffer is shared with a reference taken (as Identity; the cpu backend does the
 * same) — stock copies it, and tfjs' own ReLU gradient, dy · cast(step(x), 'float32'), casts a float32
 * tensor to float32 at every rectifier. bool → float32/int32: one native TypedArray.set (the values
 * are 0 and 1; ~0.06 ns per element against ~1.2 for a JS loop). float32/int32 → bool: a loop
 * (x ≠ 0; NaN is true), since set() would wrap the values modulo 256. Other casts: stock.
 */
export function cast({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x } = inputs;
  const to = attrs.dtype as tf.DataType;
  if (to === x.dtype && to !== 'string' && to !== 'complex64') {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }
  const fromBool = x.dtype === 'bool' && (to === 'float32' || to === 'int32');
  const toBool = to === 'bool' && (x.dtype === 'float32' || x.dtype === 'int32');
  if (!fromBool && !toBool) return callStock('Cast', backend, { x }, attrs);
  const out = backend.makeOutput(x.shape, to);
  const n = size(x.shape);
  if (n === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  if (fromBool) dst.set(src);
  else for (let i = 0; i < n; i++) dst[i] = +(src[i] !== 0);
  return out;
}
