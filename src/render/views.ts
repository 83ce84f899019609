/**
 * Model views (seed 004: filter and activation views, maximally activating patches, nearest
 * neighbours, real vs adversarial top images; seed 003: class prototypes; seed 002: plotting
 * helpers): conv filters, feature maps, a grid of misclassified examples, and the pictures of the
 * interpretation methods. Every view takes what a method returned and gives one labelled Image; it
 * computes nothing, so the API, the CLI and the experiments draw the same picture.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidInputError } from '../core/errors.js';
import type { Neighbour } from '../interpretation/nearest-neighbours.js';
import type { TopActivation, TopActivationsResult } from '../interpretation/top-activations.js';
import type { TopRealVsAdversarialResult } from '../interpretation/top-adversarial.js';
import type { ReceptiveField } from '../interpretation/receptive-field.js';
import { type ColormapName } from './colormap.js';
import { grid } from './grid.js';
import { mapLimit, renderImage, renderValues } from './heatmap.js';
import { resizeNearest, type Image } from './image.js';

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

/** Draws a one-pixel rectangle outline (in place) — a receptive window on an image tile. */
export function drawBox(image: Image, top: number, left: number, height: number, width: number, rgb: [number, number, number] = [230, 30, 30]): Image {
  const set = (x: number, y: number) => {
    if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
    const i = 4 * (y * image.width + x);
    image.data[i] = rgb[0];
    image.data[i + 1] = rgb[1];
    image.data[i + 2] = rgb[2];
    image.data[i + 3] = 255;
  };
  const bottom = top + height - 1;
  const right = left + width - 1;
  for (let x = left; x <= right; x++) {
    set(x, top);
    set(x, bottom);
  }
  for (let y = top; y <= bottom; y++) {
    set(left, y);
    set(right, y);
  }
  return image;
}

export interface TopActivationsViewOptions {
  /** Value range of the images (default [0, 1]; pass the classifier's domain). */
  range?: [number, number];
  /** Pixels per image tile side, about (default 84). */
  tileSize?: number;
  classNames?: string[];
  title?: string;
  /** Show at most this many images (default 16). */
  max?: number;
}

function tileScale(h: number, size = 84): number {
  return Math.max(1, Math.round(size / h));
}

/** One row of images (receptive window boxed) over one row of their patches, each labelled. */
function topRows(images: tf.Tensor4D, patches: tf.Tensor4D, top: TopActivation[], label: (t: TopActivation) => string, opts: TopActivationsViewOptions): { tiles: Image[]; labels: string[]; cols: number } {
  const n = Math.min(top.length, opts.max ?? 16);
  const [, h, w] = images.shape;
  const s = tileScale(h, opts.tileSize);
  const tiles: Image[] = [];
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = top[i];
    const img = renderImage(images, { index: i, range: opts.range, scale: s });
    if (t.position && (t.window.height < h || t.window.width < w)) drawBox(img, t.window.top * s, t.window.left * s, t.window.height * s, t.window.width * s);
    tiles.push(img);
    labels.push(label(t));
  }
  for (let i = 0; i < n; i++) {
    // Patches are drawn at the same size as the images so the rows line up.
    tiles.push(resizeNearest(renderImage(patches, { index: i, range: opts.range }), w * s, h * s));
    labels.push(top[i].position ? `patch at ${top[i].position!.join(',')}` : 'whole image');
  }
  return { tiles, labels, cols: n };
}

/**
 * Maximally activating images and patches (seed 004): the top images, best first, with the unit's
 * receptive window boxed, over the input patches under it (patches drawn at the images' size).
 */
export function plotTopActivations(r: Pick<TopActivationsResult, 'images' | 'patches' | 'top'>, opts: TopActivationsViewOptions = {}): Image {
  if (r.top.length === 0) throw new InvalidInputError('plotTopActivations: no top images given');
  const name = (l: number) => opts.classNames?.[l] ?? String(l);
  const { tiles, labels, cols } = topRows(r.images, r.patches, r.top, (t) => `#${t.index} (${name(t.label)})\n${t.score.toPrecision(3)}`, opts);
  return grid(tiles, { cols, labels, title: opts.title, rowLabels: ['images', 'patches'], fontSize: 10 });
}

