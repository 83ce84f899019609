/**
 * Which class an explanation is about: a fixed class index, the predicted class, the second most
 * likely class, or one entry per image.
 */
import * as tf from '@tensorflow/tfjs-core';
import { TargetError } from './errors.js';

export type TargetSpec = number | 'predicted' | 'second' | Array<number | 'predicted' | 'second'>;

/** Parse a CLI-style target: "predicted", "second", "3", or "3,5,predicted". */
export function parseTarget(text: string): TargetSpec {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  const one = (s: string): number | 'predicted' | 'second' => {
    const lower = s.toLowerCase();
    if (lower === 'predicted' || lower === 'pred') return 'predicted';
    if (lower === 'second' || lower === 'second-most-likely') return 'second';
    if (!/^\d+$/.test(s)) throw new TargetError(`expected a target "predicted", "second" or a class index; got "${s}"`);
    return Number(s);
  };
  if (parts.length === 0) throw new TargetError('expected a target; got an empty string');
  return parts.length === 1 ? one(parts[0]) : parts.map(one);
}

/**
 * Resolve a target spec to one class index per image, given the logits [N, K] for the batch.
 * Throws TargetError for an index out of range or an array of the wrong length.
 */
export function resolveTargets(spec: TargetSpec, logits: Float32Array | number[], n: number, k: number): number[] {
  const specs = Array.isArray(spec) ? spec : new Array(n).fill(spec);
  if (specs.length !== n) throw new TargetError(`expected ${n} targets, one per image; got ${specs.length}`);
  return specs.map((s, i) => {
    if (typeof s === 'number') {
      if (!Number.isInteger(s) || s < 0 || s >= k) {
        throw new TargetError(`expected a class index in 0..${k - 1}; got ${s}`);
      }
      return s;
    }
    const row = Array.from(logits.slice(i * k, (i + 1) * k));
    const order = row.map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    if (s === 'predicted') return order[0][1];
    if (s === 'second') {
      if (k < 2) throw new TargetError('expected at least 2 classes for target "second"; got 1');
      return order[1][1];
    }
    throw new TargetError(`expected a target "predicted", "second" or a class index; got ${String(s)}`);
  });
}

/** One-hot mask [N, K] of the targets: selecting target logits by mask avoids tf.gather, whose gradient wasm lacks. */
export function targetMask(targets: number[], k: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), k), 'float32') as tf.Tensor2D);
}
