/**
 * Per-image seeds that do not depend on the batch: a method's seed mixed with a hash of each image's
 * pixels. A method that draws its randomness per image from these gives an image the same draw
 * whatever batch it comes in, whichever memory-budget chunk or pool worker runs it — so splitting a
 * batch over workers (or chunks) gives identical results (docs/parallel.md, per-image methods).
 * Two images with identical pixels get the same seed, which is what "the same input" should mean.
 */
import type * as tf from '@tensorflow/tfjs-core';

/** FNV-1a over the float bits of each image, mixed with `seed`; non-negative integers below 2³¹ (tfjs' random ops take them). */
export function imageSeeds(x: tf.Tensor, seed: number, data?: Float32Array): number[] {
  const n = x.shape[0];
  const per = n > 0 ? x.size / n : 0;
  const values = data ?? (x.dataSync() as Float32Array);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let h = (0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1)) >>> 0;
    for (let j = i * per, end = (i + 1) * per; j < end; j++) {
      h ^= bits[j];
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    // final avalanche (murmur3 fmix32) so nearby images give unrelated seeds
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
    out.push(h & 0x7fffffff);
  }
  return out;
}

/** A second independent seed from one (for a second draw of the same image). */
export function deriveSeed(seed: number, k: number): number {
  let h = (seed ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h & 0x7fffffff;
}
