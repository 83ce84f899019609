/**
 * Top activations (seed 004, "maximally activating patches"): the dataset images on which a unit or
 * a channel of a layer responds most, with the input patch under the theoretical receptive field of
 * the maximal position. A channel's score on an image is its maximum over positions (where that is
 * is the patch's centre unit); a unit's is its value. The dataset is streamed in batches that fit the
 * memory budget (any ImageSource: a loaded dataset, or a folder decoded batch by batch) and only the k
 * best (score, image index, position) are kept per unit — k given, or the top p % of the dataset as
 * seed 004 takes them — so memory is bounded by the batch and k, not the dataset. Several units of
 * one layer share one pass over the data.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { batchSizeFor } from '../engine/memory.js';
import { imageSource, readBatch, readIndices, topCount, type ImageSet } from './image-source.js';
import { receptiveField, receptiveWindow, type ReceptiveField } from './receptive-field.js';

/** A channel of a spatial node (score: its maximum over positions), or one value of a node. */
export type UnitSpec = { channel: number } | { unit: number | [number, number, number] };

export interface TopActivationsOptions {
  /** A node of the classifier (see classifier.layers()). */
  layer: string;
  /** A channel of a spatial node (score: its maximum over positions). */
  channel?: number;
  /** Or one value: a flat index, or [y, x, channel] of a spatial node. */
  unit?: number | [number, number, number];
  /** How many images to keep. Default 9 (unless percent is given). */
  k?: number;
  /** Or keep the top p % of the dataset (⌈p/100 · N⌉ images; seed 004 uses 1 %). */
  percent?: number;
  /** Images per forward pass, at most (fewer when the memory budget says so). Default 256. */
  batchSize?: number;
  /** Report progress as a fraction in [0, 1]. */
  progress?: (fraction: number) => void;
}

export interface TopActivationsManyOptions extends Omit<TopActivationsOptions, 'channel' | 'unit'> {
  /** The units of `layer`, scored in one pass over the data. */
  units: UnitSpec[];
}

export interface TopActivation {
  /** Index of the image in the dataset. */
  index: number;
  label: number;
  /** The classifier's predicted class of the image. */
  prediction: number;
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
  /** Images scored. */
  scanned: number;
  dispose(): void;
}

/** A unit resolved against a node's shape: a channel, or a flat index into the node's output. */
export interface ResolvedUnit {
  channel?: number;
  flat?: number;
}

export function resolveUnit(classifier: Classifier, layer: string, u: UnitSpec): ResolvedUnit {
  const shape = classifier.node(layer).shape;
  const spatial = shape.length === 3;
  const size = shape.reduce((a, b) => a * b, 1);
  const channels = shape[shape.length - 1];
  if ('channel' in u && u.channel !== undefined) {
    if (!spatial) throw new OptionError(`expected a spatial layer [h, w, c] for a channel; layer "${layer}" has shape [${shape.join(', ')}]: use a unit`);
    if (!Number.isInteger(u.channel) || u.channel < 0 || u.channel >= channels) throw new OptionError(`expected a channel in 0..${channels - 1} of layer "${layer}"; got ${u.channel}`);
    return { channel: u.channel };
  }
  const v = (u as { unit: number | [number, number, number] }).unit;
  if (Array.isArray(v)) {
    if (!spatial || v.length !== 3 || v.some((x, d) => !Number.isInteger(x) || x < 0 || x >= shape[d])) throw new OptionError(`expected unit [y, x, channel] within [${shape.join(', ')}]; got [${v.join(', ')}]`);
    return { flat: (v[0] * shape[1] + v[1]) * shape[2] + v[2] };
  }
  if (!Number.isInteger(v) || v < 0 || v >= size) throw new OptionError(`expected a unit in 0..${size - 1} of layer "${layer}"; got ${v}`);
  return { flat: v };
}

/** The units of single-unit options ({channel} or {unit}), checked to be exactly one. */
export function singleUnit(opts: { layer: string; channel?: number; unit?: number | [number, number, number] }): UnitSpec {
  if ((opts.channel === undefined) === (opts.unit === undefined)) throw new OptionError(`expected exactly one of channel or unit with layer "${opts.layer}"`);
  return opts.channel !== undefined ? { channel: opts.channel } : { unit: opts.unit! };
}

