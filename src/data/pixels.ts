/**
 * RGBA pixels → input tensors, with no file or canvas access, so the browser bundle shares it with
 * Node (data/image.ts decodes files with @napi-rs/canvas; a page decodes with createImageBitmap).
 */
import * as tf from '@tensorflow/tfjs-core';

/** RGBA pixels, row-major, 4 bytes per pixel (the same shape as render's Image). */
export interface RawImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

/** Rec. 601 luma weights, the usual "greyscale" conversion. */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** Converts RGBA bytes to an [h, w, c] float tensor (c = 1: luminance, c = 3: RGB), 0..255 mapped linearly onto `range`. */
export function rawToTensor(raw: RawImage, channels: 1 | 3, range: [number, number] = [0, 1]): tf.Tensor3D {
  const { width: w, height: h, data } = raw;
  const out = new Float32Array(w * h * channels);
  const [lo, hi] = range;
  const k = (hi - lo) / 255;
  for (let p = 0; p < w * h; p++) {
    const r = data[4 * p];
    const g = data[4 * p + 1];
    const b = data[4 * p + 2];
    if (channels === 1) {
      out[p] = lo + k * (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b);
    } else {
      out[3 * p] = lo + k * r;
      out[3 * p + 1] = lo + k * g;
      out[3 * p + 2] = lo + k * b;
    }
  }
  return tf.tensor3d(out, [h, w, channels], 'float32');
}
