/**
 * Which class an explanation is about: a fixed class index, the predicted class, the second most
 * likely class, or one entry per image.
 */
import * as tf from '@tensorflow/tfjs-core';
import { TargetError } from './errors.js';

/**
 * A class index, 'predicted', 'second', or a class name (matched against the classifier's class
 * names, case-insensitively: `target: 'golden retriever'`); or one of those per image.
 */
export type TargetSpec = number | 'predicted' | 'second' | string | Array<number | 'predicted' | 'second' | string>;

/** Index of a class name (exact, then case- and space-insensitive); undefined when there is none. */
export function classIndex(name: string, classNames: readonly string[]): number | undefined {
  const exact = classNames.indexOf(name);
  if (exact >= 0) return exact;
  const norm = (s: string) => s.trim().toLowerCase().replace(/[\s_]+/g, ' ');
  const n = norm(name);
  const i = classNames.findIndex((c) => norm(c) === n);
  return i >= 0 ? i : undefined;
}

function nameError(s: string, classNames?: readonly string[]): TargetError {
  if (!classNames) return new TargetError(`expected a target "predicted", "second" or a class index; got "${s}"`);
  const n = s.trim().toLowerCase();
  const near = classNames.filter((c) => c.toLowerCase().includes(n) || (n.length > 3 && n.includes(c.toLowerCase()))).slice(0, 5);
  return new TargetError(`expected a target "predicted", "second", a class index or a class name; got "${s}", which is no class name${near.length ? ` (did you mean ${near.map((c) => `"${c}"`).join(', ')}?)` : ''}`);
}

/**
 * Parse a CLI-style target: "predicted", "second", "3", a class name ("golden retriever"), or a
 * comma-separated list of those, one per image. With classNames, names are checked here (a whole
 * string that is a class name wins over splitting at commas: ImageNet names contain commas).
 */
export function parseTarget(text: string, classNames?: readonly string[]): TargetSpec {
  if (classNames) {
    const whole = classIndex(text, classNames);
    if (whole !== undefined && !/^\d+$/.test(text.trim())) return whole;
  }
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  const one = (s: string): number | 'predicted' | 'second' => {
    const lower = s.toLowerCase();
    if (lower === 'predicted' || lower === 'pred') return 'predicted';
    if (lower === 'second' || lower === 'second-most-likely') return 'second';
    if (/^\d+$/.test(s)) return Number(s);
    const i = classNames ? classIndex(s, classNames) : undefined;
    if (i === undefined) throw nameError(classNames ? text : s, classNames);
    return i;
  };
  if (parts.length === 0) throw new TargetError('expected a target; got an empty string');
  return parts.length === 1 ? one(parts[0]) : parts.map(one);
}

/**
 * Resolve a target spec to one class index per image, given the logits [N, K] for the batch.
 * Class names are looked up in `classNames`. Throws TargetError for an index out of range, an
 * unknown class name, or an array of the wrong length.
 */
export function resolveTargets(spec: TargetSpec, logits: Float32Array | number[], n: number, k: number, classNames?: readonly string[]): number[] {
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
    const named = typeof s === 'string' && classNames ? classIndex(s, classNames) : undefined;
    if (named !== undefined) return named;
    throw nameError(String(s), classNames);
  });
}

/** One-hot mask [N, K] of the targets: selecting target logits by mask avoids tf.gather, whose gradient wasm lacks. */
export function targetMask(targets: number[], k: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), k), 'float32') as tf.Tensor2D);
}
