/**
 * A model's preprocessing: how a photo of any size becomes the model's input, and how a map in the
 * model's input space goes back onto the photo.
 *
 * The description lives in a model folder's `glasswing.json` (or is passed at load time):
 *
 * ```json
 * { "inputSize": [224, 224], "range": [0, 255], "mean": [123.68, 116.78, 103.94], "std": [58.4, 57.1, 57.4],
 *   "channelOrder": "rgb", "resize": "center-crop", "cropFraction": 0.875,
 *   "labels": "labels.txt" }
 * ```
 *
 * Where each step happens, and why:
 * - resize/crop and the value range are applied when a photo is loaded (data/photo.ts): the
 *   classifier's input is the photo's pixels in `range` (its domain low/high), so baselines (black =
 *   low), clipping, z^B bounds and LIME masks work in pixel units;
 * - per-channel mean/std are applied inside the classifier, as its first node `preprocess` (an
 *   element-wise affine node of kind 'batchnorm': (x − mean)/std is exactly a BatchNorm with
 *   variance std²), so attributions are still about pixels, not about normalised values;
 * - a BGR model gets its channels swapped when the photo is loaded; mapToPhoto swaps them back.
 *
 * This module holds no file access (browser-safe); reading glasswing.json and photos is in
 * models/load.ts and data/photo.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidInputError, ModelLoadError } from './errors.js';

/** How a photo is brought to the model's input size. */
export type ResizePolicy =
  /** scale the shorter side to size/cropFraction, then cut the centre (ImageNet evaluation) */
  | 'center-crop'
  /** scale each side independently to the input size (aspect ratio not kept) */
  | 'stretch'
  /** scale the longer side to the input size and fill the rest with padValue (letterbox) */
  | 'pad';

export interface PreprocessingSpec {
  /** [height, width] of the model input; default: the model's own input shape. */
  inputSize?: [number, number];
  /** Values photo pixels 0..255 map onto, linearly: [0, 1] (default), [0, 255] or [−1, 1]. */
  range?: [number, number];
  /** Per-channel mean subtracted inside the model (in `range` units, model channel order). */
  mean?: number[];
  /** Per-channel standard deviation divided by inside the model (in `range` units). */
  std?: number[];
  /** Channel order the model expects; default 'rgb'. */
  channelOrder?: 'rgb' | 'bgr';
  /** default 'center-crop' */
  resize?: ResizePolicy;
  /** center-crop: the crop covers this fraction of the resized shorter side (0.875 for Inception-style evaluation); default 1 */
  cropFraction?: number;
  /** pad: the fill value, in `range` units; default range[0] */
  padValue?: number;
}

/** glasswing.json: preprocessing plus class names (inline or a labels file, one name a line, relative to the folder). */
export interface GlasswingJson extends PreprocessingSpec {
  name?: string;
  classNames?: string[];
  labels?: string;
  /** Graph models with several outputs: the node that gives the class scores. */
  output?: string;
  /** Skip this many leading label lines (e.g. 1 for TF-Hub's "background" row when the model has 1000 classes). */
  labelsOffset?: number;
}

const RANGES: Record<string, [number, number]> = { '0-1': [0, 1], '0-255': [0, 255], '-1-1': [-1, 1] };

