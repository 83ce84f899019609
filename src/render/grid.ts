/** Labelled image grids drawn with @napi-rs/canvas (text included). */
import { createCanvas, ImageData, type SKRSContext2D } from '@napi-rs/canvas';
import { OptionError } from '../core/errors.js';
import { type Colormap, type ColormapName, getColormap } from './colormap.js';
import { type Image, upscale } from './image.js';

export const FONT_FAMILY = 'DejaVu Sans, Helvetica, Arial, sans-serif';

export interface GridOptions {
  /** One label per tile ('\n' splits lines); undefined or '' for none. */
  labels?: Array<string | undefined>;
  /** Columns (default: all tiles in one row up to 8, else ceil(√n)). */
  cols?: number;
  /** Integer nearest-neighbour upscale of every tile (default 1). */
  scale?: number;
  /** Space around tiles in pixels (default 4). */
  padding?: number;
  /** A title line over the grid. */
  title?: string;
  /** Headers left of each row / above each column. */
  rowLabels?: string[];
  colLabels?: string[];
  /** Where tile labels go (default 'below'). */
  labelPosition?: 'below' | 'above';
  /** Label font size in pixels (default 12; the title is 1.25× that). */
  fontSize?: number;
  /** CSS colours (defaults white and #222). */
  background?: string;
  textColor?: string;
  /** Labels wider than this many pixels are cut with "…" (default: 3 × tile width, at least 60). */
  maxLabelWidth?: number;
}

function fitText(ctx: SKRSContext2D, text: string, max: number): string {
  if (ctx.measureText(text).width <= max) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(s + '…').width > max) s = s.slice(0, -1);
  return s + '…';
}

/** Lays images out in a grid with optional labels, headers and a title; returns one Image. */
export function grid(images: Image[], opts: GridOptions = {}): Image {
  const n = images.length;
  if (n === 0) throw new OptionError('grid: no images given');
  const scale = opts.scale ?? 1;
  if (!Number.isInteger(scale) || scale < 1) throw new OptionError(`grid: scale must be a positive integer; got ${scale}`);
  const cols = opts.cols ?? (n <= 8 ? n : Math.ceil(Math.sqrt(n)));
  if (!Number.isInteger(cols) || cols < 1) throw new OptionError(`grid: cols must be a positive integer; got ${cols}`);
  if (opts.labels && opts.labels.length > n) throw new OptionError(`grid: ${opts.labels.length} labels for ${n} images`);
  const rows = Math.ceil(n / cols);
  const pad = opts.padding ?? 4;
  const fs = opts.fontSize ?? 12;
  const lineH = Math.ceil(fs * 1.25);
  const tiles = images.map((im) => upscale(im, scale));
  const tileW = Math.max(...tiles.map((t) => t.width));
  const tileH = Math.max(...tiles.map((t) => t.height));

  // Measure text on a scratch canvas.
  const scratch = createCanvas(1, 1).getContext('2d');
  scratch.font = `${fs}px ${FONT_FAMILY}`;
  const maxLabel = opts.maxLabelWidth ?? Math.max(60, 3 * tileW);
  const labelLines = (opts.labels ?? []).map((l) => (l ? l.split('\n').map((s) => fitText(scratch, s, maxLabel)) : []));
  const labelLineCount = Math.max(0, ...labelLines.map((l) => l.length));
  const labelW = Math.max(0, ...labelLines.flat().map((s) => Math.ceil(scratch.measureText(s).width)));
  const colHeaders = (opts.colLabels ?? []).map((s) => fitText(scratch, s, maxLabel));
  const colHeaderW = Math.max(0, ...colHeaders.map((s) => Math.ceil(scratch.measureText(s).width)));
  const cellW = Math.max(tileW, labelW, colHeaderW);
  const labelBlock = labelLineCount * lineH;
  const cellH = tileH + labelBlock;
  const rowHeaderW = opts.rowLabels?.length ? Math.max(...opts.rowLabels.map((s) => Math.ceil(scratch.measureText(s).width))) + pad : 0;
  const colHeaderH = colHeaders.length ? lineH + pad : 0;
  const titleFs = Math.round(fs * 1.25);
  const titleH = opts.title ? Math.ceil(titleFs * 1.4) + pad : 0;

  const width = rowHeaderW + pad + cols * (cellW + pad);
  const height = titleH + colHeaderH + pad + rows * (cellH + pad);
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = opts.background ?? 'white';
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = opts.textColor ?? '#222';
  ctx.textBaseline = 'top';

  if (opts.title) {
    ctx.font = `bold ${titleFs}px ${FONT_FAMILY}`;
    ctx.textAlign = 'center';
    ctx.fillText(fitText(ctx, opts.title, width - 2 * pad), width / 2, pad);
  }
  ctx.font = `${fs}px ${FONT_FAMILY}`;
  const top = titleH + colHeaderH + pad;
  const left = rowHeaderW + pad;
  ctx.textAlign = 'center';
  colHeaders.forEach((s, c) => {
    if (c < cols) ctx.fillText(s, left + c * (cellW + pad) + cellW / 2, titleH + pad);
  });
  ctx.textAlign = 'right';
  (opts.rowLabels ?? []).forEach((s, r) => {
    if (r < rows) ctx.fillText(s, rowHeaderW, top + r * (cellH + pad) + (opts.labelPosition === 'above' ? labelBlock : 0) + tileH / 2 - fs / 2);
  });
  ctx.textAlign = 'center';
  tiles.forEach((t, i) => {
    const r = Math.floor(i / cols);
    const c = i % cols;
    const x0 = left + c * (cellW + pad);
    const y0 = top + r * (cellH + pad);
    const above = opts.labelPosition === 'above';
    const ty = y0 + (above ? labelBlock : 0) + Math.floor((tileH - t.height) / 2);
    const tx = x0 + Math.floor((cellW - t.width) / 2);
    ctx.putImageData(new ImageData(new Uint8ClampedArray(t.data), t.width, t.height), tx, ty);
    const lines = labelLines[i] ?? [];
    lines.forEach((s, k) => {
      const ly = above ? y0 + k * lineH : y0 + tileH + k * lineH + 1;
      ctx.fillText(s, x0 + cellW / 2, ly);
    });
  });
  const d = ctx.getImageData(0, 0, width, height);
  return { width, height, data: new Uint8ClampedArray(d.data) };
}

