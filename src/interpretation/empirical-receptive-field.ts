/**
 * The actual receptive field of a unit (seed 004 Fig. 3, after Zhou et al. 2015): for each of the
 * unit's top images, slide a small random patch over the image and record how much the unit's
 * activation (the channel at its maximal position) changes — the image's discrepancy map, spread
 * over the pixels each patch covered. Calibrate each map by shifting it so the centre of the unit's
 * theoretical field lands at the centre of a 2h × 2w canvas, and sum over the top images: the
 * result shows where the unit actually looks, usually a much smaller region than its theoretical
 * field. A patch entirely outside the theoretical field cannot change the unit, so the map is
 * zero beyond it (the test checks this).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { batchSizeFor } from '../engine/memory.js';
import type { ImageSet } from './image-source.js';
import { createRng } from '../util/random.js';
import { topActivations } from './top-activations.js';
import type { ReceptiveField } from './receptive-field.js';

export interface EmpiricalReceptiveFieldOptions {
  layer: string;
  channel: number;
  /** Top images used. Default 10. */
  k?: number;
  /** Side of the random patch in pixels. Default 3. */
  patch?: number;
  /** Step between patch positions. Default 1. */
  stride?: number;
  /** Seed of the patches' random values. Default 0. */
  seed?: number;
  /** Occluded images per forward pass, at most. Default 256. */
  batchSize?: number;
}

export interface EmpiricalReceptiveFieldResult {
  /** Calibrated, summed discrepancy [2h, 2w], scaled to max 1 (all 0 when the unit never changes). */
  map: number[][];
  /** Rows and columns of the canvas where the map is at least `threshold` of its max: the actual field's extent. */
  extent: (threshold: number) => { rows: number; cols: number };
  /** The unit's theoretical field, for comparison. */
  theoretical: ReceptiveField;
  /** Dataset indices of the top images used. */
  images: number[];
}

/**
 * Estimate a channel's actual receptive field from its top images.
 *
 * @example
 * const r = await empiricalReceptiveField(cnn, test, { layer: 'conv2', channel: 4, k: 5 });
 * console.log(r.extent(0.5), r.theoretical.rows.size);
 */
export async function empiricalReceptiveField(classifier: Classifier, data: ImageSet, opts: EmpiricalReceptiveFieldOptions): Promise<EmpiricalReceptiveFieldResult> {
  const patch = opts.patch ?? 3;
  const stride = opts.stride ?? 1;
  const [h, w, c] = classifier.inputShape;
  if (!Number.isInteger(patch) || patch < 1 || patch > Math.min(h, w)) throw new OptionError(`expected patch an integer in 1..${Math.min(h, w)}; got ${patch}`);
  if (!Number.isInteger(stride) || stride < 1) throw new OptionError(`expected stride a positive integer; got ${stride}`);
  const top = await topActivations(classifier, data, { layer: opts.layer, channel: opts.channel, k: opts.k ?? 10 });
  const rf = top.receptiveField;
  const { low, high } = classifier.domain;
  const rng = createRng(opts.seed ?? 0);
  const canvas = Array.from({ length: 2 * h }, () => new Float64Array(2 * w));
  const positions: Array<[number, number]> = [];
  for (let y = 0; y + patch <= h; y += stride) for (let x = 0; x + patch <= w; x += stride) positions.push([y, x]);
  const bs = batchSizeFor(classifier, 'forward', opts.batchSize ?? 256);
  try {
    for (let t = 0; t < top.top.length; t++) {
      const entry = top.top[t];
      const [uy, ux] = entry.position!;
      const one = tf.slice(top.images, t, 1);
      const base = (await one.data()) as Float32Array;
      one.dispose();
      const d = h * w * c;
      const disc = new Float64Array(h * w);
      const cover = new Float64Array(h * w);
      for (let s = 0; s < positions.length; s += bs) {
        const m = Math.min(bs, positions.length - s);
        const buf = new Float32Array(m * d);
        for (let i = 0; i < m; i++) {
          buf.set(base, i * d);
          const [py, px] = positions[s + i];
          for (let yy = py; yy < py + patch; yy++) for (let xx = px; xx < px + patch; xx++) for (let ch = 0; ch < c; ch++) {
            buf[i * d + (yy * w + xx) * c + ch] = low + (high - low) * rng();
          }
        }
        const xb = tf.tensor4d(buf, [m, h, w, c]);
        const a = classifier.activations(xb, [opts.layer]).get(opts.layer)!;
        xb.dispose();
        const v = tf.tidy(() => tf.reshape(tf.slice(a, [0, uy, ux, opts.channel], [m, 1, 1, 1]), [m]));
        a.dispose();
        const vals = (await v.data()) as Float32Array;
        v.dispose();
        for (let i = 0; i < m; i++) {
          const diff = Math.abs(vals[i] - entry.score);
          const [py, px] = positions[s + i];
          for (let yy = py; yy < py + patch; yy++) for (let xx = px; xx < px + patch; xx++) {
            disc[yy * w + xx] += diff;
            cover[yy * w + xx] += 1;
          }
        }
      }
      // Calibrate: the centre of the unit's theoretical field goes to the canvas centre (h, w).
      const cy = Math.round(rf.rows.start + uy * rf.rows.jump + (rf.rows.size - 1) / 2);
      const cx = Math.round(rf.cols.start + ux * rf.cols.jump + (rf.cols.size - 1) / 2);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        if (cover[y * w + x] === 0) continue;
        const Y = y - cy + h;
        const X = x - cx + w;
        if (Y >= 0 && Y < 2 * h && X >= 0 && X < 2 * w) canvas[Y][X] += disc[y * w + x] / cover[y * w + x];
      }
    }
  } finally {
    top.dispose();
  }
  const images = top.top.map((e) => e.index);
  let max = 0;
  for (const row of canvas) for (const v of row) max = Math.max(max, v);
  const map = canvas.map((row) => Array.from(row, (v) => (max > 0 ? v / max : 0)));
  const extent = (threshold: number) => {
    let [t, b, l, r] = [Infinity, -1, Infinity, -1];
    map.forEach((row, y) => row.forEach((v, x) => {
      if (max > 0 && v >= threshold) {
        t = Math.min(t, y); b = Math.max(b, y); l = Math.min(l, x); r = Math.max(r, x);
      }
    }));
    return b < 0 ? { rows: 0, cols: 0 } : { rows: b - t + 1, cols: r - l + 1 };
  };
  return { map, extent, theoretical: rf, images };
}
