/**
 * The demo: explain a handful of real MNIST test digits with every registered method on the shipped
 * default models, and write an HTML report (plus PNGs, markdown and a JSON summary).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { explain, listMethods, type MethodDefinition } from '../../core/registry.js';
import type { Classifier } from '../../core/classifier.js';
import { currentBackend } from '../../engine/backend.js';
import { loadMnist } from '../../data/index.js';
import { DEFAULT_MODELS, loadDefaultClassifier, evaluate } from '../../models/index.js';
import { grid, renderImage, writePng, type Image } from '../../render/index.js';
import { mapOverInput } from '../report/backdrop.js';
import { progress } from '../../util/progress.js';
import { flag, num, parseArgs, str } from '../args.js';
import { reportCommand } from './report.js';
import { scalarExtras } from '../report/extras.js';
import { writeHtmlReport, type ReportMethodRow } from '../report/html.js';
import type { Command } from './index.js';

/** Where a method shows best: VisualBackProp's showcase is the bias-free offset network (seed 002). */
const PREFERRED_MODEL: Record<string, string> = { 'visual-backprop': 'mnist-cnn-nobias' };
const MODEL_ORDER = ['mnist-cnn', 'mnist-cnn-nobias', 'mnist-mlp'];
/**
 * The explained class is the prediction, except for the latent searches: LSE/LAE toward the predicted
 * class of a correctly classified digit would stop at step 0, so they ask "what makes it the runner-up?".
 */
const DEMO_TARGET: Record<string, 'predicted' | 'second'> = { lse: 'second', lae: 'second' };

export const demoCommand: Command = {
  name: 'demo',
  summary: 'explain real MNIST test digits with every method on the shipped models; write an HTML report',
  usage: [
    'glasswing demo [--out DIR] [--count N] [--methods a,b,c] [--quick] [--json]',
    '',
    '  --out      report folder (default: out/demo); open DIR/index.html',
    '  --count    how many test digits (default 6: the first test digit of classes 0..5)',
    '  --methods  only these methods (default: every registered method)',
    '  --quick    skip the accuracy table of the default models',
    '  --no-metrics  skip the metric report (DIR/metrics.html: `glasswing report --quick` on mnist-cnn)',
  ].join('\n'),
  async run(args) {
    const outDir = resolve(str(args, 'out', 'out/demo'));
    const count = Math.max(1, Math.min(10, Math.floor(num(args, 'count', 6))));
    const only = str(args, 'methods')?.split(',').map((s) => s.trim());
    mkdirSync(join(outDir, 'maps'), { recursive: true });

    const test = await loadMnist({ split: 'test' });
    const picks: number[] = [];
    for (let cls = 0; cls < count; cls++) picks.push(test.labels.indexOf(cls));
    const x = tf.tidy(() => tf.gather(test.images, picks)) as tf.Tensor4D;
    const labels = picks.map((i) => test.labels[i]);

    const classifiers = new Map<string, Classifier>();
    const classifierFor = async (name: string) => {
      if (!classifiers.has(name)) classifiers.set(name, await loadDefaultClassifier(name));
      return classifiers.get(name)!;
    };

    const methods = listMethods().filter((m) => !only || only.includes(m.name));
    const rows: ReportMethodRow[] = [];
    const columns: Image[][] = [];
    const bar = progress('demo', methods.length);
    const inputTiles = picks.map((_, index) => renderImage(x, { index }));
    for (const m of methods) {
      bar.tick(m.name);
      const row = await runOne(m, x, classifierFor, outDir);
      rows.push(row.row);
      if (row.tiles) columns.push(row.tiles);
    }
    bar.done();

    // Overview picture: one row per digit, the input then every method that ran.
    const ran = rows.filter((r) => !r.error);
    const tiles: Image[] = [];
    const tileLabels: string[] = [];
    for (let i = 0; i < picks.length; i++) {
      tiles.push(inputTiles[i]);
      tileLabels.push(`digit ${labels[i]}`);
      ran.forEach((r, j) => {
        tiles.push(columns[j][i]);
        tileLabels.push(i === 0 ? `${r.method}` : '');
      });
    }
    const overview = grid(tiles, { labels: tileLabels, cols: ran.length + 1, scale: 3 });
    await writePng(join(outDir, 'overview.png'), overview);
    for (let i = 0; i < picks.length; i++) await writePng(join(outDir, 'maps', `input-${i}.png`), grid([inputTiles[i]], { scale: 4 }));

    let accuracy: Array<{ model: string; accuracy: number }> = [];
    if (!flag(args, 'quick')) accuracy = await modelAccuracies(classifierFor);

    // Which map to trust: the quick metric report on the default CNN, linked from the demo page.
    const links: Array<{ href: string; text: string }> = [];
    if (!flag(args, 'no-metrics')) {
      await reportCommand.run(parseArgs(['--quick', '--model', 'mnist-cnn', '--out', join(outDir, 'metrics.html')]));
      links.push({ href: 'metrics.html', text: 'Which explanation to trust: faithfulness, robustness, randomization and complexity metrics of the fast methods on mnist-cnn' });
    }
    const html = writeHtmlReport({
      links,
      outDir,
      backend: currentBackend() ?? 'unknown',
      digits: picks.map((index, i) => ({ index, label: labels[i], input: `maps/input-${i}.png` })),
      methods: rows,
      accuracy,
    });
    writeFileSync(join(outDir, 'summary.json'), JSON.stringify({ backend: currentBackend(), digits: picks, labels, methods: rows, accuracy }, null, 2));
    process.stdout.write(`explained ${picks.length} MNIST test digits with ${ran.length} methods (${rows.length - ran.length} not run)\n`);
    for (const r of rows) {
      process.stdout.write(`  ${r.method.padEnd(24)} ${r.error ? 'not run: ' + r.error : `${r.msPerImage.toFixed(1)} ms/image on ${r.model}`}\n`);
    }
    process.stdout.write(`report: ${html}\n`);
    if (flag(args, 'json')) process.stdout.write(JSON.stringify({ demo: outDir, backend: currentBackend(), methods: rows.map(({ method, model, msPerImage, error }) => ({ method, model, msPerImage, error })) }) + '\n');
    x.dispose();
    test.dispose();
  },
};

