/**
 * Rendering helper for contrastive explanations (seed 001 Fig. 2): the input in grey, with red
 * where the explanation adds intensity (to move from the true to the probe class) and blue where it
 * removes intensity. Returns an RGBA image of the same structure as render/'s Image.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

export interface ContrastRenderOptions {
  /** Scale of |diff| that gives full colour; default max |diff| of the image. */
  scale?: number;
  /** Brightness range of the grey input, [dark, light] in 0..255. Default [40, 200]. */
  grey?: [number, number];
}

/**
 * input: one image [h, w, c] or [1, h, w, c] in [0, 1]; diff: same spatial size (channels averaged).
 * Positive diff → red (add), negative → blue (remove); opacity ∝ |diff| / scale.
 */
export function renderContrast(input: tf.Tensor, diff: tf.Tensor, opts: ContrastRenderOptions = {}): RgbaImage {
  const [h, w] = input.rank === 4 ? input.shape.slice(1, 3) : input.shape.slice(0, 2);
  const [g, d] = tf.tidy(() => {
    const x3 = tf.reshape(input, [h, w, -1]);
    const d3 = tf.reshape(diff, [h, w, -1]);
    return [tf.mean(x3, 2), tf.mean(d3, 2)];
  });
  const gv = g.dataSync();
  const dv = d.dataSync();
  tf.dispose([g, d]);
  let scale = opts.scale ?? 0;
  if (!scale) for (const v of dv) scale = Math.max(scale, Math.abs(v));
  if (!(scale > 0)) scale = 1;
  const [dark, light] = opts.grey ?? [40, 200];
  const data = new Uint8ClampedArray(h * w * 4);
  for (let i = 0; i < h * w; i++) {
    const base = dark + (light - dark) * Math.min(1, Math.max(0, gv[i]));
    const a = Math.min(1, Math.abs(dv[i]) / scale);
    const [r, gg, b] = dv[i] >= 0 ? [255, 30, 30] : [30, 60, 255];
    data[i * 4] = base * (1 - a) + r * a;
    data[i * 4 + 1] = base * (1 - a) + gg * a;
    data[i * 4 + 2] = base * (1 - a) + b * a;
    data[i * 4 + 3] = 255;
  }
  return { width: w, height: h, data };
}
