/**
 * Plots as PNG: vega-lite specs compiled to vega, rendered to SVG by vega's headless view, and
 * rasterised by @napi-rs/canvas. Works offline: data is always inline, nothing is fetched, and
 * text uses locally installed fonts (DejaVu Sans, falling back to sans-serif).
 */
import { createCanvas, Image as CanvasImage } from '@napi-rs/canvas';
import { InvalidInputError, OptionError } from '../core/errors.js';
import { colormapRange } from './colormap.js';
import { FONT_FAMILY } from './grid.js';

// vega and vega-lite are ESM-only; loaded lazily so importing Glasswing stays cheap.
type VegaModule = typeof import('vega');
type VegaLiteModule = typeof import('vega-lite');
let modules: Promise<[VegaModule, VegaLiteModule]> | undefined;
function loadVega(): Promise<[VegaModule, VegaLiteModule]> {
  modules ??= Promise.all([import('vega'), import('vega-lite')]);
  return modules;
}

export interface PlotOptions {
  title?: string;
  /**
   * Size of the whole picture in CSS pixels, axes, legend and title included (default 480 × 300);
   * the PNG is (width·scale) × (height·scale). plotHeatmapMatrix sizes itself from its cells instead.
   */
  width?: number;
  height?: number;
  /** Pixel ratio of the PNG (default 1; 2 for sharper output). */
  scale?: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type VegaLiteSpec = Record<string, any>;

const BASE_CONFIG = {
  font: FONT_FAMILY,
  background: 'white',
  view: { stroke: '#ddd' },
  axis: { labelFont: FONT_FAMILY, titleFont: FONT_FAMILY },
  legend: { labelFont: FONT_FAMILY, titleFont: FONT_FAMILY },
  title: { font: FONT_FAMILY, fontSize: 14 },
};

/** Throws when a spec references external data (a `url` anywhere): plots render offline. */
function assertInline(node: unknown, where = 'spec'): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => assertInline(n, `${where}[${i}]`));
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'url' && typeof v === 'string') {
        throw new OptionError(`plots render offline; ${where}.url references "${v}" — pass data inline as {values: [...]}`);
      }
      if (k !== 'values') assertInline(v, `${where}.${k}`);
    }
  }
}

/** Compiles a vega-lite spec and renders it to an SVG string. */
export async function vegaLiteToSvg(spec: VegaLiteSpec, scale = 1): Promise<string> {
  assertInline(spec);
  const [vega, vl] = await loadVega();
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', ...spec, config: { ...BASE_CONFIG, ...(spec.config ?? {}) } };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const compiled = vl.compile(full as any).spec;
  const loader = vega.loader();
  // No network: refuse any URL the spec might reference.
  loader.load = async (uri: string) => {
    throw new OptionError(`plots render offline; the spec references "${uri}" — pass data inline`);
  };
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader });
  try {
    return await view.toSVG(scale);
  } finally {
    view.finalize();
  }
}

/** Rasterises an SVG string to PNG bytes. */
export function svgToPng(svg: string): Buffer {
  const img = new CanvasImage();
  img.onerror = () => undefined;
  img.src = Buffer.from(svg);
  if (!img.width || !img.height) throw new InvalidInputError('svgToPng: the SVG could not be decoded');
  const canvas = createCanvas(Math.ceil(img.width), Math.ceil(img.height));
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = 'white';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0);
  return canvas.toBuffer('image/png');
}

/** Renders any vega-lite spec to PNG bytes. */
export async function vegaLiteToPng(spec: VegaLiteSpec, scale = 1): Promise<Buffer> {
  return svgToPng(await vegaLiteToSvg(spec, scale));
}

function sized(opts: PlotOptions): VegaLiteSpec {
  const s: VegaLiteSpec = { width: opts.width ?? 480, height: opts.height ?? 300, autosize: { type: 'fit', contains: 'padding' } };
  if (opts.title) s.title = opts.title;
  return s;
}

