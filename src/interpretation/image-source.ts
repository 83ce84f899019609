/**
 * Where the dataset-wide interpretation methods (top activations, nearest neighbours, receptive
 * fields) read their images from. A Dataset holds every image in one tensor, which is fine for MNIST
 * (10,000 × 784 floats) but not for a folder of 50,000 photos at 224² (30 GB as float32): an
 * ImageSource hands out one batch at a time, so the methods stream any dataset in memory bounded by
 * the batch, and read back only the few images they keep. Browser-safe (no file access here; the
 * folder source is in folder-source.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { DataError, OptionError } from '../core/errors.js';
import type { Dataset } from '../data/dataset.js';

export interface ImageSource {
  /** Number of images. */
  readonly size: number;
  /** Class index per image (length size). */
  readonly labels: ArrayLike<number>;
  /** Class names indexed by label, when known. */
  readonly classNames?: string[];
  /**
   * Images start … start + count − 1 as [count, h, w, c]; the caller disposes the tensor. Image i must
   * be the same however it is read: the methods score batches and read the kept images back alone.
   */
  read(start: number, count: number): Promise<tf.Tensor4D> | tf.Tensor4D;
}

/** What the interpretation methods accept: a loaded dataset (images in one tensor) or a stream. */
export type ImageSet = (Pick<Dataset, 'images' | 'labels'> & { classNames?: string[] }) | ImageSource;

export function isImageSource(data: ImageSet): data is ImageSource {
  return typeof (data as ImageSource).read === 'function';
}

/** A loaded dataset as a source (batches are slices of its tensor; the dataset keeps ownership). */
export function imageSource(data: ImageSet): ImageSource {
  if (isImageSource(data)) {
    if (!Number.isInteger(data.size) || data.size < 0 || data.labels.length !== data.size) {
      throw new DataError(`expected an image source with size a non-negative integer and one label per image; got size ${data.size}, ${data.labels.length} labels`);
    }
    return data;
  }
  const images = data.images;
  if (images.rank !== 4) throw new DataError(`expected dataset images [N, h, w, c]; got [${images.shape.join(', ')}]`);
  if (images.shape[0] !== data.labels.length) throw new DataError(`expected one label per image (${images.shape[0]}); got ${data.labels.length}`);
  return {
    size: images.shape[0],
    labels: data.labels,
    classNames: data.classNames,
    read: (start, count) => tf.slice(images, start, count),
  };
}

/** Read one batch, checking that the source kept its promise on the count and the image shape. */
export async function readBatch(src: ImageSource, start: number, count: number, shape: readonly number[]): Promise<tf.Tensor4D> {
  const x = await src.read(start, count);
  if (x.rank !== 4 || x.shape[0] !== count || x.shape[1] !== shape[0] || x.shape[2] !== shape[1] || x.shape[3] !== shape[2]) {
    const got = x.shape.join(', ');
    x.dispose();
    throw new DataError(`expected images ${start}..${start + count - 1} of the source as [${count}, ${shape.join(', ')}]; got [${got}]`);
  }
  return x;
}

/** The images at `indices` (in that order) as one [n, h, w, c] tensor, read one at a time. */
export async function readIndices(src: ImageSource, indices: number[], shape: readonly number[]): Promise<tf.Tensor4D> {
  if (indices.length === 0) return tf.zeros([0, shape[0], shape[1], shape[2]]);
  const parts: tf.Tensor4D[] = [];
  try {
    for (const i of indices) parts.push(await readBatch(src, i, 1, shape));
    return parts.length === 1 ? parts.splice(0, 1)[0] : (tf.concat(parts, 0) as tf.Tensor4D);
  } finally {
    tf.dispose(parts);
  }
}

/**
 * How many images a top-k / top-p % request keeps of n: k as given, or ⌈p/100 · n⌉ (at least 1; seed
 * 004 takes the top 1 % of a set).
 */
export function topCount(n: number, k: number | undefined, percent: number | undefined, fallback: number): number {
  if (k !== undefined && percent !== undefined) throw new OptionError(`expected k or percent, not both; got k ${k} and percent ${percent}`);
  if (percent !== undefined) {
    if (!(percent > 0 && percent <= 100)) throw new OptionError(`expected percent in (0, 100]; got ${percent}`);
    return Math.max(1, Math.ceil((percent / 100) * n - 1e-9));
  }
  const kk = k ?? fallback;
  if (!Number.isInteger(kk) || kk < 1) throw new OptionError(`expected k a positive integer; got ${kk}`);
  return kk;
}
