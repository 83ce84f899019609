/** Class maps over a latent grid (seed 000 Figs. 2–4): colours per class, cross-entropy contours, markers. */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import type { RgbaImage } from '../generative/render.js';

/** 10 distinguishable class colours (tab10). */
export const CLASS_COLOURS: Array<[number, number, number]> = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

/**
 * A class map: cells[r][c] = class, optional CE per cell drawn as contour bands (alternate bands
 * darker). Returns an image of `cell`-pixel cells; row 0 is the top (largest second coordinate).
 */
export function classMapImage(classes: number[][], opts: { cell?: number; ce?: number[][]; band?: number } = {}): RgbaImage {
  const rowsN = classes.length;
  const colsN = classes[0].length;
  const s = opts.cell ?? 6;
  const width = colsN * s;
  const height = rowsN * s;
  const data = new Uint8ClampedArray(width * height * 4);
  const band = opts.band ?? 0.5;
  for (let r = 0; r < rowsN; r++) {
    for (let c = 0; c < colsN; c++) {
      const [R, G, B] = CLASS_COLOURS[classes[r][c] % 10];
      let f = 1;
      if (opts.ce) {
        const b = Math.floor(opts.ce[r][c] / band);
        const edge = (rr: number, cc: number) => rr >= 0 && cc >= 0 && rr < rowsN && cc < colsN && Math.floor(opts.ce![rr][cc] / band) !== b;
        if (edge(r + 1, c) || edge(r, c + 1)) f = 0.35; // contour line between CE bands
        else f = b % 2 ? 0.85 : 1;
      }
      for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
        const p = ((r * s + y) * width + c * s + x) * 4;
        data[p] = R * f;
        data[p + 1] = G * f;
        data[p + 2] = B * f;
        data[p + 3] = 255;
      }
    }
  }
  return { width, height, data };
}

/** Draw a filled square marker of `size` pixels centred at (px, py). */
export function mark(img: RgbaImage, px: number, py: number, rgb: [number, number, number], size = 5): void {
  const h = Math.floor(size / 2);
  for (let y = Math.round(py) - h; y <= Math.round(py) + h; y++) for (let x = Math.round(px) - h; x <= Math.round(px) + h; x++) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
    const p = (y * img.width + x) * 4;
    img.data[p] = rgb[0];
    img.data[p + 1] = rgb[1];
    img.data[p + 2] = rgb[2];
  }
}

/** Predicted classes and (optionally) CE to `target` for a batch of images, in chunks. */
export async function classesAndCe(c: Classifier, images: tf.Tensor4D, target?: number, chunk = 500): Promise<{ cls: number[]; ce: number[] }> {
  const cls: number[] = [];
  const ce: number[] = [];
  for (let i = 0; i < images.shape[0]; i += chunk) {
    const m = Math.min(chunk, images.shape[0] - i);
    const [a, b] = tf.tidy(() => {
      const logits = c.logits(tf.slice(images, i, m));
      const lsm = tf.logSoftmax(logits);
      return [tf.argMax(logits, 1), target === undefined ? tf.zeros([m]) : tf.neg(tf.reshape(tf.slice(lsm, [0, target], [m, 1]), [m]))];
    });
    cls.push(...(await a.data()));
    ce.push(...(await b.data()));
    tf.dispose([a, b]);
  }
  return { cls, ce };
}
