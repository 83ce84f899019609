/**
 * Photos of any size as a model's input, with the model's preprocessing (core/preprocessing.ts):
 * resize/crop policy, value range and channel order. Returns the input tensor and the PhotoInfo
 * that maps it back (mapToPhoto, renderOnPhoto).
 */
import * as tf from '@tensorflow/tfjs-core';
import { readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { createCanvas, type Canvas } from '@napi-rs/canvas';
import type { Classifier } from '../core/classifier.js';
import { ImageLoadError } from '../core/errors.js';
import { photoGeometry, type PhotoInfo, type PreprocessingSpec } from '../core/preprocessing.js';
import { rawToTensor, readImageRaw, type RawImage } from './image.js';

export interface Photo {
  /** [1, h, w, c] in the model's value range and channel order. */
  input: tf.Tensor4D;
  /** The geometry back to the photo (plus the file it came from). */
  info: PhotoInfo;
  /** The decoded photo at its own size (RGBA; a render Image). */
  raw: RawImage;
}

/** What loadPhoto needs: a classifier (its input shape and preprocessing) or both given directly. */
export type PhotoTarget = Classifier | { inputShape: [number, number, number]; preprocessing?: PreprocessingSpec };

function toCanvas(raw: RawImage): Canvas {
  const c = createCanvas(raw.width, raw.height);
  const ctx = c.getContext('2d');
  const d = ctx.createImageData(raw.width, raw.height);
  d.data.set(raw.data);
  ctx.putImageData(d, 0, 0);
  return c;
}

/** Bring decoded RGBA pixels to the model input with the preprocessing's policy. */
export function photoToInput(raw: RawImage, target: PhotoTarget): { input: tf.Tensor4D; info: PhotoInfo } {
  const [h, w, c] = target.inputShape;
  const spec = target.preprocessing ?? {};
  if (c !== 1 && c !== 3) throw new ImageLoadError(`expected a model with 1 or 3 input channels; got ${c}`);
  const info = photoGeometry(raw.width, raw.height, h, w, spec);
  const [lo, hi] = info.range;
  const canvas = createCanvas(w, h);
  const ctx = canvas.getContext('2d');
  const fill = spec.padValue ?? lo;
  const grey = Math.round(Math.max(0, Math.min(1, (fill - lo) / (hi - lo))) * 255);
  ctx.fillStyle = `rgb(${grey}, ${grey}, ${grey})`;
  ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  // the photo rectangle in input pixel coordinates: photo point P ↦ (P − offset) / scale
  ctx.drawImage(toCanvas(raw), -info.offsetX / info.scaleX, -info.offsetY / info.scaleY, raw.width / info.scaleX, raw.height / info.scaleY);
  const d = ctx.getImageData(0, 0, w, h);
  const pixels: RawImage = { width: w, height: h, data: new Uint8ClampedArray(d.data.buffer, d.data.byteOffset, d.data.length) };
  const input = tf.tidy(() => {
    let t: tf.Tensor3D = rawToTensor(pixels, c as 1 | 3, [lo, hi]);
    if (info.channelOrder === 'bgr' && c === 3) t = tf.reverse(t, -1);
    return tf.expandDims(t, 0) as tf.Tensor4D;
  });
  return { input, info };
}

/**
 * Read a PNG/JPEG photo of any size and preprocess it for `target`. Throws ImageLoadError for
 * missing or corrupt files.
 *
 * @example
 * const c = await loadClassifier('models/my-net');
 * const { input, info, raw } = await loadPhoto('dog.jpg', c);
 */
export async function loadPhoto(file: string, target: PhotoTarget): Promise<Photo> {
  const raw = await readImageRaw(file);
  const { input, info } = photoToInput(raw, target);
  info.file = file;
  return { input, info, raw };
}

/** The PNG/JPEG files of a folder (sorted; not recursive). */
export function listPhotos(dir: string, extensions = ['png', 'jpg', 'jpeg']): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
  } catch (e) {
    throw new ImageLoadError(`cannot read image folder "${dir}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'folder not found' : (e as Error).message}`);
  }
  const exts = extensions.map((x) => '.' + x.toLowerCase().replace(/^\./, ''));
  const files = names.filter((n) => exts.includes(extname(n).toLowerCase())).sort().map((n) => join(dir, n));
  if (files.length === 0) throw new ImageLoadError(`image folder "${dir}": no ${exts.join('/')} files found`);
  return files;
}