function numbers(v: unknown, what: string, where: string, len?: number): number[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isFinite(x)) || (len != null && v.length !== len)) {
    throw new ModelLoadError(`expected ${what} in ${where} to be ${len != null ? `${len} numbers` : 'a list of numbers'}; got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/**
 * Check and normalise a glasswing.json object (or load-time options). Every field is optional;
 * unknown fields are an error (a misspelt "mean" must not be ignored silently).
 */
export function parseGlasswingJson(raw: unknown, where = 'glasswing.json'): GlasswingJson {
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) throw new ModelLoadError(`expected a JSON object in ${where}; got ${JSON.stringify(raw)?.slice(0, 60)}`);
  const o = raw as Record<string, unknown>;
  const known = ['name', 'classNames', 'labels', 'labelsOffset', 'output', 'inputSize', 'range', 'mean', 'std', 'channelOrder', 'resize', 'cropFraction', 'padValue', '$comment'];
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length) throw new ModelLoadError(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} in ${where}; known: ${known.slice(0, -1).join(', ')}`);
  const out: GlasswingJson = {};
  if (o.name != null) out.name = String(o.name);
  if (o.classNames != null) {
    if (!Array.isArray(o.classNames) || o.classNames.some((c) => typeof c !== 'string')) throw new ModelLoadError(`expected classNames in ${where} to be a list of strings; got ${JSON.stringify(o.classNames)?.slice(0, 60)}`);
    out.classNames = o.classNames as string[];
  }
  if (o.labels != null) out.labels = String(o.labels);
  if (o.labelsOffset != null) out.labelsOffset = numbers([o.labelsOffset], 'labelsOffset', where)[0];
  if (o.output != null) out.output = String(o.output);
  if (o.inputSize != null) {
    const s = typeof o.inputSize === 'number' ? [o.inputSize, o.inputSize] : numbers(o.inputSize, 'inputSize', where, 2);
    if (s.some((d) => !Number.isInteger(d) || d < 1)) throw new ModelLoadError(`expected inputSize in ${where} to be [height, width] of positive integers; got ${JSON.stringify(o.inputSize)}`);
    out.inputSize = [s[0], s[1]];
  }
  if (o.range != null) {
    const r = typeof o.range === 'string' ? RANGES[o.range.replace(/[\s[\]]/g, '').replace(',', '-')] : numbers(o.range, 'range', where, 2);
    if (!r || !(r[1] > r[0])) throw new ModelLoadError(`expected range in ${where} to be [low, high] with low < high (e.g. [0, 1], [0, 255], [-1, 1]); got ${JSON.stringify(o.range)}`);
    out.range = [r[0], r[1]];
  }
  if (o.mean != null) out.mean = typeof o.mean === 'number' ? [o.mean] : numbers(o.mean, 'mean', where);
  if (o.std != null) {
    out.std = typeof o.std === 'number' ? [o.std] : numbers(o.std, 'std', where);
    if (out.std.some((s) => !(s > 0))) throw new ModelLoadError(`expected every std in ${where} to be > 0; got ${JSON.stringify(o.std)}`);
  }
  if (o.channelOrder != null) {
    const c = String(o.channelOrder).toLowerCase();
    if (c !== 'rgb' && c !== 'bgr') throw new ModelLoadError(`expected channelOrder "rgb" or "bgr" in ${where}; got ${JSON.stringify(o.channelOrder)}`);
    out.channelOrder = c;
  }
  if (o.resize != null) {
    const r = String(o.resize);
    const alias: Record<string, ResizePolicy> = { 'center-crop': 'center-crop', 'resize-shorter-then-center-crop': 'center-crop', crop: 'center-crop', stretch: 'stretch', pad: 'pad', letterbox: 'pad' };
    if (!alias[r]) throw new ModelLoadError(`expected resize "center-crop", "stretch" or "pad" in ${where}; got ${JSON.stringify(o.resize)}`);
    out.resize = alias[r];
  }
  if (o.cropFraction != null) {
    const f = numbers([o.cropFraction], 'cropFraction', where)[0];
    if (!(f > 0 && f <= 1)) throw new ModelLoadError(`expected cropFraction in (0, 1] in ${where}; got ${f}`);
    out.cropFraction = f;
  }
  if (o.padValue != null) out.padValue = numbers([o.padValue], 'padValue', where)[0];
  return out;
}

/**
 * The preprocessing fields of a glasswing.json (class-name fields dropped); undefined when it gives
 * none (a model without a preprocessing description keeps the plain "resize to the input" path).
 */
export function preprocessingOf(g: GlasswingJson): PreprocessingSpec | undefined {
  const { inputSize, range, mean, std, channelOrder, resize, cropFraction, padValue } = g;
  const p: PreprocessingSpec = { inputSize, range, mean, std, channelOrder, resize, cropFraction, padValue };
  for (const k of Object.keys(p) as Array<keyof PreprocessingSpec>) if (p[k] === undefined) delete p[k];
  return Object.keys(p).length ? p : undefined;
}

/**
 * Where the model input came from in the photo: the input pixel (x, y) shows photo point
 * (x·scaleX + offsetX, y·scaleY + offsetY) (pixel corners; pad leaves input pixels outside the photo).
 */
export interface PhotoInfo {
  /** Photo size in pixels. */
  width: number;
  height: number;
  /** Model input size. */
  inputWidth: number;
  inputHeight: number;
  /** Photo pixels per input pixel, and the photo coordinate of the input's top-left corner. */
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
  policy: ResizePolicy;
  channelOrder: 'rgb' | 'bgr';
  /** Value range of the model input. */
  range: [number, number];
  /** The file it was read from, when there is one. */
  file?: string;
}

