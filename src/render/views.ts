/**
 * Model views (seed 004: filter and activation views; seed 002: plotting helpers): conv filters,
 * feature maps, and a grid of misclassified examples.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidInputError } from '../core/errors.js';
import { type ColormapName } from './colormap.js';
import { grid } from './grid.js';
import { mapLimit, renderImage, renderValues } from './heatmap.js';
import type { Image } from './image.js';

export interface FiltersGridOptions {
  /** Upscale of each filter tile (default: so a tile is ~48 px). */
  scale?: number;
  cols?: number;
  /** 'shared' (default): one scale for all filters, so strengths compare; 'each': per filter. */
  normalize?: 'shared' | 'each';
  /**
   * For kernels with several input channels: 'sum' over them (default), 'rgb' (3 input channels
   * shown as colour, first layers of RGB nets), or one input channel index.
   */
  inChannel?: 'sum' | 'rgb' | number;
  colormap?: ColormapName;
  title?: string;
  /** Show "#k" under each filter (default true). */
  labels?: boolean;
}

/** Conv kernel [kh, kw, in, out] → one tile per output filter (blue negative, red positive weights). */
export function plotFiltersGrid(kernel: tf.Tensor, opts: FiltersGridOptions = {}): Image {
  if (kernel.rank !== 4) throw new InvalidInputError(`plotFiltersGrid: expected a conv kernel [kh, kw, in, out]; got [${kernel.shape.join(', ')}]`);
  const [kh, kw, cin, cout] = kernel.shape;
  const w = Float32Array.from(kernel.dataSync());
  const mode = opts.inChannel ?? 'sum';
  if (typeof mode === 'number' && !(Number.isInteger(mode) && mode >= 0 && mode < cin)) {
    throw new InvalidInputError(`plotFiltersGrid: inChannel ${mode} outside 0..${cin - 1}`);
  }
  if (mode === 'rgb' && cin !== 3) throw new InvalidInputError(`plotFiltersGrid: inChannel 'rgb' needs 3 input channels; got ${cin}`);
  const at = (y: number, x: number, i: number, o: number) => w[((y * kw + x) * cin + i) * cout + o];
  const scale = opts.scale ?? Math.max(1, Math.round(48 / Math.max(kh, kw)));
  const filters: Float32Array[] = [];
  for (let o = 0; o < cout; o++) {
    const f = new Float32Array(kh * kw * (mode === 'rgb' ? 3 : 1));
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++) {
        const p = y * kw + x;
        if (mode === 'rgb') for (let i = 0; i < 3; i++) f[3 * p + i] = at(y, x, i, o);
        else if (mode === 'sum') for (let i = 0; i < cin; i++) f[p] += at(y, x, i, o);
        else f[p] = at(y, x, mode, o);
      }
    filters.push(f);
  }
  const shared = (opts.normalize ?? 'shared') === 'shared';
  const all = shared ? mapLimit(Float32Array.from(filters.flatMap((f) => Array.from(f)))) : 0;
  const tiles = filters.map((f) => {
    const vmax = shared ? all : mapLimit(f);
    if (mode === 'rgb') {
      const t = tf.tensor3d(f, [kh, kw, 3]);
      try {
        return renderImage(t, { range: [-vmax, vmax], scale });
      } finally {
        t.dispose();
      }
    }
    return renderValues(f, kh, kw, { colormap: opts.colormap ?? 'diverging', vmax, scale }).image;
  });
  return grid(tiles, {
    cols: opts.cols ?? Math.min(cout, 8),
    labels: opts.labels === false ? undefined : tiles.map((_, k) => `#${k}`),
    title: opts.title,
    padding: 3,
    fontSize: 10,
  });
}

export interface FeatureMapsOptions {
  scale?: number;
  cols?: number;
  /** Show at most this many channels (default 64). */
  maxMaps?: number;
  /** Default 'viridis' (activations after ReLU are ≥ 0); 'diverging' for signed pre-activations. */
  colormap?: ColormapName;
  /** 'each' (default): every map scaled to its own max; 'shared': one scale for all. */
  normalize?: 'shared' | 'each';
  title?: string;
  /** Which image of a batch (default 0). */
  index?: number;
}