function finite(v: number, what: string): number {
  if (!Number.isFinite(v)) throw new InvalidInputError(`${what}: got ${v}; expected a finite number`);
  return v;
}

export interface LineSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

export interface LinePlotOptions extends PlotOptions {
  xLabel?: string;
  yLabel?: string;
  logX?: boolean;
  logY?: boolean;
  /** Draw a point at every sample (default: when a series has ≤ 30 points). */
  points?: boolean;
  /** Fixed y range, e.g. [0, 1] for accuracies. */
  yDomain?: [number, number];
}

/** Line chart of one or more series (e.g. accuracy against ε, loss per epoch). */
export async function plotLines(series: LineSeries[], opts: LinePlotOptions = {}): Promise<Buffer> {
  if (series.length === 0) throw new InvalidInputError('plotLines: no series given');
  const values: Array<{ x: number; y: number; series: string }> = [];
  for (const s of series) {
    if (s.x.length !== s.y.length) throw new InvalidInputError(`plotLines: series "${s.name}" has ${s.x.length} x and ${s.y.length} y values`);
    for (let i = 0; i < s.x.length; i++) values.push({ x: finite(s.x[i], `plotLines ${s.name} x[${i}]`), y: finite(s.y[i], `plotLines ${s.name} y[${i}]`), series: s.name });
  }
  const points = opts.points ?? series.every((s) => s.x.length <= 30);
  const spec: VegaLiteSpec = {
    ...sized(opts),
    data: { values },
    mark: { type: 'line', point: points, clip: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: opts.xLabel ?? 'x', scale: opts.logX ? { type: 'log' } : { zero: false } },
      y: {
        field: 'y',
        type: 'quantitative',
        title: opts.yLabel ?? 'y',
        scale: { ...(opts.logY ? { type: 'log' } : { zero: false }), ...(opts.yDomain ? { domain: opts.yDomain } : {}) },
      },
      color: { field: 'series', type: 'nominal', title: null, legend: series.length > 1 ? {} : null },
    },
  };
  return vegaLiteToPng(spec, opts.scale);
}

export interface Bar {
  label: string;
  value: number;
  /** Bars with a group are drawn side by side per label, coloured by group. */
  group?: string;
}

export interface BarPlotOptions extends PlotOptions {
  xLabel?: string;
  yLabel?: string;
  /** Horizontal bars (long labels such as method names read better). */
  horizontal?: boolean;
  /** Write each value at the end of its bar (default true for ≤ 30 bars). */
  showValues?: boolean;
  /** Keep the given order of labels (default true); false sorts by value, largest first. */
  keepOrder?: boolean;
  logScale?: boolean;
}

/** Bar chart (e.g. timings per method, accuracy per class). */
export async function plotBars(bars: Bar[], opts: BarPlotOptions = {}): Promise<Buffer> {
  if (bars.length === 0) throw new InvalidInputError('plotBars: no bars given');
  const values = bars.map((b, i) => ({ label: b.label, value: finite(b.value, `plotBars "${b.label}"`), group: b.group ?? '', order: i }));
  const grouped = bars.some((b) => b.group !== undefined);
  const labels = [...new Set(values.map((v) => v.label))];
  const sort = opts.keepOrder === false ? '-' + (opts.horizontal ? 'x' : 'y') : labels;
  const cat = { field: 'label', type: 'nominal', title: opts.xLabel ?? null, sort, axis: { labelLimit: 200 } } as VegaLiteSpec;
  const val = { field: 'value', type: 'quantitative', title: opts.yLabel ?? 'value', scale: opts.logScale ? { type: 'log' } : {} } as VegaLiteSpec;
  const enc: VegaLiteSpec = opts.horizontal ? { y: cat, x: val } : { x: cat, y: val };
  if (grouped) {
    enc.color = { field: 'group', type: 'nominal', title: null };
    enc[opts.horizontal ? 'yOffset' : 'xOffset'] = { field: 'group', type: 'nominal' };
  }
  const showValues = opts.showValues ?? bars.length <= 30;
  const layers: VegaLiteSpec[] = [{ mark: { type: 'bar' } }];
  if (showValues) {
    layers.push({
      mark: opts.horizontal ? { type: 'text', align: 'left', dx: 3 } : { type: 'text', baseline: 'bottom', dy: -2 },
      encoding: { text: { field: 'value', type: 'quantitative', format: '.3~g' }, color: { value: '#333' } },
    });
  }
  const spec: VegaLiteSpec = { ...sized(opts), data: { values }, encoding: enc, layer: layers };
  return vegaLiteToPng(spec, opts.scale);
}

