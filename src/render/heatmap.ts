/**
 * Attribution maps → pictures. This is the only place where maps are normalised: signed maps are
 * divided by max |v| (so 0 stays the colour map's centre, white for 'diverging'), unsigned maps show
 * magnitudes |v| divided by their maximum.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidInputError, OptionError } from '../core/errors.js';
import { type Colormap, type ColormapName, getColormap } from './colormap.js';
import { type Image, tensorToHWC, upscale } from './image.js';

/** How channels of a multi-channel attribution are combined into one map. */
export type ChannelReduce = 'sum' | 'mean' | 'abs-sum' | 'l2' | 'max-abs';

export interface RenderMapOptions {
  /** Default: 'diverging' when signed, 'sequential' when not. */
  colormap?: ColormapName | Colormap;
  /** Keep the sign (default: true, or the colour map's own kind when a colormap is given). */
  signed?: boolean;
  /** Normaliser: values are divided by it (default: max |v|, or the clipPercentile of |v|). Share
   * one vmax between maps to compare them on the same scale. */
  vmax?: number;
  /** Normalise by this percentile of |v| (e.g. 99.5) instead of the maximum; larger values saturate. */
  clipPercentile?: number;
  /** Channel reduction for HWC maps with C > 1 (default 'sum'). */
  reduce?: ChannelReduce;
  /** Integer nearest-neighbour upscale factor (default 1). */
  scale?: number;
  /** Which image of a batch [N, H, W, C] to render (default 0). */
  index?: number;
}

/** Sums (or otherwise reduces) the channels of HWC values into an H·W map. */
export function reduceChannels(values: Float32Array, h: number, w: number, c: number, how: ChannelReduce = 'sum'): Float32Array {
  if (c === 1) return values;
  const out = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let acc = 0;
    for (let k = 0; k < c; k++) {
      const v = values[p * c + k];
      if (how === 'sum' || how === 'mean') acc += v;
      else if (how === 'abs-sum') acc += Math.abs(v);
      else if (how === 'l2') acc += v * v;
      else if (how === 'max-abs') acc = Math.max(acc, Math.abs(v));
      else throw new OptionError(`reduce must be sum, mean, abs-sum, l2 or max-abs; got "${String(how)}"`);
    }
    out[p] = how === 'mean' ? acc / c : how === 'l2' ? Math.sqrt(acc) : acc;
  }
  return out;
}

/** The normaliser of a map: max |v| (or its clipPercentile), 1 when the map is all zeros. */
export function mapLimit(values: ArrayLike<number>, clipPercentile?: number): number {
  let limit = 0;
  if (clipPercentile !== undefined) {
    if (!(clipPercentile > 0 && clipPercentile <= 100)) {
      throw new OptionError(`clipPercentile must be in (0, 100]; got ${clipPercentile}`);
    }
    const abs = Float32Array.from(values, (v) => Math.abs(v)).sort();
    limit = abs[Math.min(abs.length - 1, Math.max(0, Math.ceil((clipPercentile / 100) * abs.length) - 1))] ?? 0;
  } else {
    for (let i = 0; i < values.length; i++) {
      const a = Math.abs(values[i]);
      if (a > limit) limit = a;
    }
  }
  return limit > 0 && Number.isFinite(limit) ? limit : 1;
}

function checkFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new InvalidInputError(`${what}: the map holds ${values[i]} at element ${i}; expected finite values`);
  }
}

/**
 * Renders an H·W array of values. Returns the image and the normaliser used (for a colour bar).
 */
export function renderValues(values: ArrayLike<number>, h: number, w: number, opts: RenderMapOptions = {}): { image: Image; vmax: number } {
  if (values.length !== h * w) throw new InvalidInputError(`renderValues: ${values.length} values for a ${h}×${w} map`);
  checkFinite(values, 'renderMap');
  const cmap = getColormap(opts.colormap ?? (opts.signed === false ? 'sequential' : 'diverging'));
  const signed = opts.signed ?? (opts.colormap !== undefined ? cmap.signed : true);
  if (opts.vmax !== undefined && !(opts.vmax > 0)) throw new OptionError(`vmax must be > 0; got ${opts.vmax}`);
  const vmax = opts.vmax ?? mapLimit(values, opts.clipPercentile);
  const data = new Uint8ClampedArray(h * w * 4);
  for (let p = 0; p < h * w; p++) {
    let t = signed ? values[p] / vmax : Math.abs(values[p]) / vmax;
    // a signed value on an unsigned colour map: −1..1 → 0..1
    if (signed && !cmap.signed) t = (t + 1) / 2;
    const [r, g, b] = cmap(t);
    data[4 * p] = r;
    data[4 * p + 1] = g;
    data[4 * p + 2] = b;
    data[4 * p + 3] = 255;
  }
  return { image: upscale({ width: w, height: h, data }, opts.scale ?? 1), vmax };
}

/**
 * Renders an attribution map (tensor [H, W], [H, W, C], [1, H, W, C], or one image of a batch) as a
 * colour image. Channels are summed (opts.reduce) first; see RenderMapOptions for normalisation.
 */
export function renderMap(map: tf.Tensor, opts: RenderMapOptions = {}): Image {
  const { values, h, w, c } = tensorToHWC(map, 'renderMap', opts.index ?? 0);
  return renderValues(reduceChannels(values, h, w, c, opts.reduce), h, w, opts).image;
}

