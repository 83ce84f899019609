/**
 * Top activations (seed 004, "maximally activating patches"): the dataset images on which a unit or
 * a channel of a layer responds most, with the input patch under the theoretical receptive field of
 * the maximal position. A channel's score on an image is its maximum over positions (where that is
 * is the patch's centre unit); a unit's is its value. The dataset is streamed in batches that fit the
 * memory budget and only the k best (score, image index, position) are kept, so memory is bounded by
 * the batch and k, not the dataset.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { batchSizeFor } from '../engine/memory.js';
import type { Dataset } from '../data/dataset.js';
import { receptiveField, receptiveWindow, type ReceptiveField } from './receptive-field.js';

export interface TopActivationsOptions {
  /** A node of the classifier (see classifier.layers()). */
  layer: string;
  /** A channel of a spatial node (score: its maximum over positions). */
  channel?: number;
  /** Or one value: a flat index, or [y, x, channel] of a spatial node. */
  unit?: number | [number, number, number];
  /** How many images to keep. Default 9. */
  k?: number;
  /** Images per forward pass, at most (fewer when the memory budget says so). Default 256. */
  batchSize?: number;
  /** Report progress as a fraction in [0, 1]. */
  progress?: (fraction: number) => void;
}

export interface TopActivation {
  /** Index of the image in the dataset. */
  index: number;
  label: number;
  /** The unit's value, or the channel's maximum over positions. */
  score: number;
  /** [y, x] of the maximal position in the node's output (undefined for non-spatial nodes). */
  position?: [number, number];
  /** The input window under the receptive field of that position, clipped to the image. */
  window: { top: number; left: number; height: number; width: number };
}

export interface TopActivationsResult {
  /** Best first (ties: lower dataset index first). */
  top: TopActivation[];
  receptiveField: ReceptiveField;
  /** The top images [k, h, w, c] and their patches (each padded to the full field size with the domain's low value, [k, rh, rw, c]). */
  images: tf.Tensor4D;
  patches: tf.Tensor4D;
  dispose(): void;
}

/**
 * Stream a dataset through the classifier and keep the k images with the highest activation.
 *
 * @example
 * const r = await topActivations(cnn, testSet, { layer: 'conv2', channel: 3, k: 9 });
 * console.log(r.top.map((t) => t.index)); r.dispose();
 */