export interface HistogramOptions extends PlotOptions {
  /** Number of equal-width bins (default 30). */
  bins?: number;
  /** Bin range (default: the data's min and max). */
  range?: [number, number];
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
}

/** Histogram counts: edges (bins + 1) and counts (bins). Values outside the range are dropped. */
export function histogram(values: ArrayLike<number>, bins = 30, range?: [number, number]): { edges: number[]; counts: number[] } {
  if (!Number.isInteger(bins) || bins < 1) throw new OptionError(`histogram: bins must be a positive integer; got ${bins}`);
  let lo = range?.[0] ?? Infinity;
  let hi = range?.[1] ?? -Infinity;
  if (!range) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (hi === lo) {
    lo -= 0.5;
    hi += 0.5;
  }
  const counts = new Array<number>(bins).fill(0);
  const w = (hi - lo) / bins;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= lo && v <= hi)) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / w))]++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + i * w), counts };
}

/** Histogram of values (e.g. attribution values, consistency scores, perturbation norms). */
export async function plotHistogram(values: ArrayLike<number>, opts: HistogramOptions = {}): Promise<Buffer> {
  const { edges, counts } = histogram(values, opts.bins ?? 30, opts.range);
  const rows = counts.map((c, i) => ({ x0: edges[i], x1: edges[i + 1], count: c }));
  const spec: VegaLiteSpec = {
    ...sized(opts),
    data: { values: rows },
    mark: { type: 'bar', orient: 'vertical', stroke: 'white', strokeWidth: 0.5 },
    encoding: {
      x: { field: 'x0', type: 'quantitative', title: opts.xLabel ?? 'value', scale: { zero: false, nice: false } },
      x2: { field: 'x1' },
      y: { field: 'count', type: 'quantitative', title: opts.yLabel ?? 'count', scale: opts.logY ? { type: 'symlog' } : {} },
    },
  };
  return vegaLiteToPng(spec, opts.scale);
}

export interface MatrixPlotOptions extends PlotOptions {
  /** Axis titles (defaults 'predicted' and 'true', for confusion matrices). */
  xLabel?: string;
  yLabel?: string;
  /** Write the value in every cell (default: when the matrix has ≤ 400 cells). */
  showValues?: boolean;
  /** d3 number format of cell values (default '.3~g'). */
  format?: string;
  /** Colours: 'sequential' (default, white → dark red), 'diverging' (centred on 0), 'viridis'. */
  colormap?: 'sequential' | 'diverging' | 'viridis' | 'yellow-blue';
}