export interface RenderImageOptions {
  /** Value range shown black..white (default [0, 1]); 'auto' uses the image's own min and max. */
  range?: [number, number] | 'auto';
  /** Integer nearest-neighbour upscale factor (default 1). */
  scale?: number;
  /** Which image of a batch to render (default 0). */
  index?: number;
}

/** Renders an input image (1 channel: grey, 3 channels: RGB) as an Image. */
export function renderImage(x: tf.Tensor, opts: RenderImageOptions = {}): Image {
  const { values, h, w, c } = tensorToHWC(x, 'renderImage', opts.index ?? 0);
  if (c !== 1 && c !== 3) throw new InvalidInputError(`renderImage: expected 1 or 3 channels; got ${c}`);
  let lo = 0;
  let hi = 1;
  if (opts.range === 'auto') {
    lo = Infinity;
    hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi > lo)) hi = lo + 1;
  } else if (opts.range) {
    [lo, hi] = opts.range;
  }
  const k = 255 / (hi - lo);
  const data = new Uint8ClampedArray(h * w * 4);
  for (let p = 0; p < h * w; p++) {
    for (let ch = 0; ch < 3; ch++) data[4 * p + ch] = Math.round((values[p * c + (c === 3 ? ch : 0)] - lo) * k);
    data[4 * p + 3] = 255;
  }
  return upscale({ width: w, height: h, data }, opts.scale ?? 1);
}

/** True for a render Image ({width, height, data: Uint8ClampedArray}), false for a tensor. */
export function isImage(x: unknown): x is Image {
  return typeof x === 'object' && x !== null && 'width' in x && 'height' in x && (x as Image).data instanceof Uint8ClampedArray;
}

export interface OverlayOptions extends RenderMapOptions {
  /** Opacity of the heat map (default 0.6). */
  alpha?: number;
  /**
   * 'weighted' (default): each pixel's opacity is alpha·|normalised value|, so where the map is 0
   * the input shows through unchanged. 'blend': constant opacity alpha everywhere.
   */
  mode?: 'weighted' | 'blend';
  /** Value range of the input (default [0, 1]). */
  inputRange?: [number, number] | 'auto';
  /** Wash the colour out of the input before drawing the map over it: 0 (default) keeps it, 1 makes it grey. */
  desaturate?: number;
}

/** The image with its colour washed out by `amount` (0: unchanged, 1: Rec. 601 grey). */
export function desaturate(image: Image, amount = 1): Image {
  if (!(amount >= 0 && amount <= 1)) throw new OptionError(`desaturate: amount must be in [0, 1]; got ${amount}`);
  const out = new Uint8ClampedArray(image.data.length);
  for (let p = 0; p < image.width * image.height; p++) {
    const r = image.data[4 * p];
    const g = image.data[4 * p + 1];
    const b = image.data[4 * p + 2];
    const y = 0.299 * r + 0.587 * g + 0.114 * b;
    out[4 * p] = Math.round(r + amount * (y - r));
    out[4 * p + 1] = Math.round(g + amount * (y - g));
    out[4 * p + 2] = Math.round(b + amount * (y - b));
    out[4 * p + 3] = image.data[4 * p + 3];
  }
  return { width: image.width, height: image.height, data: out };
}

/**
 * The map drawn over the (greyscale or RGB) input. A map of a different size from the input is
 * resized bilinearly to it first (e.g. a Grad-CAM map of a conv layer).
 */
export function overlay(input: tf.Tensor | Image, map: tf.Tensor, opts: OverlayOptions = {}): Image {
  let base = isImage(input) ? input : renderImage(input as tf.Tensor, { range: opts.inputRange, index: opts.index });
  if (opts.desaturate) base = desaturate(base, opts.desaturate);
  const alpha = opts.alpha ?? 0.6;
  if (!(alpha >= 0 && alpha <= 1)) throw new OptionError(`overlay: alpha must be in [0, 1]; got ${alpha}`);
  const hwc = tensorToHWC(map, 'overlay', opts.index ?? 0);
  let { h, w } = hwc;
  let flat = reduceChannels(hwc.values, h, w, hwc.c, opts.reduce);
  if (h !== base.height || w !== base.width) {
    const resized = tf.tidy(() =>
      tf.image.resizeBilinear(tf.tensor3d(flat, [h, w, 1]), [base.height, base.width], true),
    );
    flat = Float32Array.from(resized.dataSync());
    resized.dispose();
    h = base.height;
    w = base.width;
  }
  const { image: heat, vmax } = renderValues(flat, h, w, { ...opts, scale: 1 });
  const out = new Uint8ClampedArray(base.data.length);
  const weighted = (opts.mode ?? 'weighted') === 'weighted';
  for (let p = 0; p < h * w; p++) {
    const a = weighted ? alpha * Math.min(1, Math.abs(flat[p]) / vmax) : alpha;
    for (let ch = 0; ch < 3; ch++) out[4 * p + ch] = Math.round((1 - a) * base.data[4 * p + ch] + a * heat.data[4 * p + ch]);
    out[4 * p + 3] = 255;
  }
  return upscale({ width: w, height: h, data: out }, opts.scale ?? 1);
}
