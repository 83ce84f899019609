/**
 * The Dataset type shared by training, evaluation, experiments and the CLI, and the small helpers
 * that slice it (subset, take, batches, byClass). A Dataset owns its image tensor: call dispose().
 */
import * as tf from '@tensorflow/tfjs-core';
import { DataError } from '../core/errors.js';
import { createRng, shuffle as shuffleInPlace } from '../util/random.js';

export interface Dataset {
  /** e.g. "mnist/train", "fashion-mnist/test", "mnist/train+square8". */
  name: string;
  /** [N, H, W, C] float32 in [0, 1] (MNIST and Fashion-MNIST: [N, 28, 28, 1]). */
  images: tf.Tensor4D;
  /** Class index per image, length N. */
  labels: Int32Array;
  /** Class names indexed by label. */
  classNames: string[];
  /**
   * Optional provenance: the index of each image in its source (the package's raw arrays for
   * MNIST, the cache order for Fashion-MNIST). Kept through subset/take/holdOutClass.
   */
  sourceIndices?: Int32Array;
  /** Releases the image tensor. Safe to call twice. */
  dispose(): void;
}

/** Builds a Dataset that owns `images`. Checks that the label count matches N. */
export function makeDataset(
  name: string,
  images: tf.Tensor4D,
  labels: Int32Array,
  classNames: string[],
  sourceIndices?: Int32Array,
): Dataset {
  if (images.rank !== 4) {
    throw new DataError(`dataset "${name}": images must be a rank-4 NHWC tensor; got rank ${images.rank}`);
  }
  if (images.shape[0] !== labels.length) {
    throw new DataError(`dataset "${name}": ${images.shape[0]} images but ${labels.length} labels`);
  }
  if (sourceIndices && sourceIndices.length !== labels.length) {
    throw new DataError(`dataset "${name}": ${labels.length} labels but ${sourceIndices.length} source indices`);
  }
  return {
    name,
    images,
    labels,
    classNames,
    sourceIndices,
    dispose() {
      if (!images.isDisposed) images.dispose();
    },
  };
}

/** Number of images of each class: counts[c] = #{i : labels[i] = c}. */
export function classCounts(ds: Pick<Dataset, 'labels' | 'classNames'>): number[] {
  const counts = new Array<number>(ds.classNames.length).fill(0);
  for (const l of ds.labels) counts[l]++;
  return counts;
}

/** Positions (in ds) of the images whose label is `cls`. */
export function classIndices(ds: Pick<Dataset, 'labels'>, cls: number): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < ds.labels.length; i++) if (ds.labels[i] === cls) out.push(i);
  return Int32Array.from(out);
}

function checkIndices(ds: Dataset, indices: ArrayLike<number>): void {
  const n = ds.labels.length;
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= n) {
      throw new DataError(`subset of "${ds.name}": index ${k} at position ${i} is outside 0..${n - 1}`);
    }
  }
}

/** A new Dataset (owning a new tensor) with the images at `indices`, in that order. */
export function subset(ds: Dataset, indices: ArrayLike<number>, name?: string): Dataset {
  checkIndices(ds, indices);
  const idx = Int32Array.from(indices as ArrayLike<number>);
  const images = tf.tidy(() => {
    if (idx.length === 0) {
      const [, h, w, c] = ds.images.shape;
      return tf.zeros([0, h, w, c]) as tf.Tensor4D;
    }
    return tf.gather(ds.images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D;
  });
  const labels = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) labels[i] = ds.labels[idx[i]];
  let src: Int32Array | undefined;
  if (ds.sourceIndices) {
    src = new Int32Array(idx.length);
    for (let i = 0; i < idx.length; i++) src[i] = ds.sourceIndices[idx[i]];
  }
  return makeDataset(name ?? `${ds.name}[subset ${idx.length}]`, images, labels, ds.classNames, src);
}

/** The first n images (or all, if n ≥ N) as a new Dataset. */
export function take(ds: Dataset, n: number): Dataset {
  if (!Number.isInteger(n) || n < 0) throw new DataError(`take: n must be a non-negative integer; got ${n}`);
  const m = Math.min(n, ds.labels.length);
  const images = tf.slice(ds.images, [0, 0, 0, 0], [m, -1, -1, -1]) as tf.Tensor4D;
  return makeDataset(
    m === ds.labels.length ? ds.name : `${ds.name}[:${m}]`,
    images,
    ds.labels.slice(0, m),
    ds.classNames,
    ds.sourceIndices?.slice(0, m),
  );
}

/** The images of class `cls` as a new Dataset. */
export function byClass(ds: Dataset, cls: number): Dataset {
  return subset(ds, classIndices(ds, cls), `${ds.name}[class ${ds.classNames[cls] ?? cls}]`);
}

export interface DatasetBatch {
  /** [b, H, W, C]; owned by the caller: dispose it after use. */
  images: tf.Tensor4D;
  labels: Int32Array;
  /** Positions in the dataset. */
  indices: Int32Array;
}

export interface BatchIterOptions {
  /** Visit the images in a seeded random order (default false: dataset order). */
  shuffle?: boolean;
  /** Seed of the order when shuffle is on (default 0). Use a different seed per epoch. */
  seed?: number;
  /** Drop a last batch smaller than batchSize (default false). */
  dropRemainder?: boolean;
}

/**
 * Iterates the dataset in batches. Each yielded batch's `images` tensor belongs to the caller
 * (dispose it, or wrap the loop body in tf.tidy).
 */
export function* batches(ds: Dataset, batchSize: number, opts: BatchIterOptions = {}): Generator<DatasetBatch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new DataError(`batches: batchSize must be a positive integer; got ${batchSize}`);
  }
  const n = ds.labels.length;
  const order = Array.from({ length: n }, (_, i) => i);
  if (opts.shuffle) shuffleInPlace(order, createRng(opts.seed ?? 0));
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    if (opts.dropRemainder && end - start < batchSize) break;
    const idx = Int32Array.from(order.slice(start, end));
    const images = opts.shuffle
      ? tf.tidy(() => tf.gather(ds.images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D)
      : (tf.slice(ds.images, [start, 0, 0, 0], [end - start, -1, -1, -1]) as tf.Tensor4D);
    const labels = new Int32Array(idx.length);
    for (let i = 0; i < idx.length; i++) labels[i] = ds.labels[idx[i]];
    yield { images, labels, indices: idx };
  }
}

/** One-hot label matrix [N, numClasses] (float32) for training losses. Caller disposes. */
export function oneHotLabels(labels: Int32Array, numClasses: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses), 'float32') as tf.Tensor2D);
}