/**
 * Scores of every unit on a batch [units][m], the maximal positions (flat y·W + x for a channel,
 * the flat index for a unit) and the predicted class of each image — one forward pass.
 */
export async function scoreBatch(classifier: Classifier, x: tf.Tensor4D, layer: string, units: ResolvedUnit[]): Promise<{ scores: Float32Array[]; positions: Int32Array[]; predictions: Int32Array }> {
  const shape = classifier.node(layer).shape;
  const m = x.shape[0];
  const size = shape.reduce((a, b) => a * b, 1);
  const channels = shape[shape.length - 1];
  const chans = units.filter((u) => u.channel !== undefined).map((u) => u.channel!);
  const flats = units.filter((u) => u.flat !== undefined).map((u) => u.flat!);
  const out = tf.tidy(() => {
    const { logits, captured } = classifier.forward(x, { capture: [layer] });
    const a = captured.get(layer)!;
    const res: tf.Tensor[] = [tf.argMax(logits, 1)];
    if (chans.length) {
      // [m, positions, C] → the chosen channels' max and argmax over positions
      const perPos = tf.gather(tf.reshape(a, [m, size / channels, channels]), tf.tensor1d(chans, 'int32'), 2);
      res.push(tf.max(perPos, 1), tf.cast(tf.argMax(perPos, 1), 'int32'));
    }
    if (flats.length) res.push(tf.gather(tf.reshape(a, [m, size]), tf.tensor1d(flats, 'int32'), 1));
    return res;
  });
  try {
    const predictions = Int32Array.from((await out[0].data()) as Int32Array);
    const cVal = chans.length ? ((await out[1].data()) as Float32Array) : undefined;
    const cPos = chans.length ? ((await out[2].data()) as Int32Array) : undefined;
    const fVal = flats.length ? ((await out[chans.length ? 3 : 1].data()) as Float32Array) : undefined;
    const scores: Float32Array[] = [];
    const positions: Int32Array[] = [];
    let ci = 0;
    let fi = 0;
    for (const u of units) {
      const s = new Float32Array(m);
      const p = new Int32Array(m);
      if (u.channel !== undefined) {
        for (let i = 0; i < m; i++) {
          s[i] = cVal![i * chans.length + ci];
          p[i] = cPos![i * chans.length + ci];
        }
        ci++;
      } else {
        for (let i = 0; i < m; i++) {
          s[i] = fVal![i * flats.length + fi];
          p[i] = u.flat!;
        }
        fi++;
      }
      scores.push(s);
      positions.push(p);
    }
    return { scores, positions, predictions };
  } finally {
    tf.dispose(out);
  }
}

/**
 * The k best entries seen so far, best first; an entry replaces another only with a strictly higher
 * score, so among equal scores the one seen first (the lower index) stays ahead.
 */
export class TopKeeper<T extends { score: number }> {
  readonly best: T[] = [];
  constructor(readonly k: number, private readonly evicted?: (e: T) => void) {}

  /** Would an entry with this score be kept? */
  wants(score: number): boolean {
    return this.best.length < this.k || score > this.best[this.k - 1].score;
  }

  add(e: T): void {
    if (!this.wants(e.score)) return;
    let i = this.best.length;
    while (i > 0 && this.best[i - 1].score < e.score) i--;
    this.best.splice(i, 0, e);
    if (this.best.length > this.k) {
      // Popped first: `evicted?.(pop())` would skip the pop when there is no callback.
      const out = this.best.pop()!;
      this.evicted?.(out);
    }
  }
}

/** [y, x] of a maximal position (channel: y·W + x; unit: the flat index), undefined for non-spatial nodes. */
export function positionOf(shape: number[], unit: ResolvedUnit, pos: number): [number, number] | undefined {
  if (shape.length !== 3) return undefined;
  const p = unit.channel !== undefined ? pos : Math.floor(pos / shape[2]);
  return [Math.floor(p / shape[1]), p % shape[1]];
}

/**
 * The input patches under the receptive field of each entry's position, [n, rh, rw, c]: the image
 * inside the window, padded with the domain's low value where the field hangs over the border (for
 * nodes that see the whole input: the image itself).
 */
