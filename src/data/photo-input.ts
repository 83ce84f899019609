/**
 * A decoded photo of any size → the model's input, with the model's preprocessing policy
 * (core/preprocessing.ts: resize/crop, value range, channel order), drawn on a 2D canvas the caller
 * supplies. No file access and no canvas package: the browser passes OffscreenCanvas or <canvas>
 * (`photoToInputInPage` does that for it), so a page applies the same geometry as Node's
 * loadPhoto (data/photo.ts, @napi-rs/canvas).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ImageLoadError } from '../core/errors.js';
import { photoGeometry, type PhotoInfo, type PreprocessingSpec } from '../core/preprocessing.js';
import { rawToTensor, type RawImage } from './pixels.js';

/** The part of CanvasRenderingContext2D this module uses (browser and @napi-rs/canvas alike). */
export interface Context2DLike {
  fillStyle: unknown;
  imageSmoothingEnabled: boolean;
  imageSmoothingQuality: 'low' | 'medium' | 'high';
  fillRect(x: number, y: number, w: number, h: number): void;
  drawImage(image: never, dx: number, dy: number, dw: number, dh: number): void;
  getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
}

/** A canvas of the given size with a 2D context. */
export type CanvasFactory = (width: number, height: number) => { getContext(kind: '2d'): unknown };

/** Anything drawImage accepts that knows its size (ImageBitmap, HTMLImageElement, a canvas). */
export interface DrawableSource {
  width: number;
  height: number;
}

/** What the input is made for: a classifier (its input shape and preprocessing) or both given directly. */
export interface PhotoInputTarget {
  inputShape: readonly number[];
  preprocessing?: PreprocessingSpec;
}

function context(create: CanvasFactory, w: number, h: number): Context2DLike {
  const ctx = create(w, h).getContext('2d') as Context2DLike | null;
  if (!ctx) throw new ImageLoadError(`could not get a 2D context for a ${w}×${h} canvas`);
  return ctx;
}

/**
 * The model input ([1, h, w, c] in the model's range and channel order) and the geometry back to
 * the photo. Pixels outside the photo (pad policy) get padValue.
 */
export function photoToInputOnCanvas(source: DrawableSource, target: PhotoInputTarget, createCanvas: CanvasFactory): { input: tf.Tensor4D; info: PhotoInfo } {
  const [h, w, c] = target.inputShape;
  const spec = target.preprocessing ?? {};
  if (c !== 1 && c !== 3) throw new ImageLoadError(`expected a model with 1 or 3 input channels; got ${c}`);
  if (!(source.width > 0 && source.height > 0)) throw new ImageLoadError(`expected a photo with pixels; got ${source.width}×${source.height}`);
  const info = photoGeometry(source.width, source.height, h, w, spec);
  const [lo, hi] = info.range;
  const ctx = context(createCanvas, w, h);
  const fill = spec.padValue ?? lo;
  const grey = Math.round(Math.max(0, Math.min(1, (fill - lo) / (hi - lo))) * 255);
  ctx.fillStyle = `rgb(${grey}, ${grey}, ${grey})`;
  ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  // the photo rectangle in input pixel coordinates: photo point P ↦ (P − offset) / scale
  ctx.drawImage(source as never, -info.offsetX / info.scaleX, -info.offsetY / info.scaleY, source.width / info.scaleX, source.height / info.scaleY);
  const d = ctx.getImageData(0, 0, w, h);
  const pixels: RawImage = { width: w, height: h, data: new Uint8ClampedArray(d.data.buffer, d.data.byteOffset, d.data.length) };
  const input = tf.tidy(() => {
    let t: tf.Tensor3D = rawToTensor(pixels, c as 1 | 3, [lo, hi]);
    if (info.channelOrder === 'bgr' && c === 3) t = tf.reverse(t, -1);
    return tf.expandDims(t, 0) as tf.Tensor4D;
  });
  return { input, info };
}

/**
 * The photo at most `maxSide` pixels on its longer side (RGBA) and its PhotoInfo rescaled to that
 * size, for drawing maps over the photo (mapToPhoto, overlay) without resampling a 12-megapixel
 * original for every map.
 */
export function photoPreview(source: DrawableSource, info: PhotoInfo, maxSide: number, createCanvas: CanvasFactory): { raw: RawImage; info: PhotoInfo } {
  const f = Math.min(1, maxSide / Math.max(source.width, source.height));
  const width = Math.max(1, Math.round(source.width * f));
  const height = Math.max(1, Math.round(source.height * f));
  const ctx = context(createCanvas, width, height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source as never, 0, 0, width, height);
  const d = ctx.getImageData(0, 0, width, height);
  const fx = width / source.width;
  const fy = height / source.height;
  return {
    raw: { width, height, data: new Uint8ClampedArray(d.data) },
    info: { ...info, width, height, scaleX: info.scaleX * fx, scaleY: info.scaleY * fy, offsetX: info.offsetX * fx, offsetY: info.offsetY * fy },
  };
}

/** A page's canvas: OffscreenCanvas where there is one, else a detached <canvas>. */
export const pageCanvas: CanvasFactory = (width, height) => {
  const g = globalThis as unknown as { OffscreenCanvas?: new (w: number, h: number) => { getContext(k: '2d'): unknown }; document?: { createElement(t: 'canvas'): { width: number; height: number; getContext(k: '2d'): unknown } } };
  if (g.OffscreenCanvas) return new g.OffscreenCanvas(width, height);
  if (!g.document) throw new ImageLoadError('no canvas here: pass a CanvasFactory (e.g. @napi-rs/canvas createCanvas)');
  const c = g.document.createElement('canvas');
  c.width = width;
  c.height = height;
  return c;
};

/**
 * Decode an image file or blob (PNG, JPEG, WebP, … anything the browser decodes) at its own size,
 * without colour-space conversion, so its pixel values are the file's (as Node's decoder gives them).
 * Throws ImageLoadError naming the file when it is not an image.
 */
export async function decodePhoto(blob: Blob & { name?: string }): Promise<ImageBitmap> {
  const g = globalThis as unknown as { createImageBitmap?: (b: Blob, o?: ImageBitmapOptions) => Promise<ImageBitmap> };
  if (!g.createImageBitmap) throw new ImageLoadError('decodePhoto needs createImageBitmap (a browser or worker)');
  try {
    return await g.createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new ImageLoadError(`expected a PNG/JPEG image in ${blob.name ?? 'the file'}; could not decode it: ${(e as Error).message}`);
  }
}

/**
 * In a page: a decoded photo as the model's input plus a preview (longer side ≤ maxSide, default
 * 384) with its geometry, for overlays on the photo.
 *
 * @example
 * const bitmap = await decodePhoto(fileInput.files[0]);
 * const { input, info, preview } = photoToInputInPage(bitmap, classifier);
 */
export function photoToInputInPage(source: DrawableSource, target: PhotoInputTarget, maxSide = 384): { input: tf.Tensor4D; info: PhotoInfo; preview: { raw: RawImage; info: PhotoInfo } } {
  const { input, info } = photoToInputOnCanvas(source, target, pageCanvas);
  try {
    return { input, info, preview: photoPreview(source, info, maxSide, pageCanvas) };
  } catch (e) {
    input.dispose();
    throw e;
  }
}