/** A matrix as coloured cells, e.g. a confusion matrix (rows = true class, columns = predicted). */
export async function plotHeatmapMatrix(
  matrix: ArrayLike<number>[],
  rowLabels: string[],
  colLabels: string[],
  opts: MatrixPlotOptions = {},
): Promise<Buffer> {
  const rows = matrix.length;
  if (rows === 0 || rows !== rowLabels.length) throw new InvalidInputError(`plotHeatmapMatrix: ${rows} rows but ${rowLabels.length} row labels`);
  const values: Array<{ row: string; col: string; value: number; r: number; c: number }> = [];
  let maxAbs = 0;
  matrix.forEach((line, r) => {
    if (line.length !== colLabels.length) throw new InvalidInputError(`plotHeatmapMatrix: row ${r} has ${line.length} values but there are ${colLabels.length} column labels`);
    for (let c = 0; c < line.length; c++) {
      const v = finite(line[c], `plotHeatmapMatrix [${r}][${c}]`);
      maxAbs = Math.max(maxAbs, Math.abs(v));
      values.push({ row: rowLabels[r], col: colLabels[c], value: v, r, c });
    }
  });
  const cmap = opts.colormap ?? 'sequential';
  const signed = cmap === 'diverging' || cmap === 'yellow-blue';
  const lim = maxAbs > 0 ? maxAbs : 1;
  const color: VegaLiteSpec = {
    field: 'value',
    type: 'quantitative',
    title: null,
    scale: { range: colormapRange(cmap, 9), domain: signed ? [-lim, lim] : [Math.min(0, ...values.map((v) => v.value)), lim] },
  };
  const cell = opts.width ? undefined : Math.max(14, Math.min(40, Math.floor(400 / Math.max(rows, colLabels.length))));
  const showValues = opts.showValues ?? values.length <= 400;
  const dark = cmap === 'sequential' ? `abs(datum.value) > ${0.55 * lim}` : cmap === 'diverging' ? `abs(datum.value) > ${0.7 * lim}` : `datum.value < ${signed ? 0.3 * lim : 0.6 * lim}`;
  const layers: VegaLiteSpec[] = [{ mark: 'rect', encoding: { color } }];
  if (showValues) {
    layers.push({
      mark: { type: 'text', fontSize: Math.min(11, (cell ?? 30) / 2.6) },
      encoding: {
        text: { field: 'value', type: 'quantitative', format: opts.format ?? '.3~g' },
        color: { condition: { test: dark, value: 'white' }, value: 'black' },
      },
    });
  }
  const spec: VegaLiteSpec = {
    width: opts.width ?? (cell as number) * colLabels.length,
    height: opts.height ?? (cell as number) * rows,
    ...(opts.title ? { title: opts.title } : {}),
    data: { values },
    encoding: {
      x: {
        field: 'col',
        type: 'ordinal',
        sort: colLabels,
        title: opts.xLabel ?? 'predicted',
        axis: { labelAngle: Math.max(...colLabels.map((l) => l.length)) * 7 > (cell ?? 30) ? -40 : 0 },
      },
      y: { field: 'row', type: 'ordinal', sort: rowLabels, title: opts.yLabel ?? 'true' },
    },
    layer: layers,
  };
  return vegaLiteToPng(spec, opts.scale);
}

export interface ScatterPoint {
  x: number;
  y: number;
  group?: string;
}

export interface ScatterPlotOptions extends PlotOptions {
  xLabel?: string;
  yLabel?: string;
  pointSize?: number;
}

/** Scatter plot, coloured by group (e.g. 2-D latent codes by class). */
export async function plotScatter(points: ScatterPoint[], opts: ScatterPlotOptions = {}): Promise<Buffer> {
  const values = points.map((p, i) => ({ x: finite(p.x, `plotScatter x[${i}]`), y: finite(p.y, `plotScatter y[${i}]`), group: p.group ?? '' }));
  const grouped = points.some((p) => p.group !== undefined);
  const spec: VegaLiteSpec = {
    ...sized(opts),
    data: { values },
    mark: { type: 'circle', size: opts.pointSize ?? 16, opacity: 0.7 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: opts.xLabel ?? 'x', scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: opts.yLabel ?? 'y', scale: { zero: false } },
      ...(grouped ? { color: { field: 'group', type: 'nominal', title: null } } : {}),
    },
  };
  return vegaLiteToPng(spec, opts.scale);
}

/** Width and height of PNG bytes, read from the IHDR chunk. */
export function pngSize(png: Buffer): { width: number; height: number } {
  if (png.length < 24 || png.readUInt32BE(0) !== 0x89504e47) throw new InvalidInputError('pngSize: not PNG data');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