async function runOne(
  m: MethodDefinition<any>,
  x: tf.Tensor4D,
  classifierFor: (name: string) => Promise<Classifier>,
  outDir: string,
): Promise<{ row: ReportMethodRow; tiles?: Image[] }> {
  const order = PREFERRED_MODEL[m.name] ? [PREFERRED_MODEL[m.name], ...MODEL_ORDER] : MODEL_ORDER;
  let classifier: Classifier | undefined;
  let why = '';
  for (const name of order) {
    const c = await classifierFor(name);
    const reason = m.requires?.(c);
    if (!reason) {
      classifier = c;
      break;
    }
    why ||= reason;
  }
  const base = { method: m.name, family: m.family, description: m.description, signed: m.signed, maps: [] as string[], msPerImage: 0, model: '', extras: [] as Record<string, unknown>[] };
  if (!classifier) return { row: { ...base, error: why } };
  try {
    const target = DEMO_TARGET[m.name] ?? 'predicted';
    const e = await explain(m.name, classifier, x, { target });
    const tiles: Image[] = [];
    const maps: string[] = [];
    const extras: Record<string, unknown>[] = [];
    for (let i = 0; i < x.shape[0]; i++) {
      const tile = mapOverInput(x, e.attribution, i, m.signed);
      tiles.push(tile);
      const file = `maps/${m.name}-${i}.png`;
      await writePng(join(outDir, file), grid([tile], { scale: 4 }));
      maps.push(file);
      extras.push(scalarExtras(perImage(e.extras, i)));
    }
    const row = { ...base, model: classifier.name, msPerImage: e.timeMs / x.shape[0], maps, targets: e.target, targetSpec: target, extras };
    e.dispose();
    return { row, tiles };
  } catch (err) {
    return { row: { ...base, model: classifier.name, error: err instanceof Error ? err.message : String(err) } };
  }
}

/** The i-th entry of per-image array extras, and the scalar extras as they are. */
function perImage(extras: Record<string, unknown>, i: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extras)) {
    if (Array.isArray(v) && typeof v[i] !== 'object') out[k] = v[i];
    else if (typeof v !== 'object') out[k] = v;
  }
  return out;
}

async function modelAccuracies(classifierFor: (name: string) => Promise<Classifier>): Promise<Array<{ model: string; accuracy: number }>> {
  const result: Array<{ model: string; accuracy: number }> = [];
  const test = await loadMnist({ split: 'test' });
  for (const m of DEFAULT_MODELS.filter((d) => d.dataset === 'mnist')) {
    const r = await evaluate(await classifierFor(m.name), test);
    result.push({ model: m.name, accuracy: r.accuracy });
  }
  test.dispose();
  return result;
}
