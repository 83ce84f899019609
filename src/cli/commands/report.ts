/**
 * `glasswing report`: one self-contained, offline HTML page that compares the registered methods on
 * one model — their maps on test images (with colour bars), seed 002's Table 1 (black / white box,
 * layers supported, additive or comparative, measured ms/image and peak memory), the metric table
 * (methods × metrics, best per column marked) and the pixel-flipping / deletion / insertion and
 * randomization curves as vega-lite plots inlined as SVG. Columns sort on click (a few lines of
 * inline JS); images are data: URIs, so the file works from disk, offline, as one file.
 */
import { resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { listMethods } from '../../core/registry.js';
import { OptionError } from '../../core/errors.js';
import { currentBackend } from '../../engine/backend.js';
import { formatBytes } from '../../engine/memory.js';
import { compareMethods, disposeComparison, listMetrics, metricHigherIsBetter, type MethodRun, type MetricEvaluation } from '../../metrics/index.js';
import { colorbar, encodePng, overlay, renderImage, vegaLiteToSvg, writeFileAtomic, upscale } from '../../render/index.js';
import { backdrop } from '../report/backdrop.js';
import { flag, num, str } from '../args.js';
import { resolveClassifier, DEFAULT_MODEL } from '../model-arg.js';
import { imagesFor } from './metrics.js';
import type { Command } from './index.js';

/** The quick report's methods: fast ones covering each kind (gradient, path, propagation, CAM, perturbation). */
export const QUICK_REPORT_METHODS = [
  'gradient', 'saliency', 'gradient-x-input', 'integrated-gradients', 'smoothgrad', 'guided-backprop', 'deconvnet', 'grad-cam', 'lrp', 'deep-taylor',
  'deeplift', 'occlusion', 'visual-backprop',
];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const dataUri = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;
const fmt = (v: number) => (!Number.isFinite(v) ? String(v) : Math.abs(v) >= 1000 || (Math.abs(v) < 0.001 && v !== 0) ? v.toExponential(2) : v.toPrecision(3));

const SORT_JS = `document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th),d=th.dataset.dir==='asc'?'desc':'asc';th.dataset.dir=d;
var rows=Array.prototype.slice.call(b.rows);rows.sort(function(x,y){var a=x.cells[i].dataset.v||x.cells[i].textContent,c=y.cells[i].dataset.v||y.cells[i].textContent;
var p=parseFloat(a),q=parseFloat(c);var r=(isNaN(p)||isNaN(q))?a.localeCompare(c):p-q;if(isNaN(p)&&!isNaN(q))r=1;if(!isNaN(p)&&isNaN(q))r=-1;return d==='asc'?r:-r;});
rows.forEach(function(r){b.appendChild(r);});});});`;

/** Mean curve per method as a vega-lite line chart, rendered to an inline SVG string. */
async function curvePlot(title: string, series: Array<{ method: string; x: number[]; y: number[] }>, xLabel: string, yLabel: string, xLabels?: string[]): Promise<string> {
  const values = series.flatMap((s) => s.x.map((x, i) => ({ x, y: s.y[i], method: s.method })).filter((v) => Number.isFinite(v.y)));
  if (values.length === 0) return '';
  const spec = {
    title, width: 520, height: 300, data: { values },
    mark: { type: 'line', point: series[0].x.length <= 12, clip: true },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xLabel, ...(xLabels ? { axis: { values: series[0].x, labelExpr: `[${xLabels.map((l) => JSON.stringify(l)).join(',')}][datum.value - 1]` } } : {}) },
      y: { field: 'y', type: 'quantitative', title: yLabel, scale: { zero: false } },
      color: { field: 'method', type: 'nominal', title: 'method', scale: { scheme: 'tableau20' } },
    },
  };
  return vegaLiteToSvg(spec);
}

function metricCell(r: MetricEvaluation | { error: string } | undefined): { v: number; text: string; title: string } {
  if (!r) return { v: NaN, text: '–', title: 'not run' };
  if ('error' in r) return { v: NaN, text: '–', title: r.error };
  return { v: r.mean, text: fmt(r.mean), title: `per image: ${r.scores.map(fmt).join(', ')}` };
}