/**
 * Seed 004 Figs. 2–4: a neuron's top real images beside its top adversarial images, each over its
 * patches. Real tiles read "#index (label)"; adversarial tiles "#source (label → target)", with the
 * classifier's prediction of the adversarial image when it is not the target.
 */
export function plotRealVsAdversarial(r: Pick<TopRealVsAdversarialResult, 'real' | 'adversarial'>, opts: TopActivationsViewOptions = {}): Image {
  if (r.real.top.length === 0 || r.adversarial.top.length === 0) throw new InvalidInputError('plotRealVsAdversarial: expected top real and adversarial images; got none');
  const name = (l: number) => opts.classNames?.[l] ?? String(l);
  const real = topRows(r.real.images, r.real.patches, r.real.top, (t) => `#${t.index} (${name(t.label)})\n${t.score.toPrecision(3)}`, opts);
  const adv = topRows(r.adversarial.images, r.adversarial.patches, r.adversarial.top, (t) => {
    const a = t as TopActivation & { target: number };
    const pred = a.prediction === a.target ? '' : ` [${name(a.prediction)}]`;
    return `#${a.index} (${name(a.label)}→${name(a.target)})${pred}\n${a.score.toPrecision(3)}`;
  }, opts);
  const cols = Math.max(real.cols, adv.cols);
  const pad = (rows: { tiles: Image[]; labels: string[]; cols: number }) => {
    // Fill short rows with blank tiles so each set keeps its own two rows.
    const tiles: Image[] = [];
    const labels: string[] = [];
    for (let row = 0; row < 2; row++) {
      for (let c = 0; c < cols; c++) {
        const i = row * rows.cols + c;
        if (c < rows.cols) {
          tiles.push(rows.tiles[i]);
          labels.push(rows.labels[i]);
        } else {
          const t = rows.tiles[0];
          tiles.push({ width: t.width, height: t.height, data: new Uint8ClampedArray(t.width * t.height * 4).fill(255) });
          labels.push('');
        }
      }
    }
    return { tiles, labels };
  };
  const a = pad(real);
  const b = pad(adv);
  return grid([...a.tiles, ...b.tiles], {
    cols, labels: [...a.labels, ...b.labels], title: opts.title, fontSize: 10,
    rowLabels: ['real', 'patches', 'adversarial', 'patches'],
  });
}

export interface NeighboursViewOptions {
  range?: [number, number];
  tileSize?: number;
  classNames?: string[];
  title?: string;
  /** Label of the query column (default "query"). */
  queryLabel?: string;
}

/**
 * Nearest neighbours (seed 004, "Last layer: nearest neighbours"): one row per query — the query,
 * then its neighbours nearest first, labelled with their class and distance.
 * `neighbourImages` holds the neighbours' images row by row, [queries · k, h, w, c].
 */
export function plotNeighbours(queries: tf.Tensor4D, neighbours: Neighbour[][], neighbourImages: tf.Tensor4D, opts: NeighboursViewOptions = {}): Image {
  const nq = queries.shape[0];
  if (neighbours.length !== nq) throw new InvalidInputError(`plotNeighbours: ${nq} queries but ${neighbours.length} neighbour lists`);
  const k = Math.max(0, ...neighbours.map((l) => l.length));
  if (k === 0) throw new InvalidInputError('plotNeighbours: no neighbours given');
  if (neighbours.some((l) => l.length !== k) || neighbourImages.shape[0] !== nq * k) {
    throw new InvalidInputError(`plotNeighbours: expected ${k} neighbours per query and ${nq * k} neighbour images; got lists of ${neighbours.map((l) => l.length).join('/')} and ${neighbourImages.shape[0]} images`);
  }
  const name = (l: number) => opts.classNames?.[l] ?? String(l);
  const s = tileScale(queries.shape[1], opts.tileSize);
  const tiles: Image[] = [];
  const labels: string[] = [];
  for (let q = 0; q < nq; q++) {
    tiles.push(renderImage(queries, { index: q, range: opts.range, scale: s }));
    labels.push(opts.queryLabel ?? 'query');
    neighbours[q].forEach((nb, j) => {
      tiles.push(renderImage(neighbourImages, { index: q * k + j, range: opts.range, scale: s }));
      labels.push(`#${nb.index} (${name(nb.label)})\nd ${nb.distance.toPrecision(3)}`);
    });
  }
  return grid(tiles, { cols: k + 1, labels, title: opts.title, fontSize: 10 });
}

