/** The RGBA image type shared by all of render/, and pixel-level helpers. */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidInputError, OptionError } from '../core/errors.js';

/** RGBA, row-major, 4 bytes per pixel. */
export interface Image {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

/** A new image filled with one colour (default opaque white). */
export function blankImage(width: number, height: number, rgba: [number, number, number, number?] = [255, 255, 255, 255]): Image {
  const data = new Uint8ClampedArray(width * height * 4);
  const a = rgba[3] ?? 255;
  for (let p = 0; p < width * height; p++) {
    data[4 * p] = rgba[0];
    data[4 * p + 1] = rgba[1];
    data[4 * p + 2] = rgba[2];
    data[4 * p + 3] = a;
  }
  return { width, height, data };
}

/** Nearest-neighbour enlargement by an integer factor (so a 28×28 map is visible). */
export function upscale(image: Image, factor: number): Image {
  if (!Number.isInteger(factor) || factor < 1) throw new OptionError(`upscale: factor must be a positive integer; got ${factor}`);
  if (factor === 1) return image;
  const w = image.width * factor;
  const h = image.height * factor;
  const out = new Uint8ClampedArray(w * h * 4);
  const src = new Uint32Array(image.data.buffer, image.data.byteOffset, image.width * image.height);
  const dst = new Uint32Array(out.buffer);
  for (let y = 0; y < h; y++) {
    const sy = Math.floor(y / factor) * image.width;
    for (let x = 0; x < w; x++) dst[y * w + x] = src[sy + Math.floor(x / factor)];
  }
  return { width: w, height: h, data: out };
}

/** Nearest-neighbour resize to any size. */
export function resizeNearest(image: Image, width: number, height: number): Image {
  const out = new Uint8ClampedArray(width * height * 4);
  const src = new Uint32Array(image.data.buffer, image.data.byteOffset, image.width * image.height);
  const dst = new Uint32Array(out.buffer);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(image.height - 1, Math.floor((y * image.height) / height)) * image.width;
    for (let x = 0; x < width; x++) dst[y * width + x] = src[sy + Math.min(image.width - 1, Math.floor((x * image.width) / width))];
  }
  return { width, height, data: out };
}

/** Colour of pixel (x, y) as [r, g, b, a]. */
export function pixelAt(image: Image, x: number, y: number): [number, number, number, number] {
  const i = 4 * (y * image.width + x);
  return [image.data[i], image.data[i + 1], image.data[i + 2], image.data[i + 3]];
}

/**
 * Reads a single image out of a tensor of shape [H, W], [H, W, C] or [1, H, W, C] (or picks
 * `index` from a batch [N, H, W, C]) as plain values and its shape.
 */
export function tensorToHWC(x: tf.Tensor, what: string, index = 0): { values: Float32Array; h: number; w: number; c: number } {
  let shape: number[] = x.shape.slice();
  let t = x;
  let owned = false;
  if (x.rank === 4) {
    if (index < 0 || index >= shape[0]) throw new InvalidInputError(`${what}: index ${index} outside the batch of ${shape[0]}`);
    t = tf.slice(x, [index, 0, 0, 0], [1, -1, -1, -1]);
    owned = true;
    shape = shape.slice(1);
  } else if (x.rank === 2) {
    shape = [shape[0], shape[1], 1];
  } else if (x.rank !== 3) {
    throw new InvalidInputError(`${what}: expected a tensor of shape [H, W], [H, W, C] or [N, H, W, C]; got [${x.shape.join(', ')}]`);
  }
  const values = Float32Array.from(t.dataSync());
  if (owned) t.dispose();
  return { values, h: shape[0], w: shape[1], c: shape[2] };
}
