/**
 * Image files → tensors, via @napi-rs/canvas (PNG, JPEG; also WebP, GIF, BMP, AVIF where its Skia
 * build decodes them). Decodes, composites transparency over a background, resizes to the
 * classifier's h×w and converts to 1 channel (luminance) or 3 (RGB).
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync, readdirSync, type Dirent } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { createCanvas, Image as CanvasImage, loadImage } from '@napi-rs/canvas';
import { ImageLoadError } from '../core/errors.js';
import { type Dataset, makeDataset } from './dataset.js';

import { rawToTensor, type RawImage } from './pixels.js';

// browser-safe; kept importable from here
export { LUMA, rawToTensor, type RawImage } from './pixels.js';

export interface ReadImageOptions {
  /** Colour behind transparent pixels (default 'black', matching MNIST's background). */
  background?: string;
  /** Map [0, 1] onto this value range (default [0, 1]). */
  range?: [number, number];
  /** Resize smoothing: 'high' (default, good for shrinking), 'low', or 'none' (nearest neighbour). */
  smoothing?: 'high' | 'medium' | 'low' | 'none';
}

function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw ioError(file, e);
  }
}

function ioError(file: string, e: unknown): ImageLoadError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
  return new ImageLoadError(`cannot read image "${file}": ${why}`);
}

function sniff(bytes: Buffer): string {
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (bytes.length >= 6 && bytes.toString('latin1', 0, 3) === 'GIF') return 'gif';
  if (bytes.length >= 2 && bytes.toString('latin1', 0, 2) === 'BM') return 'bmp';
  return 'unknown';
}

/** Checks what the decoder would let through silently (a truncated PNG decodes as a partial image). */
function checkBytes(file: string, bytes: Buffer): string {
  if (bytes.length === 0) throw new ImageLoadError(`cannot decode image "${file}": the file is empty`);
  const kind = sniff(bytes);
  if (kind === 'unknown') {
    throw new ImageLoadError(`cannot decode image "${file}": expected PNG or JPEG data; the first bytes are ${bytes.subarray(0, 8).toString('hex')}`);
  }
  if (kind === 'png' && bytes.lastIndexOf('IEND', undefined, 'latin1') < 0) {
    throw new ImageLoadError(`cannot decode image "${file}": PNG data is truncated (no IEND chunk)`);
  }
  return kind;
}

function decodeSync(file: string, bytes: Buffer): CanvasImage {
  const kind = checkBytes(file, bytes);
  const img = new CanvasImage();
  img.onerror = () => undefined; // failures are reported through width = 0 below
  img.src = bytes;
  if (!img.width || !img.height) throw new ImageLoadError(`cannot decode image "${file}": ${kind.toUpperCase()} data is corrupt`);
  return img;
}

async function decodeAsync(file: string, bytes: Buffer): Promise<CanvasImage> {
  const kind = checkBytes(file, bytes);
  let img: CanvasImage;
  try {
    img = await loadImage(bytes);
  } catch (e) {
    throw new ImageLoadError(`cannot decode image "${file}": ${kind.toUpperCase()} data is corrupt (${(e as Error).message})`);
  }
  if (!img.width || !img.height) throw new ImageLoadError(`cannot decode image "${file}": ${kind.toUpperCase()} data is corrupt`);
  return img;
}

function draw(img: CanvasImage, width: number, height: number, opts: ReadImageOptions): RawImage {
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = opts.background ?? 'black';
  ctx.fillRect(0, 0, width, height);
  const s = opts.smoothing ?? 'high';
  ctx.imageSmoothingEnabled = s !== 'none';
  if (s !== 'none') ctx.imageSmoothingQuality = s;
  ctx.drawImage(img, 0, 0, width, height);
  const d = ctx.getImageData(0, 0, width, height);
  return { width, height, data: new Uint8ClampedArray(d.data.buffer, d.data.byteOffset, d.data.length) };
}

function checkShape(file: string, shape: readonly number[]): [number, number, number] {
  const [h, w, c] = shape;
  if (shape.length !== 3 || !Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1 || (c !== 1 && c !== 3)) {
    throw new ImageLoadError(`readImage("${file}"): shape must be [height, width, 1 or 3]; got [${shape.join(', ')}]`);
  }
  return [h, w, c];
}

/** Decodes an image file to RGBA at its own size (transparency composited over `background`). */
export async function readImageRaw(file: string, opts: ReadImageOptions = {}): Promise<RawImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw ioError(file, e);
  }
  const img = await decodeAsync(file, bytes);
  return draw(img, img.width, img.height, opts);
}

/** Synchronous form of readImageRaw. */
export function readImageRawSync(file: string, opts: ReadImageOptions = {}): RawImage {
  const img = decodeSync(file, readBytes(file));
  return draw(img, img.width, img.height, opts);
}