export interface PrototypesViewOptions {
  range?: [number, number];
  tileSize?: number;
  title?: string;
  /** One name per prototype (default its index). */
  names?: string[];
  /** Further label lines per prototype, e.g. "p = 0.98" or "log p(x) = −120". */
  notes?: string[];
  /** Prototypes per row (default all in one row up to 10). */
  cols?: number;
  /** Headers of the rows (e.g. the variants) and columns (e.g. the classes). */
  rowLabels?: string[];
  colLabels?: string[];
}

/**
 * Class prototypes (activation maximisation, seed 003 Fig. 3.1) as a labelled grid: each tile is a
 * prototype, labelled with its name and notes (the classifier's confidence, the generative model's
 * density). Several variants stack as rows with rowLabels.
 */
export function plotPrototypes(prototypes: tf.Tensor4D, opts: PrototypesViewOptions = {}): Image {
  const n = prototypes.shape[0];
  if (n === 0) throw new InvalidInputError('plotPrototypes: no prototypes given');
  for (const [k, v] of [['names', opts.names], ['notes', opts.notes]] as const) {
    if (v && v.length !== n) throw new InvalidInputError(`plotPrototypes: ${n} prototypes but ${v.length} ${k}`);
  }
  const s = tileScale(prototypes.shape[1], opts.tileSize);
  const tiles = Array.from({ length: n }, (_, i) => renderImage(prototypes, { index: i, range: opts.range, scale: s }));
  const labels = tiles.map((_, i) => [opts.names?.[i] ?? (opts.colLabels ? '' : String(i)), opts.notes?.[i] ?? ''].filter(Boolean).join('\n'));
  return grid(tiles, { cols: opts.cols ?? Math.min(n, 10), labels, title: opts.title, rowLabels: opts.rowLabels, colLabels: opts.colLabels, fontSize: 10 });
}

export interface ReceptiveFieldViewOptions {
  /** Pixels per map pixel (default 4). */
  scale?: number;
  title?: string;
}

/**
 * An actual receptive field (seed 004 Fig. 3: the calibrated, summed discrepancy map on its 2h × 2w
 * canvas) with the theoretical field of the unit boxed around the canvas centre, where calibration
 * put the unit.
 */
export function plotReceptiveField(map: number[][], theoretical: ReceptiveField, opts: ReceptiveFieldViewOptions = {}): Image {
  const H = map.length;
  const W = map[0]?.length ?? 0;
  if (H === 0 || W === 0) throw new InvalidInputError('plotReceptiveField: empty map');
  const s = opts.scale ?? 4;
  const img = renderValues(map.flat(), H, W, { colormap: 'viridis', signed: false, vmax: Math.max(1e-12, ...map.flat()), scale: s }).image;
  if (!theoretical.global) {
    const cy = H / 2;
    const cx = W / 2;
    const top = Math.round(cy - (theoretical.rows.size - 1) / 2);
    const left = Math.round(cx - (theoretical.cols.size - 1) / 2);
    drawBox(img, top * s, left * s, theoretical.rows.size * s, theoretical.cols.size * s, [255, 80, 80]);
  }
  return opts.title ? grid([img], { title: opts.title, labels: [`theoretical ${theoretical.rows.size}×${theoretical.cols.size} boxed`], fontSize: 10 }) : img;
}
