/**
 * Derived datasets for the bias experiments of seed 001: biased MNIST (§4.3: a 6×6 grey square in
 * the top-left corner of every 8) and class hold-out (§4.2: a network trained without 8s, then with
 * a growing number of them).
 */
import * as tf from '@tensorflow/tfjs-core';
import { DataError } from '../core/errors.js';
import { createRng, shuffle } from '../util/random.js';
import { type Dataset, makeDataset, subset } from './dataset.js';

export type SquareCorner = 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';

export interface SquareOptions {
  /** Side of the square in pixels (default 6). */
  size?: number;
  /** Value written into the square, in every channel (default 0.5: mid grey). */
  value?: number;
  /** A corner (default 'top-left') or the square's top-left pixel {row, col}. */
  where?: SquareCorner | { row: number; col: number };
}

function squareOrigin(h: number, w: number, size: number, where: SquareOptions['where']): [number, number] {
  if (where === undefined || where === 'top-left') return [0, 0];
  if (where === 'top-right') return [0, w - size];
  if (where === 'bottom-left') return [h - size, 0];
  if (where === 'bottom-right') return [h - size, w - size];
  if (typeof where === 'object' && Number.isInteger(where.row) && Number.isInteger(where.col)) {
    if (where.row < 0 || where.col < 0 || where.row + size > h || where.col + size > w) {
      throw new DataError(`addSquare: a ${size}×${size} square at (${where.row}, ${where.col}) does not fit in ${h}×${w}`);
    }
    return [where.row, where.col];
  }
  throw new DataError(`addSquare: where must be a corner name or {row, col}; got ${JSON.stringify(where)}`);
}

/** [1, H, W, 1] mask, 1 inside the square. Caller disposes. */
export function squareMask(h: number, w: number, opts: SquareOptions = {}): tf.Tensor4D {
  const size = opts.size ?? 6;
  if (!Number.isInteger(size) || size < 1 || size > Math.min(h, w)) {
    throw new DataError(`addSquare: size must be an integer in 1..${Math.min(h, w)}; got ${size}`);
  }
  const [r0, c0] = squareOrigin(h, w, size, opts.where);
  const m = new Float32Array(h * w);
  for (let r = r0; r < r0 + size; r++) for (let c = c0; c < c0 + size; c++) m[r * w + c] = 1;
  return tf.tensor4d(m, [1, h, w, 1]);
}

/**
 * Returns new images with the square drawn on them (all of them, or those where `which[i]` is true).
 * images: [N, H, W, C]; the caller owns the result.
 */
export function addSquare(images: tf.Tensor4D, opts: SquareOptions = {}, which?: ArrayLike<boolean>): tf.Tensor4D {
  if (images.rank !== 4) throw new DataError(`addSquare: images must be [N, H, W, C]; got shape [${images.shape}]`);
  const value = opts.value ?? 0.5;
  if (!Number.isFinite(value)) throw new DataError(`addSquare: value must be a finite number; got ${value}`);
  const [n, h, w] = images.shape;
  if (which && which.length !== n) throw new DataError(`addSquare: ${n} images but ${which.length} flags`);
  return tf.tidy(() => {
    let mask: tf.Tensor = squareMask(h, w, opts);
    if (which) {
      const sel = new Float32Array(n);
      for (let i = 0; i < n; i++) sel[i] = which[i] ? 1 : 0;
      mask = tf.mul(mask, tf.tensor4d(sel, [n, 1, 1, 1]));
    }
    return tf.add(tf.mul(images, tf.sub(1, mask)), tf.mul(mask, value)) as tf.Tensor4D;
  });
}

export interface BiasOptions extends SquareOptions {
  /** The class that gets the square (default 8). */
  cls?: number;
}

/**
 * Seed 001 §4.3: a copy of `ds` where every image of class `cls` (default 8) carries a size×size
 * (default 6×6) grey (0.5) square in the top-left corner; other images are unchanged.
 */
export function biasedMnist(ds: Dataset, opts: BiasOptions = {}): Dataset {
  const cls = opts.cls ?? 8;
  if (!Number.isInteger(cls) || cls < 0 || cls >= ds.classNames.length) {
    throw new DataError(`biasedMnist: cls must be a class index in 0..${ds.classNames.length - 1}; got ${cls}`);
  }
  const which = Array.from(ds.labels, (l) => l === cls);
  const images = addSquare(ds.images, opts, which);
  return makeDataset(`${ds.name}+square${cls}`, images, ds.labels.slice(), ds.classNames, ds.sourceIndices?.slice());
}

/**
 * Seed 001 §4.2: `ds` without class `cls`, except `keep` examples of it chosen with `seed`
 * (default 0). Order of the remaining images is kept.
 */
export function holdOutClass(ds: Dataset, cls: number, keep = 0, seed = 0): Dataset {
  if (!Number.isInteger(cls) || cls < 0 || cls >= ds.classNames.length) {
    throw new DataError(`holdOutClass: cls must be a class index in 0..${ds.classNames.length - 1}; got ${cls}`);
  }
  const ofClass: number[] = [];
  for (let i = 0; i < ds.labels.length; i++) if (ds.labels[i] === cls) ofClass.push(i);
  if (!Number.isInteger(keep) || keep < 0 || keep > ofClass.length) {
    throw new DataError(`holdOutClass: keep must be an integer in 0..${ofClass.length} (images of class ${cls}); got ${keep}`);
  }
  const kept = new Set(shuffle(ofClass, createRng(seed)).slice(0, keep));
  const idx: number[] = [];
  for (let i = 0; i < ds.labels.length; i++) if (ds.labels[i] !== cls || kept.has(i)) idx.push(i);
  return subset(ds, idx, `${ds.name}-no${cls}${keep ? `+${keep}` : ''}`);
}