export interface ColorbarOptions {
  /** Bar length and thickness in pixels (default 160 × 12). */
  length?: number;
  thickness?: number;
  /** The value at the ends (the renderMap vmax); labels "−vmax", "0", "vmax" (signed) or "0", "vmax". */
  vmax?: number;
  label?: string;
  fontSize?: number;
}

/** A horizontal colour bar for a colour map, with end labels. */
export function colorbar(colormap: ColormapName | Colormap, opts: ColorbarOptions = {}): Image {
  const cmap = getColormap(colormap);
  const len = opts.length ?? 160;
  const th = opts.thickness ?? 12;
  const fs = opts.fontSize ?? 11;
  const pad = 4;
  const width = len + 2 * pad + 40;
  const height = th + 2 * pad + Math.ceil(fs * 1.3) * (opts.label ? 2 : 1);
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = 'white';
  ctx.fillRect(0, 0, width, height);
  const x0 = pad + 20;
  const lo = cmap.signed ? -1 : 0;
  for (let i = 0; i < len; i++) {
    const [r, g, b] = cmap(lo + ((1 - lo) * (i + 0.5)) / len);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x0 + i, pad, 1, th);
  }
  ctx.strokeStyle = '#888';
  ctx.strokeRect(x0 - 0.5, pad - 0.5, len + 1, th + 1);
  ctx.fillStyle = '#222';
  ctx.font = `${fs}px ${FONT_FAMILY}`;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'center';
  const v = opts.vmax;
  const fmt = (x: number) => (v === undefined ? String(x) : (x * v).toPrecision(2));
  const ty = pad + th + 2;
  ctx.fillText(fmt(lo), x0, ty);
  if (cmap.signed) ctx.fillText('0', x0 + len / 2, ty);
  ctx.fillText(fmt(1), x0 + len, ty);
  if (opts.label) ctx.fillText(opts.label, x0 + len / 2, ty + Math.ceil(fs * 1.3));
  const d = ctx.getImageData(0, 0, width, height);
  return { width, height, data: new Uint8ClampedArray(d.data) };
}
