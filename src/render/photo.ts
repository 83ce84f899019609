/**
 * Explanations drawn on the photo they came from (any size, in colour), and the top-k classes.
 * Builds on overlay (heatmap.ts) and grid (grid.ts): the map is first mapped from the model's input
 * space back onto the photo (mapToPhoto: undoing the crop/resize and a BGR channel swap).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createCanvas } from '@napi-rs/canvas';
import { OptionError } from '../core/errors.js';
import { mapToPhoto, type PhotoInfo } from '../core/preprocessing.js';
import { FONT_FAMILY } from './grid.js';
import { overlay, type OverlayOptions } from './heatmap.js';
import type { Image } from './image.js';

export interface PhotoOverlayOptions extends OverlayOptions {
  /** Longest side of the rendered photo in pixels (default 1024; larger photos are scaled down first). */
  maxSide?: number;
}

/** Smaller copy of a photo and its geometry (factor f ≤ 1). */
function shrink(raw: Image, info: PhotoInfo, maxSide: number): { raw: Image; info: PhotoInfo } {
  const f = Math.min(1, maxSide / Math.max(raw.width, raw.height));
  if (f >= 1) return { raw, info };
  const width = Math.max(1, Math.round(raw.width * f));
  const height = Math.max(1, Math.round(raw.height * f));
  const src = createCanvas(raw.width, raw.height);
  const sctx = src.getContext('2d');
  const d = sctx.createImageData(raw.width, raw.height);
  d.data.set(raw.data);
  sctx.putImageData(d, 0, 0);
  const dst = createCanvas(width, height);
  const ctx = dst.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(src, 0, 0, width, height);
  const out = ctx.getImageData(0, 0, width, height);
  const fx = width / raw.width;
  const fy = height / raw.height;
  return {
    raw: { width, height, data: new Uint8ClampedArray(out.data) },
    info: { ...info, width, height, scaleX: info.scaleX * fx, scaleY: info.scaleY * fy, offsetX: info.offsetX * fx, offsetY: info.offsetY * fy },
  };
}

/**
 * An attribution (model input space, [1, H, W, C] or [H, W, C]; a coarse Grad-CAM map works too)
 * drawn over the photo it explains: mapped back through the crop/resize, over the photo
 * (`desaturate: 1` for a grey photo, `alpha` for the map's opacity).
 *
 * @example
 * const { info, raw } = await loadPhoto('dog.jpg', c);
 * writePng('dog-gradcam.png', renderOnPhoto(raw, info, e.attribution, { alpha: 0.5, desaturate: 1 }));
 */
export function renderOnPhoto(raw: Image, info: PhotoInfo, attribution: tf.Tensor, opts: PhotoOverlayOptions = {}): Image {
  if (raw.width !== info.width || raw.height !== info.height) {
    throw new OptionError(`renderOnPhoto: the photo is ${raw.width}×${raw.height} but its PhotoInfo says ${info.width}×${info.height}`);
  }
  const small = shrink(raw, info, opts.maxSide ?? 1024);
  const mapped = mapToPhoto(attribution, small.info, opts.index ?? 0);
  try {
    return overlay(small.raw, mapped, { ...opts, index: 0 });
  } finally {
    mapped.dispose();
  }
}

export interface TopKOptions {
  /** How many classes (default 5). */
  k?: number;
  /** Width of the picture in pixels (default 360). */
  width?: number;
  /** Font size (default 13). */
  fontSize?: number;
  /** A class to mark (e.g. the explained target); listed as an extra row when it is not in the top k. */
  highlight?: number;
  title?: string;
}

/** The k most probable classes and their probabilities, from a row of probabilities (sorted, ties to the lower index). */
export function topK(probabilities: ArrayLike<number>, k = 5): Array<{ index: number; probability: number }> {
  const order = Array.from(probabilities, (p, i) => ({ index: i, probability: Number(p) }));
  order.sort((a, b) => b.probability - a.probability || a.index - b.index);
  return order.slice(0, Math.max(0, Math.min(k, order.length)));
}

/** A bar chart of the top-k classes with their probabilities (class names as labels). */
export function renderTopK(probabilities: ArrayLike<number>, classNames: string[], opts: TopKOptions = {}): Image {
  const k = opts.k ?? 5;
  if (!Number.isInteger(k) || k < 1) throw new OptionError(`renderTopK: k must be a positive integer; got ${k}`);
  const rows = topK(probabilities, k);
  // the marked class (an explained target outside the top k) gets its own last row
  const h = opts.highlight;
  if (h !== undefined && h >= 0 && h < probabilities.length && !rows.some((r) => r.index === h)) rows.push({ index: h, probability: Number(probabilities[h]) });
  const fs = opts.fontSize ?? 13;
  const width = opts.width ?? 360;
  const rowH = Math.ceil(fs * 1.9);
  const pad = 6;
  const titleH = opts.title ? Math.ceil(fs * 1.6) : 0;
  const height = titleH + pad * 2 + rows.length * rowH;
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = 'white';
  ctx.fillRect(0, 0, width, height);
  ctx.textBaseline = 'middle';
  if (opts.title) {
    ctx.fillStyle = '#222';
    ctx.font = `bold ${fs}px ${FONT_FAMILY}`;
    ctx.fillText(opts.title, pad, pad + titleH / 2);
  }
  ctx.font = `${fs}px ${FONT_FAMILY}`;
  const labelW = Math.floor(width * 0.45);
  const barW = width - labelW - 3 * pad - Math.ceil(ctx.measureText('100.0%').width);
  rows.forEach((r, i) => {
    const y = titleH + pad + i * rowH;
    let name = classNames[r.index] ?? String(r.index);
    while (name.length > 1 && ctx.measureText(name).width > labelW) name = name.slice(0, -2) + '…';
    ctx.fillStyle = r.index === opts.highlight ? '#b00' : '#222';
    ctx.fillText(name, pad, y + rowH / 2);
    ctx.fillStyle = r.index === opts.highlight ? '#d04a3a' : '#4a78b5';
    ctx.fillRect(labelW + pad, y + rowH * 0.2, Math.max(1, Math.round(barW * Math.max(0, Math.min(1, r.probability)))), rowH * 0.6);
    ctx.fillStyle = '#222';
    ctx.fillText(`${(r.probability * 100).toFixed(1)}%`, labelW + 2 * pad + barW, y + rowH / 2);
  });
  const d = ctx.getImageData(0, 0, width, height);
  return { width, height, data: new Uint8ClampedArray(d.data) };
}
