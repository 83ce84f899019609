/**
 * The end of a run, once every shard is finished: OUT/manifest.json (every shard record with its
 * checksums), OUT/index.jsonl and OUT/index.csv (the shards' index lines in run order, one row per
 * image and method) and an HTML summary in OUT/report/ (the demo report's page: the first images of
 * the run with every method's map, ms per image and the model's accuracy on the run's images).
 * Leftovers of writers that died (temporary files, data files of a shard that lost the commit race)
 * are removed here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Classifier } from '../core/classifier.js';
import { getMethod } from '../core/registry.js';
import { writePng, renderImage } from '../render/index.js';
import { writeHtmlReport, type ReportMethodRow } from '../cli/report/html.js';
import { mapOverInput } from '../cli/report/backdrop.js';
import { currentBackend } from '../engine/backend.js';
import { DataError } from '../core/errors.js';
import { toInputGrid } from '../metrics/common.js';
import { decodeNpy } from './npy.js';
import { writeFileAtomic } from './files.js';
import { removeOrphans, scanRun, type ShardRecord } from './manifest.js';
import { loadShardImages } from './source.js';
import type { IndexRow } from './shard.js';
import type { JobSpec } from './spec.js';

export interface RunSummary {
  key: string;
  images: number;
  methods: string[];
  shards: number;
  /** Per method: images, mean ms per image (method time), accuracy of the prediction against the label. */
  perMethod: Array<{ method: string; images: number; msPerImage: number; accuracy: number; /** Mean of each metric's finite scores. */ metrics: Record<string, number> }>;
  files: { manifest: string; jsonl: string; csv: string; report: string };
}

const CSV_FIXED = ['id', 'position', 'label', 'prediction', 'target', 'method', 'shard', 'file', 'row', 'time_ms'] as const;