/**
 * Reads a PNG or JPEG file as an [h, w, c] float32 tensor in [0, 1] (or opts.range): decoded,
 * resized to h×w, converted to c = 1 (luminance 0.299 R + 0.587 G + 0.114 B) or c = 3 channels.
 * Pass a classifier's domain.shape as `shape`. Throws ImageLoadError for missing or corrupt files.
 */
export async function readImage(file: string, shape: readonly number[], opts: ReadImageOptions = {}): Promise<tf.Tensor3D> {
  const [h, w, c] = checkShape(file, shape);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw ioError(file, e);
  }
  const img = await decodeAsync(file, bytes);
  return rawToTensor(draw(img, w, h, opts), c as 1 | 3, opts.range);
}

/** Synchronous form of readImage. */
export function readImageSync(file: string, shape: readonly number[], opts: ReadImageOptions = {}): tf.Tensor3D {
  const [h, w, c] = checkShape(file, shape);
  const img = decodeSync(file, readBytes(file));
  return rawToTensor(draw(img, w, h, opts), c as 1 | 3, opts.range);
}

/** Reads several files into one [N, h, w, c] batch. */
export async function readImages(files: string[], shape: readonly number[], opts: ReadImageOptions = {}): Promise<tf.Tensor4D> {
  if (files.length === 0) throw new ImageLoadError('readImages: no files given');
  const parts: tf.Tensor3D[] = [];
  try {
    for (const f of files) parts.push(await readImage(f, shape, opts));
    return tf.stack(parts) as tf.Tensor4D;
  } finally {
    tf.dispose(parts);
  }
}

export interface ImageFolderOptions extends ReadImageOptions {
  /** File extensions to read (default png, jpg, jpeg). */
  extensions?: string[];
  /** Class names in label order (default: the sub-folder names, sorted). */
  classNames?: string[];
}

export interface ImageFolderListing {
  /** Image paths (dir joined with the relative path), in sorted order. */
  files: string[];
  /** Paths relative to the folder ("cat/a.png"), same order. */
  relative: string[];
  labels: number[];
  classNames: string[];
}

/**
 * Lists an image folder without decoding anything (the layout loadImageFolder reads): one sub-folder
 * per class, or every image at the top as class 0 ("unlabelled"). Dataset-scale jobs use it to cut a
 * folder into shards that are decoded one shard at a time, so one corrupt file fails only its shard.
 */
export function listImageFolder(dir: string, opts: Pick<ImageFolderOptions, 'extensions' | 'classNames'> = {}): ImageFolderListing {
  const exts = (opts.extensions ?? ['png', 'jpg', 'jpeg']).map((e) => '.' + e.toLowerCase().replace(/^\./, ''));
  const isImage = (f: string) => exts.includes(extname(f).toLowerCase());
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new ImageLoadError(`cannot read image folder "${dir}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'folder not found' : (e as Error).message}`);
  }
  const subdirs = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const relative: string[] = [];
  const labels: number[] = [];
  let classNames: string[];
  if (subdirs.length > 0) {
    classNames = opts.classNames ?? subdirs;
    for (const name of subdirs) {
      const label = classNames.indexOf(name);
      if (label < 0) throw new ImageLoadError(`image folder "${dir}": sub-folder "${name}" is not among the class names ${JSON.stringify(classNames)}`);
      for (const f of readdirSync(join(dir, name)).filter(isImage).sort()) {
        relative.push(`${name}/${f}`);
        labels.push(label);
      }
    }
  } else {
    classNames = opts.classNames ?? ['unlabelled'];
    for (const f of entries.filter((e) => e.isFile()).map((e) => e.name).filter(isImage).sort()) {
      relative.push(f);
      labels.push(0);
    }
  }
  if (relative.length === 0) throw new ImageLoadError(`image folder "${dir}": no ${exts.join('/')} files found`);
  return { files: relative.map((r) => join(dir, r)), relative, labels, classNames };
}

/**
 * Reads a folder of images as a Dataset: one sub-folder per class (`dir/cat/a.png` → class "cat"),
 * or, with no sub-folders, every image in `dir` as class 0 ("unlabelled"). Files are read in
 * sorted order; `sourceIndices` are positions in that order. `shape` is [h, w, c].
 */
export async function loadImageFolder(dir: string, shape: readonly number[], opts: ImageFolderOptions = {}): Promise<Dataset> {
  const { files, labels, classNames } = listImageFolder(dir, opts);
  const images = await readImages(files, shape, opts);
  return makeDataset(`folder:${basename(dir)}`, images, Int32Array.from(labels), classNames, Int32Array.from(files.keys()));
}
