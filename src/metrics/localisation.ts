/**
 * The ground-truth region of the localisation metrics: a mask [N or 1, H, W, 1] given by the user,
 * or the biased-MNIST square (seed 001 §4.3: a 6×6 grey square in the top-left corner of every 8;
 * data/derived.ts), where a model trained on biased MNIST finds its evidence for "8".
 */
import * as tf from '@tensorflow/tfjs-core';
import { squareMask, type SquareOptions } from '../data/derived.js';
import { OptionError } from '../core/errors.js';

export type RegionOption = 'square' | tf.Tensor;

/** Per image, the pixel indices (row-major H·W) inside the region. */
export async function regionPixels(region: unknown, square: SquareOptions, n: number, h: number, w: number): Promise<Uint8Array[]> {
  let mask: tf.Tensor;
  if (region === 'square') mask = squareMask(h, w, square);
  else if (region instanceof tf.Tensor) {
    const s = region.shape;
    const ok = s.length === 4 && (s[0] === 1 || s[0] === n) && s[1] === h && s[2] === w;
    if (!ok) throw new OptionError(`expected option region to be a mask [1 or ${n}, ${h}, ${w}, C]; got [${s.join(', ')}]`);
    mask = tf.tidy(() => tf.cast(tf.greater(tf.max(region, 3), 0), 'float32'));
  } else {
    throw new OptionError(`expected option region to be "square" or a mask tensor; got ${JSON.stringify(region)}`);
  }
  const v = (await mask.data()) as Float32Array;
  const per = mask.shape[0] ?? 1;
  if (region === 'square' || region !== mask) mask.dispose();
  return Array.from({ length: n }, (_, i) => {
    const j = per === 1 ? 0 : i;
    return Uint8Array.from(v.subarray(j * h * w, (j + 1) * h * w), (x) => (x > 0 ? 1 : 0));
  });
}
