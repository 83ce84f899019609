/** PNG encoding/decoding through @napi-rs/canvas, and atomic file writing. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCanvas, Image as CanvasImage, ImageData } from '@napi-rs/canvas';
import { ImageLoadError, InvalidInputError } from '../core/errors.js';
import type { Image } from './image.js';

function checkImage(image: Image): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || data.length !== width * height * 4) {
    throw new InvalidInputError(`expected an RGBA image with width·height·4 bytes; got ${width}×${height} with ${data?.length} bytes`);
  }
}

/** Encodes an RGBA image as PNG bytes. */
export function encodePng(image: Image): Buffer {
  checkImage(image);
  const canvas = createCanvas(image.width, image.height);
  const ctx = canvas.getContext('2d');
  const copy = new Uint8ClampedArray(image.data); // ImageData may keep a reference
  ctx.putImageData(new ImageData(copy, image.width, image.height), 0, 0);
  return canvas.toBuffer('image/png');
}

/** Encodes an RGBA image as JPEG bytes (quality 0–100, default 92). Transparency is lost. */
export function encodeJpeg(image: Image, quality = 92): Buffer {
  checkImage(image);
  const canvas = createCanvas(image.width, image.height);
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(image.data), image.width, image.height), 0, 0);
  return canvas.toBuffer('image/jpeg', quality);
}

/** Decodes PNG (or JPEG) bytes to an RGBA image at its own size. */
export function decodePng(bytes: Buffer | Uint8Array): Image {
  const img = new CanvasImage();
  img.onerror = () => undefined;
  img.src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!img.width || !img.height) throw new ImageLoadError(`cannot decode image bytes (${bytes.byteLength} bytes): not a valid PNG/JPEG`);
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, img.width, img.height);
  return { width: img.width, height: img.height, data: new Uint8ClampedArray(d.data) };
}

/**
 * Writes bytes to `file` through a temporary file in the same folder and a rename, so a failure
 * never leaves a partial file. Creates the folder if needed.
 */
export function writeFileAtomic(file: string, bytes: Buffer | Uint8Array | string): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Writes an Image (encoded as PNG) or ready PNG bytes to `file`, atomically. */
export function writePng(file: string, image: Image | Buffer | Uint8Array): void {
  const bytes = image instanceof Uint8Array ? image : encodePng(image);
  writeFileAtomic(file, bytes);
}