export async function topActivations(classifier: Classifier, data: Pick<Dataset, 'images' | 'labels'>, opts: TopActivationsOptions): Promise<TopActivationsResult> {
  const k = opts.k ?? 9;
  if (!Number.isInteger(k) || k < 1) throw new OptionError(`expected k a positive integer; got ${k}`);
  const node = classifier.node(opts.layer);
  const shape = node.shape;
  const spatial = shape.length === 3;
  const size = shape.reduce((a, b) => a * b, 1);
  const channels = shape[shape.length - 1];
  if ((opts.channel === undefined) === (opts.unit === undefined)) throw new OptionError(`expected exactly one of channel or unit with layer "${opts.layer}"`);
  let flat = -1;
  if (opts.channel !== undefined) {
    if (!spatial) throw new OptionError(`expected a spatial layer [h, w, c] for a channel; layer "${opts.layer}" has shape [${shape.join(', ')}]: use a unit`);
    if (!Number.isInteger(opts.channel) || opts.channel < 0 || opts.channel >= channels) throw new OptionError(`expected a channel in 0..${channels - 1} of layer "${opts.layer}"; got ${opts.channel}`);
  } else {
    const u = opts.unit!;
    if (Array.isArray(u)) {
      if (!spatial || u.length !== 3 || u.some((v, d) => !Number.isInteger(v) || v < 0 || v >= shape[d])) throw new OptionError(`expected unit [y, x, channel] within [${shape.join(', ')}]; got [${u.join(', ')}]`);
      flat = (u[0] * shape[1] + u[1]) * shape[2] + u[2];
    } else {
      if (!Number.isInteger(u) || u < 0 || u >= size) throw new OptionError(`expected a unit in 0..${size - 1} of layer "${opts.layer}"; got ${u}`);
      flat = u;
    }
  }
  const n = data.images.shape[0];
  if (n === 0) throw new OptionError('expected a dataset with at least one image; got none');
  const rf = receptiveField(classifier, opts.layer);
  const bs = batchSizeFor(classifier, 'forward', opts.batchSize ?? 256);
  const best: Array<{ index: number; score: number; pos: number }> = [];
  const consider = (index: number, score: number, pos: number) => {
    if (best.length === k && !(score > best[k - 1].score)) return;
    let i = best.length;
    while (i > 0 && (best[i - 1].score < score)) i--;
    best.splice(i, 0, { index, score, pos });
    if (best.length > k) best.pop();
  };
  for (let s = 0; s < n; s += bs) {
    const m = Math.min(bs, n - s);
    // activations() hands back kept tensors, which no tidy frees: freed by hand.
    const xb = tf.slice(data.images, s, m);
    const a = classifier.activations(xb, [opts.layer]).get(opts.layer)!;
    xb.dispose();
    const [valT, posT] = tf.tidy(() => {
      const flatA = tf.reshape(a, [m, size]);
      if (opts.channel !== undefined) {
        const ch = tf.reshape(tf.slice(a, [0, 0, 0, opts.channel], [-1, -1, -1, 1]), [m, shape[0] * shape[1]]);
        return [tf.max(ch, 1), tf.argMax(ch, 1)];
      }
      return [tf.reshape(tf.slice(flatA, [0, flat], [-1, 1]), [m]), tf.fill([m], flat, 'int32')];
    });
    a.dispose();
    const vals = (await valT.data()) as Float32Array;
    const pos = (await posT.data()) as Int32Array;
    tf.dispose([valT, posT]);
    for (let i = 0; i < m; i++) consider(s + i, vals[i], pos[i]);
    opts.progress?.((s + m) / n);
  }
  const [h, w, c] = classifier.inputShape;
  const top: TopActivation[] = best.map((b) => {
    let position: [number, number] | undefined;
    if (spatial) {
      // channel: pos is y·W + x; unit: pos is the flat index (y·W + x)·C + c
      const p = opts.channel !== undefined ? b.pos : Math.floor(b.pos / channels);
      position = [Math.floor(p / shape[1]), p % shape[1]];
    }
    const window = position ? receptiveWindow(rf, position[0], position[1], [h, w, c]) : { top: 0, left: 0, height: h, width: w };
    return { index: b.index, label: data.labels[b.index], score: b.score, position, window };
  });
  const rh = rf.global ? h : rf.rows.size;
  const rw = rf.global ? w : rf.cols.size;
  const { images, patches } = tf.tidy(() => {
    const idx = tf.tensor1d(top.map((t) => t.index), 'int32');
    const imgs = tf.gather(data.images, idx) as tf.Tensor4D;
    const low = classifier.domain.low;
    const ps = top.map((t, i) => {
      const win = tf.slice(imgs, [i, t.window.top, t.window.left, 0], [1, t.window.height, t.window.width, c]);
      if (!position0(t)) return tf.image.resizeBilinear(win as tf.Tensor4D, [rh, rw]);
      // Where the field hangs over the border, pad with the domain's low value on that side.
      const r0 = rf.rows.start + t.position![0] * rf.rows.jump;
      const c0 = rf.cols.start + t.position![1] * rf.cols.jump;
      const padTop = t.window.top - r0;
      const padLeft = t.window.left - c0;
      return tf.pad(win, [[0, 0], [padTop, rh - t.window.height - padTop], [padLeft, rw - t.window.width - padLeft], [0, 0]], low);
    });
    return { images: imgs, patches: tf.concat(ps, 0) as tf.Tensor4D };
  });
  return { top, receptiveField: rf, images, patches, dispose: () => tf.dispose([images, patches]) };

  function position0(t: TopActivation): boolean {
    return t.position !== undefined && !rf.global;
  }
}
