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
import type { PhotoInfo, PreprocessingSpec } from '../core/preprocessing.js';
import { readImageRaw, type RawImage } from './image.js';
import { photoToInputOnCanvas } from './photo-input.js';

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

/** Bring decoded RGBA pixels to the model input with the preprocessing's policy (the same drawing as in a page). */
export function photoToInput(raw: RawImage, target: PhotoTarget): { input: tf.Tensor4D; info: PhotoInfo } {
  return photoToInputOnCanvas(toCanvas(raw), target, (width, height) => createCanvas(width, height));
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