/** Activations [1, h, w, c] (or [h, w, c]) → one tile per channel, labelled with its index and max. */
export function plotFeatureMaps(activation: tf.Tensor, opts: FeatureMapsOptions = {}): Image {
  let shape = activation.shape;
  if (activation.rank === 4) shape = shape.slice(1);
  else if (activation.rank !== 3) throw new InvalidInputError(`plotFeatureMaps: expected activations [1, h, w, c] or [h, w, c]; got [${activation.shape.join(', ')}]`);
  const [h, w, c] = shape;
  const idx = opts.index ?? 0;
  const vals = tf.tidy(() => (activation.rank === 4 ? tf.slice(activation, [idx, 0, 0, 0], [1, -1, -1, -1]) : activation));
  const all = Float32Array.from(vals.dataSync());
  if (vals !== activation) vals.dispose();
  const n = Math.min(c, opts.maxMaps ?? 64);
  const cmap = opts.colormap ?? 'viridis';
  const signedMap = cmap === 'diverging' || cmap === 'yellow-blue';
  const shared = opts.normalize === 'shared' ? mapLimit(all) : undefined;
  const scale = opts.scale ?? Math.max(1, Math.round(56 / Math.max(h, w)));
  const tiles: Image[] = [];
  const labels: string[] = [];
  for (let k = 0; k < n; k++) {
    const m = new Float32Array(h * w);
    let mx = -Infinity;
    for (let p = 0; p < h * w; p++) {
      m[p] = all[p * c + k];
      if (m[p] > mx) mx = m[p];
    }
    tiles.push(renderValues(m, h, w, { colormap: cmap, signed: signedMap, vmax: shared ?? mapLimit(m), scale }).image);
    labels.push(`#${k} max ${mx.toPrecision(2)}`);
  }
  return grid(tiles, { cols: opts.cols ?? Math.min(n, 8), labels, title: opts.title ?? (n < c ? `${n} of ${c} channels` : undefined), padding: 3, fontSize: 10 });
}

export interface ExamplesGridOptions {
  classNames?: string[];
  scale?: number;
  cols?: number;
  /** Show at most this many (default 64). */
  max?: number;
  title?: string;
  /** Value range of the images (default [0, 1]). */
  range?: [number, number];
  /** Per example confidence of the prediction, shown as a percentage. */
  confidences?: ArrayLike<number>;
}

/**
 * Examples with their true label and prediction, e.g. the errors of a classifier: each tile is
 * labelled "true → predicted" (and the confidence when given).
 */
export function plotExamplesGrid(
  images: tf.Tensor | Image[],
  labels: ArrayLike<number>,
  predictions: ArrayLike<number>,
  opts: ExamplesGridOptions = {},
): Image {
  const count = Array.isArray(images) ? images.length : (images as tf.Tensor).shape[0];
  if (labels.length !== count || predictions.length !== count) {
    throw new InvalidInputError(`plotExamplesGrid: ${count} images, ${labels.length} labels, ${predictions.length} predictions`);
  }
  if (count === 0) throw new InvalidInputError('plotExamplesGrid: no examples given');
  const n = Math.min(count, opts.max ?? 64);
  const name = (k: number) => opts.classNames?.[k] ?? String(k);
  const scale = opts.scale ?? 2;
  const tiles: Image[] = [];
  const text: string[] = [];
  for (let i = 0; i < n; i++) {
    tiles.push(Array.isArray(images) ? images[i] : renderImage(images as tf.Tensor, { index: i, range: opts.range, scale }));
    const conf = opts.confidences ? ` ${(100 * opts.confidences[i]).toFixed(0)}%` : '';
    text.push(`${name(labels[i])} → ${name(predictions[i])}${conf}`);
  }
  return grid(tiles, {
    cols: opts.cols ?? Math.min(n, 8),
    labels: text,
    title: opts.title ?? (n < count ? `${n} of ${count} examples (true → predicted)` : 'true → predicted'),
    scale: Array.isArray(images) ? scale : 1,
    fontSize: 10,
    padding: 4,
  });
}
