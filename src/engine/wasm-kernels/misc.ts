/**
 * Small replacement kernels: Identity sharing the buffer, Tile as a broadcast multiply, BatchMatMul
 * with explicit transposes, UnsortedSegmentSum.
 */
import * as tf from '@tensorflow/tfjs-core';
import { callStock, type KernelArgs } from './common.js';

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