export interface ReportInfo {
  model: string;
  images: string;
  count: number;
  quick: boolean;
}

/** Build the report's HTML from a comparison (exported for tests). */
export async function buildReportHtml(x: tf.Tensor4D, runs: MethodRun[], metricNames: string[], info: ReportInfo): Promise<string> {
  const n = x.shape[0];
  // 1. maps, one row per method, one shared scale per row (its colour bar says which)
  const inputs = Array.from({ length: n }, (_, i) => dataUri(encodePng(upscale(renderImage(x, { index: i }), Math.max(1, Math.round(112 / x.shape[1]))))));
  const mapRows: string[] = [];
  for (const r of runs) {
    if (!r.attribution) {
      mapRows.push(`<tr><th class="m">${esc(r.profile.method)}</th><td colspan="${n + 1}" class="err">${esc(r.profile.error ?? 'no map')}</td></tr>`);
      continue;
    }
    const vmaxT = tf.tidy(() => tf.max(tf.abs(tf.sum(r.attribution!, 3))));
    const vmax = (await vmaxT.data())[0] || 1;
    vmaxT.dispose();
    const signed = r.profile.signed;
    const scale = Math.max(1, Math.round(112 / x.shape[1]));
    const cells = Array.from({ length: n }, (_, i) => {
      const img = overlay(backdrop(x, i), r.attribution!, { index: i, colormap: signed ? 'diverging' : 'sequential', signed, alpha: 0.9, vmax, scale });
      return `<td><img class="map" src="${dataUri(encodePng(img))}" alt="${esc(r.profile.method)} ${i}"><br><small>target ${r.targets?.[i] ?? '?'}</small></td>`;
    }).join('');
    const bar = dataUri(encodePng(colorbar(signed ? 'diverging' : 'sequential', { vmax, length: 120 })));
    mapRows.push(`<tr><th class="m">${esc(r.profile.method)}</th>${cells}<td><img src="${bar}" alt="colour bar"></td></tr>`);
  }
  const mapsHtml = `<table class="maps"><thead><tr><th></th>${inputs.map((u, i) => `<th><img class="map" src="${u}" alt="input ${i}"></th>`).join('')}<th>colour bar</th></tr></thead><tbody>${mapRows.join('\n')}</tbody></table>`;

  // 2. Table 1
  const t1 = runs.map((r) => {
    const p = r.profile;
    return `<tr><td>${esc(p.method)}</td><td>${esc(p.family)}</td><td>${p.access}</td><td>${esc(p.layers)}</td><td>${p.explanation}</td><td>${esc(p.scaling)}</td>` +
      `<td data-v="${p.msPerImage ?? ''}">${p.msPerImage !== undefined ? fmt(p.msPerImage) : '–'}</td>` +
      `<td data-v="${p.peakBytes ?? ''}">${p.peakBytes !== undefined ? formatBytes(p.peakBytes) : '–'}</td>` +
      `<td class="${p.error ? 'err' : ''}">${p.error ? esc(p.error) : 'ok'}</td></tr>`;
  }).join('\n');
  const table1 = `<table class="sortable"><thead><tr><th>method</th><th>family</th><th>network access</th><th>layers supported</th><th>explanation</th><th>cost per image (scales with)</th><th>ms / image</th><th>peak memory</th><th>on this model</th></tr></thead><tbody>${t1}</tbody></table>`;

  // 3. metric table, best per column marked
  const best = new Map<string, number>();
  for (const m of metricNames) {
    const hib = metricHigherIsBetter(m, firstOptions(runs, m));
    const vals = runs.filter((r) => !r.profile.zeroMap).map((r) => metricCell(r.metrics.get(m)).v).filter(Number.isFinite);
    // no star when every method scores the same (e.g. localisation on images without the region)
    if (vals.length > 1 && Math.max(...vals) !== Math.min(...vals)) best.set(m, hib ? Math.max(...vals) : Math.min(...vals));
  }
  const mrows = runs.filter((r) => r.attribution).map((r) => `<tr><td>${esc(r.profile.method)}${r.profile.zeroMap ? ' <small class="err">(all-zero maps: not ranked)</small>' : ''}</td>${metricNames.map((m) => {
    const c = metricCell(r.metrics.get(m));
    const isBest = Number.isFinite(c.v) && !r.profile.zeroMap && best.get(m) === c.v;
    return `<td data-v="${Number.isFinite(c.v) ? c.v : ''}" title="${esc(c.title)}" class="${isBest ? 'best' : ''}">${c.text}${isBest ? ' ★' : ''}</td>`;
  }).join('')}</tr>`).join('\n');
  const mhead = metricNames.map((m) => `<th title="${metricHigherIsBetter(m, firstOptions(runs, m)) ? 'higher' : 'lower'} is better">${esc(m)} ${metricHigherIsBetter(m, firstOptions(runs, m)) ? '↑' : '↓'}</th>`).join('');
  const metricTable = `<table class="sortable"><thead><tr><th>method</th>${mhead}</tr></thead><tbody>${mrows}</tbody></table>`;

  // 4. curves
  const plots: string[] = [];
  for (const [metric, curveName] of [['pixel-flipping', undefined], ['deletion', 'deletion'], ['insertion', 'insertion'], ['randomization', 'spearman']] as const) {
    const series: Array<{ method: string; x: number[]; y: number[] }> = [];
    let xLabel = '';
    let yLabel = '';
    let labels: string[] | undefined;
    for (const r of runs) {
      const e = r.metrics.get(metric);
      if (!e || 'error' in e) continue;
      const c = curveName ? e.curves.find((cv) => cv.name === curveName) : e.curves[0];
      if (!c) continue;
      series.push({ method: r.profile.method, x: c.x, y: c.mean });
      xLabel = c.xLabel;
      yLabel = c.yLabel;
      labels = c.labels;
    }
    if (series.length) plots.push(`<figure>${await curvePlot(`${metric}${curveName && curveName !== metric ? ` (${String(curveName)})` : ''}`, series, xLabel, yLabel, labels)}</figure>`);
  }

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Glasswing report: ${esc(info.model)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:100%}
table{border-collapse:collapse;margin:1em 0}td,th{padding:3px 7px;border-bottom:1px solid #eee;text-align:left;vertical-align:middle}
table.sortable th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}table.sortable th:hover{background:#e6eefc}
table.maps td,table.maps th{text-align:center}th.m{text-align:left;font-weight:normal}
img.map{image-rendering:pixelated;width:112px;height:112px}
td.best{font-weight:bold;background:#eaf7ea}.err{color:#a00}small{color:#666}figure{display:inline-block;margin:0.5em}
</style></head><body>
<h1>Glasswing report: ${esc(info.model)}</h1>
<p>${info.count} images (${esc(info.images)}), backend <b>${esc(String(currentBackend()))}</b>, ${new Date().toISOString().slice(0, 19)}Z${info.quick ? ', <b>quick</b> (reduced method and metric options)' : ''}.
Every map is explained for the predicted class (LSE and LAE: the runner-up, as in the demo). Click a column heading to sort.</p>
<h2>Which explanation to trust: metrics</h2>
<p>Mean over the images; hover a cell for the per-image scores. ↑: higher is better, ↓: lower is better; ★ marks the best per column.
Faithfulness: pixel flipping (AOPC, most relevant first), deletion / insertion (area under the curve), faithfulness correlation, infidelity;
robustness: max / average sensitivity; randomization: similarity of the map after randomizing the weights layer by layer (Spearman, mean over layers) and for a random other class;
complexity: sparseness (Gini), complexity (entropy); conservation: completeness error; invariance: distance between the maps of the model and its input-shifted twin;
localisation: relevance mass and pointing game inside the biased-MNIST square (meaningful for models and images that have it).</p>
${metricTable}
${plots.join('\n')}
<h2>The methods (seed 002's Table 1, measured here)</h2>
<p>Network access: black box (inputs and outputs only), gradient (autodiff through any differentiable model) or white box (needs the layers).
ms / image is the method's wall time for the batch divided by the number of images; peak memory is the most the backend held during the call.</p>
${table1}
<h2>Maps</h2>
<p>Each map over the input in grey; one scale per row (its colour bar): red evidence for the class, blue against (signed maps); magnitudes in the sequential scale.</p>
${mapsHtml}
<script>${SORT_JS}</script>
</body></html>
`;
}

function firstOptions(runs: MethodRun[], metric: string): Record<string, unknown> {
  for (const r of runs) {
    const e = r.metrics.get(metric);
    if (e && !('error' in e)) return e.options;
  }
  return {};
}

export const reportCommand: Command = {
  name: 'report',
  summary: 'one offline HTML page comparing the methods on a model: maps, Table 1, metric table, curves',
  usage: [
    'glasswing report [--model DIR|NAME] [--images DIR] [--count N] [--out report.html] [--quick] [--methods a,b] [--metrics a,b] [--max-reexplain-s S]',
    '',
    '  --model            a folder with model.json or a shipped model name (default: mnist-cnn)',
    '  --images           a folder of PNG/JPEG files to use instead of test images',
    '  --count            test images (default 4; quick: 3)',
    '  --quick            fast methods only, reduced method and metric options (seconds to a few minutes)',
    '  --methods          only these methods (default: every registered method; quick: a fast set)',
    '  --metrics          only these metrics (default: all; localisation only for a biased-MNIST model)',
    '  --max-reexplain-s  skip metrics that re-run a method for longer than this (default 120; quick: 20)',
  ].join('\n'),
  async run(args) {
    const quick = flag(args, 'quick');
    const out = resolve(str(args, 'out', 'report.html'));
    if (!out.toLowerCase().endsWith('.html')) throw new OptionError(`expected --out to name an .html file; got "${out}"`);
    const modelName = str(args, 'model', DEFAULT_MODEL);
    const count = Math.floor(num(args, 'count', quick ? 3 : 4));
    if (!(count >= 1)) throw new OptionError(`expected --count to be a positive integer; got ${count}`);
    const methods = str(args, 'methods')?.split(',').map((s) => s.trim()).filter(Boolean)
      ?? (quick ? QUICK_REPORT_METHODS.filter((m) => listMethods().some((d) => d.name === m)) : listMethods().map((m) => m.name));
    // Localisation needs the ground-truth square: only on the biased-MNIST model, whose images carry it.
    const metricNames = str(args, 'metrics')?.split(',').map((s) => s.trim()).filter(Boolean)
      ?? listMetrics().filter((m) => m.family !== 'localisation' || modelName.includes('biased')).map((m) => m.name);
    const classifier = await resolveClassifier(modelName);
    // On the biased-MNIST model the interesting images are its 8s, which carry the square.
    const { x, source } = await imagesFor(classifier, modelName, count, {
      localisation: metricNames.some((m) => listMetrics().find((d) => d.name === m)?.family === 'localisation'), dir: str(args, 'images'),
    });
    const start = Date.now();
    let runs: MethodRun[] = [];
    try {
      runs = await compareMethods(classifier, x, {
        methods, metrics: metricNames, quick, maxReexplainMs: num(args, 'max-reexplain-s', quick ? 20 : 120) * 1000,
        progress: (label) => process.stderr.write(`  [${((Date.now() - start) / 1000).toFixed(0)} s] ${label}\n`),
      });
      const html = await buildReportHtml(x, runs, metricNames, { model: classifier.name, images: source, count: x.shape[0], quick });
      mkdirSync(dirname(out), { recursive: true });
      writeFileAtomic(out, html);
      const ok = runs.filter((r) => r.attribution).length;
      process.stdout.write(`report: ${ok}/${runs.length} methods × ${metricNames.length} metrics on ${classifier.name} (${x.shape[0]} images) in ${((Date.now() - start) / 1000).toFixed(0)} s → ${out}\n`);
    } finally {
      disposeComparison(runs);
      x.dispose();
    }
  },
};