function csvCell(v: unknown): string {
  const s = v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV of the index: the fixed columns, one `metric.NAME` column per metric, one `extra.KEY` column per extras key found. */
export function indexCsv(rows: IndexRow[]): string {
  const extraKeys = [...new Set(rows.flatMap((r) => Object.keys(r.extras)))].sort();
  const metricKeys = [...new Set(rows.flatMap((r) => Object.keys(r.metrics ?? {})))];
  const head = [...CSV_FIXED, ...metricKeys.map((k) => `metric.${k}`), ...extraKeys.map((k) => `extra.${k}`)].join(',');
  const lines = rows.map((r) =>
    [r.id, r.position, r.label, r.prediction, r.target, r.method, r.shard, r.file, r.row, r.timeMs, ...metricKeys.map((k) => r.metrics?.[k]), ...extraKeys.map((k) => r.extras[k])].map(csvCell).join(','),
  );
  return [head, ...lines].join('\n') + '\n';
}

/** Reads the index lines of finished shards, in spec order. */
export function readIndexRows(outDir: string, records: ShardRecord[]): IndexRow[] {
  const rows: IndexRow[] = [];
  for (const r of records) {
    for (const line of readFileSync(join(outDir, r.index.file), 'utf8').split('\n')) if (line) rows.push(JSON.parse(line) as IndexRow);
  }
  return rows;
}

/**
 * Writes manifest, index and report. Fails (DataError) when a shard is not finished: call it when
 * scanRun reports nothing missing.
 */
export async function finalizeRun(outDir: string, spec: JobSpec, classifier: Classifier, opts: { reportImages?: number } = {}): Promise<RunSummary> {
  const state = scanRun(outDir, spec, { verify: true });
  if (state.missing.length) throw new DataError(`cannot finalize ${outDir}: ${state.missing.length} of ${spec.shards.length} shards are not finished (first: ${state.missing[0].id})`);
  removeOrphans(outDir, spec, state.done);
  const records = state.done;
  writeFileAtomic(join(outDir, 'manifest.json'), JSON.stringify({ key: spec.key, shards: records }, null, 1) + '\n');
  const rows = readIndexRows(outDir, records);
  writeFileAtomic(join(outDir, 'index.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileAtomic(join(outDir, 'index.csv'), indexCsv(rows));

  const perMethod = spec.methods.map((method) => {
    const mine = rows.filter((r) => r.method === method);
    return {
      method,
      images: mine.length,
      msPerImage: mine.reduce((a, r) => a + r.timeMs, 0) / Math.max(1, mine.length),
      accuracy: mine.filter((r) => r.prediction === r.label).length / Math.max(1, mine.length),
      metrics: Object.fromEntries((spec.metrics ?? []).map((m) => {
        const v = mine.map((r) => r.metrics?.[m]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
        return [m, v.reduce((a, b) => a + b, 0) / Math.max(1, v.length)];
      })),
    };
  });
  const report = await writeReport(outDir, spec, classifier, records, rows, perMethod, opts.reportImages ?? 8);
  return {
    key: spec.key,
    images: spec.dataset.size,
    methods: spec.methods,
    shards: records.length,
    perMethod,
    files: { manifest: join(outDir, 'manifest.json'), jsonl: join(outDir, 'index.jsonl'), csv: join(outDir, 'index.csv'), report },
  };
}

async function writeReport(
  outDir: string,
  spec: JobSpec,
  classifier: Classifier,
  records: ShardRecord[],
  rows: IndexRow[],
  perMethod: RunSummary['perMethod'],
  count: number,
): Promise<string> {
  const dir = join(outDir, 'report');
  mkdirSync(dir, { recursive: true });
  const k = Math.min(count, spec.dataset.size, spec.shardSize);
  const first = { id: 'report', method: spec.methods[0], start: 0, end: k };
  const src = await loadShardImages(spec.dataset, first, classifier.inputShape, [classifier.domain.low, classifier.domain.high]);
  const names = spec.dataset.classNames;
  try {
    const digits = src.ids.map((id, i) => {
      const input = `input-${i}.png`;
      writePng(join(dir, input), renderImage(src.images, { index: i }));
      return { index: i, label: src.labels[i], input, heading: names[src.labels[i]] ?? String(src.labels[i]), note: id };
    });
    const methods: ReportMethodRow[] = spec.methods.map((method) => {
      const def = getMethod(method);
      const rec = records.find((r) => r.method === method && r.start === 0)!;
      const npy = decodeNpy(readFileSync(join(outDir, rec.npy.file)), rec.npy.file);
      const per = npy.shape.slice(1).reduce((a, b) => a * b, 1);
      // Layer methods' maps are drawn brought to the input grid, as the metrics see them.
      const raw = tf.tensor4d(npy.data.subarray(0, k * per), [k, npy.shape[1], npy.shape[2], npy.shape[3]]);
      const maps = toInputGrid(raw, src.images.shape).grid;
      if (maps !== raw) raw.dispose();
      const mine = rows.filter((r) => r.method === method);
      try {
        return {
          method,
          family: def.family,
          description: def.description,
          signed: def.signed,
          model: spec.model,
          msPerImage: perMethod.find((p) => p.method === method)!.msPerImage,
          maps: Array.from({ length: k }, (_, i) => {
            const file = `${method}-${i}.png`;
            writePng(join(dir, file), mapOverInput(src.images, maps, i, def.signed));
            return file;
          }),
          targets: mine.slice(0, k).map((r) => r.target),
          extras: mine.slice(0, k).map((r) => r.extras),
        };
      } finally {
        maps.dispose();
      }
    });
    const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const dsName = esc(spec.dataset.kind === 'folder' ? spec.dataset.dir! : `${spec.dataset.kind} ${spec.dataset.split}`);
    const metricNames = spec.metrics ?? [];
    const table = perMethod
      .map((p) => `<tr><td>${p.method}</td><td>${p.images}</td><td>${p.msPerImage.toFixed(2)}</td>${metricNames.map((m) => `<td>${p.metrics[m].toPrecision(4)}</td>`).join('')}</tr>`)
      .join('');
    return writeHtmlReport({
      outDir: dir,
      backend: currentBackend() ?? 'unknown',
      title: `Glasswing run ${spec.key}`,
      intro: `<p>${spec.dataset.size} images of ${dsName} explained by ${spec.methods.join(', ')} on ${esc(spec.model)} (target: ${esc(spec.target)},
${spec.shards.length} shards of ≤ ${spec.shardSize} images, backend ${currentBackend() ?? 'unknown'}, ${new Date().toISOString().slice(0, 19)}Z).
Attributions: <code>shards/&lt;method&gt;/*.npy</code> (float32, numpy-readable); one row per image and method in
<code>index.jsonl</code> / <code>index.csv</code>; checksums in <code>manifest.json</code>. Below: the first ${k} images.</p>
<table><tr><th>method</th><th>images</th><th>ms/image</th>${metricNames.map((m) => `<th>${m} (mean)</th>`).join('')}</tr>${table}</table>`,
      accuracyLabel: `accuracy on the run's ${spec.dataset.size} images (prediction = label)`,
      digits,
      methods,
      accuracy: spec.dataset.kind === 'folder' && spec.dataset.classNames.length === 1 ? [] : [{ model: spec.model, accuracy: perMethod[0]?.accuracy ?? 0 }],
    });
  } finally {
    src.images.dispose();
  }
}