/** The photo → input geometry of a policy (no pixels involved). */
export function photoGeometry(width: number, height: number, inputHeight: number, inputWidth: number, spec: PreprocessingSpec = {}): PhotoInfo {
  const policy = spec.resize ?? 'center-crop';
  let scaleX: number;
  let scaleY: number;
  let offsetX = 0;
  let offsetY = 0;
  if (policy === 'stretch') {
    scaleX = width / inputWidth;
    scaleY = height / inputHeight;
  } else if (policy === 'pad') {
    // the whole photo fits: photo px per input px is the larger ratio
    const s = Math.max(width / inputWidth, height / inputHeight);
    scaleX = scaleY = s;
    offsetX = (width - inputWidth * s) / 2;
    offsetY = (height - inputHeight * s) / 2;
  } else {
    // shorter side scaled to size / cropFraction, centre cut of the input size
    const f = spec.cropFraction ?? 1;
    const s = Math.min(width / inputWidth, height / inputHeight) * f;
    scaleX = scaleY = s;
    offsetX = (width - inputWidth * s) / 2;
    offsetY = (height - inputHeight * s) / 2;
  }
  return {
    width, height, inputWidth, inputHeight, scaleX, scaleY, offsetX, offsetY, policy,
    channelOrder: spec.channelOrder ?? 'rgb', range: spec.range ?? [0, 1],
  };
}

/**
 * Resample an [inputHeight, inputWidth, c] map (values, row-major) onto the photo's pixel grid
 * (bilinear, pixel centres), giving [height, width, c]; photo pixels the input did not cover
 * (outside a center crop) get 0 — "no evidence", which overlays leave uncoloured. Channels of a
 * BGR model are swapped back to RGB.
 */
export function resampleToPhoto(values: Float32Array, c: number, info: PhotoInfo): Float32Array {
  const { width, height, inputWidth: iw, inputHeight: ih } = info;
  if (values.length !== iw * ih * c) throw new ModelLoadError(`expected a map of ${ih}×${iw}×${c} values for this photo; got ${values.length} values`);
  const out = new Float32Array(width * height * c);
  const swap = info.channelOrder === 'bgr' && c === 3;
  for (let py = 0; py < height; py++) {
    const fy = (py + 0.5 - info.offsetY) / info.scaleY - 0.5;
    for (let px = 0; px < width; px++) {
      const fx = (px + 0.5 - info.offsetX) / info.scaleX - 0.5;
      const o = (py * width + px) * c;
      if (fx < -0.5 || fy < -0.5 || fx > iw - 0.5 || fy > ih - 0.5) {
        continue; // stays 0
      }
      const x0 = Math.max(0, Math.min(iw - 1, Math.floor(fx)));
      const y0 = Math.max(0, Math.min(ih - 1, Math.floor(fy)));
      const x1 = Math.min(iw - 1, x0 + 1);
      const y1 = Math.min(ih - 1, y0 + 1);
      const ax = Math.max(0, Math.min(1, fx - x0));
      const ay = Math.max(0, Math.min(1, fy - y0));
      for (let k = 0; k < c; k++) {
        const src = swap ? 2 - k : k;
        const v00 = values[(y0 * iw + x0) * c + src];
        const v01 = values[(y0 * iw + x1) * c + src];
        const v10 = values[(y1 * iw + x0) * c + src];
        const v11 = values[(y1 * iw + x1) * c + src];
        out[o + k] = (1 - ay) * ((1 - ax) * v00 + ax * v01) + ay * ((1 - ax) * v10 + ax * v11);
      }
    }
  }
  return out;
}

/**
 * An explanation in the model's input space ([H, W, C], [1, H, W, C] or one image of a batch)
 * mapped back onto the photo it came from: [photo height, photo width, C] (bilinear; 0 where the
 * input did not cover the photo; BGR channels back in RGB order). Sums are not preserved — this is
 * for display and for reading values at photo coordinates.
 */
export function mapToPhoto(attribution: tf.Tensor, info: PhotoInfo, index = 0): tf.Tensor3D {
  const a = attribution;
  if (a.rank !== 3 && a.rank !== 4) throw new InvalidInputError(`mapToPhoto: expected a map [H, W, C] or [N, H, W, C]; got shape [${a.shape.join(', ')}]`);
  const hwc = a.rank === 4 ? a.shape.slice(1) : a.shape;
  if (a.rank === 4 && (index < 0 || index >= a.shape[0])) throw new InvalidInputError(`mapToPhoto: index ${index} outside the batch of ${a.shape[0]}`);
  let [h, w] = hwc;
  const c = hwc[2];
  let values: Float32Array;
  const one = a.rank === 4 ? tf.tidy(() => tf.squeeze(tf.slice(a, [index, 0, 0, 0], [1, -1, -1, -1]), [0])) : a;
  if (h !== info.inputHeight || w !== info.inputWidth) {
    // a coarse map (Grad-CAM of a conv layer): to the input size first, as overlays do
    const r = tf.tidy(() => tf.image.resizeBilinear(one as tf.Tensor3D, [info.inputHeight, info.inputWidth], true));
    values = r.dataSync() as Float32Array;
    r.dispose();
    h = info.inputHeight;
    w = info.inputWidth;
  } else {
    values = Float32Array.from(one.dataSync());
  }
  if (one !== a) one.dispose();
  return tf.tensor3d(resampleToPhoto(values, c, info), [info.height, info.width, c]);
}