export function fieldPatches(classifier: Classifier, rf: ReceptiveField, images: tf.Tensor4D, entries: Array<{ position?: [number, number]; window: TopActivation['window'] }>): tf.Tensor4D {
  const [h, w, c] = classifier.inputShape;
  const rh = rf.global ? h : rf.rows.size;
  const rw = rf.global ? w : rf.cols.size;
  if (entries.length === 0) return tf.zeros([0, rh, rw, c]);
  return tf.tidy(() => {
    const low = classifier.domain.low;
    const ps = entries.map((t, i) => {
      const win = tf.slice(images, [i, t.window.top, t.window.left, 0], [1, t.window.height, t.window.width, c]);
      if (t.position === undefined || rf.global) return win;
      const r0 = rf.rows.start + t.position[0] * rf.rows.jump;
      const c0 = rf.cols.start + t.position[1] * rf.cols.jump;
      const padTop = t.window.top - r0;
      const padLeft = t.window.left - c0;
      return tf.pad(win, [[0, 0], [padTop, rh - t.window.height - padTop], [padLeft, rw - t.window.width - padLeft], [0, 0]], low);
    });
    return tf.concat(ps, 0) as tf.Tensor4D;
  });
}

/**
 * Stream a dataset once and keep, for each of several units of one layer, the k (or top p %) images
 * with the highest activation.
 *
 * @example
 * const [a, b] = await topActivationsOfUnits(cnn, test, { layer: 'conv2', units: [{ channel: 3 }, { channel: 5 }], percent: 1 });
 */
export async function topActivationsOfUnits(classifier: Classifier, data: ImageSet, opts: TopActivationsManyOptions): Promise<TopActivationsResult[]> {
  const src = imageSource(data);
  const n = src.size;
  if (n === 0) throw new OptionError('expected a dataset with at least one image; got none');
  if (!Array.isArray(opts.units) || opts.units.length === 0) throw new OptionError('expected at least one unit; got none');
  const k = Math.min(topCount(n, opts.k, opts.percent, 9), n);
  const shape = classifier.node(opts.layer).shape;
  const units = opts.units.map((u) => resolveUnit(classifier, opts.layer, u));
  const rf = receptiveField(classifier, opts.layer);
  const [h, w, c] = classifier.inputShape;
  const bs = batchSizeFor(classifier, 'forward', opts.batchSize ?? 256);
  type Entry = { index: number; score: number; pos: number; prediction: number };
  const keepers = units.map(() => new TopKeeper<Entry>(k));
  for (let s = 0; s < n; s += bs) {
    const m = Math.min(bs, n - s);
    const xb = await readBatch(src, s, m, [h, w, c]);
    let r: Awaited<ReturnType<typeof scoreBatch>>;
    try {
      r = await scoreBatch(classifier, xb, opts.layer, units);
    } finally {
      xb.dispose();
    }
    units.forEach((_, u) => {
      for (let i = 0; i < m; i++) keepers[u].add({ index: s + i, score: r.scores[u][i], pos: r.positions[u][i], prediction: r.predictions[i] });
    });
    opts.progress?.((s + m) / n);
  }
  const results: TopActivationsResult[] = [];
  try {
    for (let u = 0; u < units.length; u++) {
      const top: TopActivation[] = keepers[u].best.map((b) => {
        const position = positionOf(shape, units[u], b.pos);
        const window = position ? receptiveWindow(rf, position[0], position[1], [h, w, c]) : { top: 0, left: 0, height: h, width: w };
        return { index: b.index, label: src.labels[b.index], prediction: b.prediction, score: b.score, position, window };
      });
      const images = await readIndices(src, top.map((t) => t.index), [h, w, c]);
      const patches = fieldPatches(classifier, rf, images, top);
      results.push({ top, receptiveField: rf, images, patches, scanned: n, dispose: () => tf.dispose([images, patches]) });
    }
    return results;
  } catch (e) {
    for (const r of results) r.dispose();
    throw e;
  }
}

/**
 * Stream a dataset through the classifier and keep the k (or top p %) images with the highest
 * activation of one unit or channel.
 *
 * @example
 * const r = await topActivations(cnn, testSet, { layer: 'conv2', channel: 3, k: 9 });
 * console.log(r.top.map((t) => t.index)); r.dispose();
 */
export async function topActivations(classifier: Classifier, data: ImageSet, opts: TopActivationsOptions): Promise<TopActivationsResult> {
  const { channel, unit, ...rest } = opts;
  const [r] = await topActivationsOfUnits(classifier, data, { ...rest, units: [singleUnit({ layer: opts.layer, channel, unit })] });
  return r;
}
