/**
 * Small replacement kernels: Identity sharing the buffer, Tile as a broadcast multiply, BatchMatMul
 * with explicit transposes, UnsortedSegmentSum.
 */
import * as tf from '@tensorflow/tfjs-core';
import { cachedDerived, callStock, f32, free, size, transpose, view, type KernelArgs } from './common.js';

/**
 * Identity shares the input buffer and takes a reference (as the cpu backend does). Stock wasm copies,
 * which costs a copy of every tensor the tape saves and gives conv filters fresh buffers on every
 * call, defeating XNNPACK's packed-weight cache and our flipped-filter cache.
 */
export function identity({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { x } = inputs;
  if (x.dtype === 'string') return callStock('Identity', backend, { x });
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * BatchMatMul with transposeA/B: stock wasm falls off XNNPACK for transposed operands (a scalar
 * loop, ~10× slower). Transpose explicitly, then the fast path. A transposed B (the Dense backward
 * dy·Wᵀ) is cached per source buffer, so the weight is transposed once and XNNPACK keeps its packing.
 */
export function batchMatMul({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { a, b } = inputs;
  const transposeA = Boolean(attrs.transposeA);
  const transposeB = Boolean(attrs.transposeB);
  if ((!transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return callStock('BatchMatMul', backend, { a, b }, attrs);
  }
  const swapLast = (t: tf.TensorInfo) => {
    const r = t.shape.length;
    const perm = t.shape.map((_, i) => i);
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return perm;
  };
  let at = a;
  let bt = b;
  if (transposeA) at = isVectorLike(a) ? swapView(a) : transpose(backend, a, swapLast(a));
  // B always gets a buffer of its own, even when a reshaped view would do: the stock kernel keeps
  // XNNPACK's packed copy of B keyed by buffer, so a [k, 1] weight seen again as a [1, k] view would
  // be multiplied with its stale packing (NaN and garbage in the dense backward dy·Wᵀ for 1-unit layers).
  if (transposeB) bt = cachedDerived(backend, b, 'T', () => transpose(backend, b, swapLast(b)));
  const out = callStock('BatchMatMul', backend, { a: at, b: bt }, { ...attrs, transposeA: false, transposeB: false });
  if (at !== a && at.dataId !== a.dataId) free(backend, at);
  return out;
}

/** A matrix whose last two dims include a 1 transposes by reshaping. */
function isVectorLike(t: tf.TensorInfo): boolean {
  const r = t.shape.length;
  return t.shape[r - 1] === 1 || t.shape[r - 2] === 1;
}

function swapView(t: tf.TensorInfo): tf.TensorInfo {
  const r = t.shape.length;
  const s = t.shape.slice();
  [s[r - 2], s[r - 1]] = [s[r - 1], s[r - 2]];
  return view(t, s);
}

/**
 * Tile by block copies on the wasm heap: the innermost row is copied once, then each axis' block is
 * replicated with copyWithin in doubling steps (stock wasm Tile is a per-element index loop;
 * BatchNorm's gradient tiles the per-channel scale to the size of the activation).
 */
export function tile({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x } = inputs;
  const reps = attrs.reps as number[];
  if (x.dtype === 'string' || reps.length !== x.shape.length || x.shape.length === 0) return callStock('Tile', backend, { x }, attrs);
  const shape = x.shape;
  const r = shape.length;
  const outShape = shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (size(outShape) === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const srcStride = new Array<number>(r);
  const dstBlock = new Array<number>(r); // size of one output block after axis i
  srcStride[r - 1] = 1;
  dstBlock[r - 1] = 1;
  for (let i = r - 2; i >= 0; i--) {
    srcStride[i] = srcStride[i + 1] * shape[i + 1];
    dstBlock[i] = dstBlock[i + 1] * outShape[i + 1];
  }
  const replicate = (start: number, len: number, times: number) => {
    const total = len * times;
    let filled = len;
    while (filled < total) {
      const n = Math.min(filled, total - filled);
      dst.copyWithin(start + filled, start, start + n);
      filled += n;
    }
  };
  const fill = (axis: number, srcOff: number, dstOff: number) => {
    const d = shape[axis];
    if (axis === r - 1) {
      for (let j = 0; j < d; j++) dst[dstOff + j] = src[srcOff + j];
    } else {
      for (let j = 0; j < d; j++) fill(axis + 1, srcOff + j * srcStride[axis], dstOff + j * dstBlock[axis]);
    }
    if (reps[axis] > 1) replicate(dstOff, d * dstBlock[axis], reps[axis]);
  };
  fill(0, 0, 0);
  return out;
}

/** UnsortedSegmentSum (the gradient of gather), missing on stock wasm. Negative ids are dropped. */
export function unsortedSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const numSegments = Number(attrs.numSegments);
  const ids = backend.typedArrayFromHeap(segmentIds);
  const nIds = size(segmentIds.shape);
  const inner = size(x.shape) / Math.max(nIds, 1);
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = backend.makeOutput(outShape, x.dtype);
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  dst.fill(0);
  for (let i = 0; i < nIds; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const o = s * inner;
    const p = i * inner;
    for (let k = 0; k < inner; k++) dst[o + k] += src[p + k];
  }
  return out;
}

/**
 * Slice without the stock kernel's copy of the whole input (readSync) and with the widest
 * contiguous runs: trailing axes taken whole are merged into one block copied with one set().
 * (The gradient of ZeroPadding2D is a slice; stock takes ~20 ms for a 230×230×3 image.)
 */
export function slice({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x } = inputs;
  if (x.dtype === 'string') return callStock('Slice', backend, { x }, attrs);
  const [begin, sz] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
  const out = backend.makeOutput(sz, x.dtype);
  const total = size(sz);
  if (total === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const shape = x.shape;
  const r = shape.length;
  // innermost axis k such that axes > k are taken whole: a run covers sz[k] · Π_{a>k} shape[a]
  let k = r - 1;
  let inner = 1;
  while (k > 0 && sz[k] === shape[k] && begin[k] === 0) {
    inner *= shape[k];
    k--;
  }
  const run = sz[k] * inner;
  const strides = new Array<number>(r);
  strides[r - 1] = 1;
  for (let a = r - 2; a >= 0; a--) strides[a] = strides[a + 1] * shape[a + 1];
  // odometer over axes < k
  const idx = new Array<number>(k).fill(0);
  const runs = total / run;
  let o = 0;
  for (let n = 0; n < runs; n++) {
    let off = begin[k] * strides[k];
    for (let a = 0; a < k; a++) off += (begin[a] + idx[a]) * strides[a];
    if (run < 16) for (let t = 0; t < run; t++) dst[o + t] = src[off + t];
    else dst.set(src.subarray(off, off + run), o);
    o += run;
    for (let a = k - 1; a >= 0; a--) {
      if (++idx[a] < sz[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

/**
 * Sum over leading axes (bias and BatchNorm gradients: [N,H,W,C] → [C]) by one pass of row
 * accumulation; stock wasm first transposes the whole tensor to put the reduced axes last.
 * Other reductions go to the stock kernel.
 */
export function sum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x } = inputs;
  const r = x.shape.length;
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape).slice().sort((a, b) => a - b);
  const leading = axes.length > 0 && axes.length < r && axes.every((a, i) => a === i);
  if (x.dtype !== 'float32' || !leading) return callStock('Sum', backend, { x }, attrs);
  const k = axes.length;
  const rows = size(x.shape.slice(0, k));
  const inner = size(x.shape.slice(k));
  const outShape = attrs.keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
  const out = backend.makeOutput(outShape, 'float32');
  const src = f32(backend, x);
  const dst = f32(backend, out);
  const acc = new Float64Array(inner);
  for (let row = 0, off = 0; row < rows; row++, off += inner) {
    for (let j = 0; j < inner; j++) acc[j] += src[off + j];
  }
  for (let j = 0; j < inner; j++) dst[j] = acc[j];
  return out;
}
