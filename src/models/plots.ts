/**
 * Model plots — seed 002's framework helpers (`plot_confusion_matrix`, `plot_example_errors`,
 * `plot_conv_weights`, `plot_conv_layer`) on top of src/render: a confusion matrix PNG, a grid of
 * misclassified examples, the filters of a conv layer, and the feature maps of a layer for one image.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as path from 'node:path';
import type { Classifier } from '../core/classifier.js';
import { InvalidInputError, OptionError, UnsupportedLayerError } from '../core/errors.js';
import { plotHeatmapMatrix, plotExamplesGrid, plotFiltersGrid, plotFeatureMaps, writePng, type Image } from '../render/index.js';
import type { Evaluation, EvaluationError } from './evaluate.js';
import type { LabelledImages } from './train.js';

export interface ConfusionPlotOptions {
  /** 'true' (default): each row divided by its count, i.e. P(predicted | true) as in seed 002; 'none': counts. */
  normalize?: 'true' | 'none';
  title?: string;
}

/**
 * Confusion matrix (rows = true class, columns = predicted; `confusion[t][p]` counts as from
 * evaluate) as PNG bytes; also written to `file` when given.
 */
export async function plotConfusionMatrix(confusion: number[][], classNames?: string[], file?: string, opts: ConfusionPlotOptions = {}): Promise<Buffer> {
  const k = confusion.length;
  const names = classNames ?? Array.from({ length: k }, (_, i) => String(i));
  if (k === 0 || confusion.some((r) => r.length !== k)) {
    throw new InvalidInputError(`expected a square confusion matrix; got ${k} rows of lengths ${confusion.map((r) => r.length).join(', ')}`);
  }
  if (names.length !== k) throw new OptionError(`expected ${k} class names for a ${k}×${k} confusion matrix; got ${names.length}`);
  const normalize = opts.normalize ?? 'true';
  let correct = 0;
  let total = 0;
  const matrix = confusion.map((row, i) => {
    const s = row.reduce((a, b) => a + b, 0);
    correct += row[i];
    total += s;
    if (normalize === 'none') return row.slice();
    return row.map((v) => (s === 0 ? 0 : v / s));
  });
  const png = await plotHeatmapMatrix(matrix, names, names, {
    title: opts.title ?? `confusion matrix, accuracy ${total ? ((correct / total) * 100).toFixed(2) : '-'} %${normalize === 'true' ? ' (rows: P(predicted | true))' : ''}`,
    format: normalize === 'none' ? 'd' : '.2f',
  });
  if (file) writePng(file, png);
  return png;
}

export interface ErrorsPlotOptions {
  /** How many errors to show (default 9, the first nine as in seed 002). */
  max?: number;
  cols?: number;
  scale?: number;
  title?: string;
}

/**
 * The misclassified images (evaluate's `errors`, first `max`), each labelled "true → predicted
 * confidence"; also written as PNG to `file` when given.
 */
export function plotErrors(ds: LabelledImages, errors: EvaluationError[], classNames?: string[], file?: string, opts: ErrorsPlotOptions = {}): Image {
  const errs = errors.slice(0, opts.max ?? Math.max(9, Math.min(errors.length, 64)));
  if (errs.length === 0) throw new InvalidInputError('expected at least one misclassified image to plot; got none');
  const x = tf.tidy(() => tf.concat(errs.map((e) => tf.slice(ds.images, e.index, 1))));
  try {
    const image = plotExamplesGrid(x, errs.map((e) => e.label), errs.map((e) => e.predicted), {
      classNames: classNames ?? ds.classNames,
      confidences: errs.map((e) => e.confidence),
      cols: opts.cols ?? (errs.length <= 9 ? 3 : 8),
      scale: opts.scale ?? 3,
      title: opts.title ?? `${errs.length} of ${errors.length} errors`,
    });
    if (file) writePng(file, image);
    return image;
  } finally {
    x.dispose();
  }
}

function layerKernel(classifier: Classifier, layer?: string): { name: string; kernel: tf.Tensor } {
  if (!classifier.graph) throw new UnsupportedLayerError(`cannot plot filters: classifier "${classifier.name}" wraps a plain function, not a layered model`);
  const convs = classifier.convLayers();
  const name = layer ?? convs[0];
  if (!name) throw new UnsupportedLayerError(`expected a model with a conv layer to plot filters of; model "${classifier.name}" has none`);
  const node = classifier.node(name);
  if (node.kind !== 'conv2d' && !convs.includes(name) && !(node.kind === 'activation' && convs.includes(node.layerName))) {
    throw new OptionError(`expected a conv layer (${convs.join(', ') || 'none'}); got "${name}" (${node.layerClass})`);
  }
  // the kernel from the executable graph (LayersModels and graph models alike): the conv node of the layer
  const conv = node.params.kernel ? node : classifier.graph.nodes.find((n) => n.layerName === node.layerName && n.params.kernel);
  if (!conv) throw new OptionError(`expected a conv layer (${convs.join(', ') || 'none'}); got "${name}" (${node.layerClass})`);
  return { name: node.layerName, kernel: conv.params.kernel!() };
}

export interface FiltersPlotOptions {
  /** Conv layer (default: the first). */
  layer?: string;
  cols?: number;
  scale?: number;
  inChannel?: 'sum' | 'rgb' | number;
  title?: string;
}

/** The filters of a conv layer (default the first), blue negative and red positive weights. */
export function plotLayerFilters(classifier: Classifier, opts: FiltersPlotOptions = {}): Image {
  const { name, kernel } = layerKernel(classifier, opts.layer);
  return plotFiltersGrid(kernel, {
    cols: opts.cols,
    scale: opts.scale,
    inChannel: opts.inChannel,
    title: opts.title ?? `${name}: ${kernel.shape[3]} filters ${kernel.shape[0]}×${kernel.shape[1]}×${kernel.shape[2]}`,
  });
}

export interface FeatureMapsPlotOptions {
  cols?: number;
  scale?: number;
  maxMaps?: number;
  title?: string;
  normalize?: 'shared' | 'each';
}

/** The feature maps of `layer` for one image x ([1,H,W,C] or [H,W,C]). */
export function plotLayerActivations(classifier: Classifier, x: tf.Tensor, layer: string, opts: FeatureMapsPlotOptions = {}): Image {
  const input = x.rank === 3 ? tf.expandDims(x, 0) : x;
  try {
    if (input.rank !== 4 || input.shape[0] !== 1) {
      throw new InvalidInputError(`expected one image [1, H, W, C] or [H, W, C]; got [${x.shape.join(', ')}]`);
    }
    classifier.validateInput(input, { checkRange: false });
    const acts = classifier.activations(input, [layer]);
    const a = acts.get(layer)!;
    try {
      if (a.rank !== 4) throw new OptionError(`expected a layer with spatial feature maps [1, h, w, c]; "${layer}" gives [${a.shape.join(', ')}]`);
      return plotFeatureMaps(a, { cols: opts.cols, scale: opts.scale, maxMaps: opts.maxMaps, normalize: opts.normalize, title: opts.title ?? `${layer} activations` });
    } finally {
      a.dispose();
    }
  } finally {
    if (input !== x) input.dispose();
  }
}

/**
 * Write the standard set of model plots into `dir`: confusion.png, errors.png, and for CNNs
 * filters.png (first conv layer) and activations-LAYER.png for the first test image. Returns the paths.
 */
export async function writeModelPlots(classifier: Classifier, ds: LabelledImages, evaluation: Evaluation, dir: string): Promise<string[]> {
  const files: string[] = [];
  const classNames = ds.classNames ?? classifier.classNames;
  const cm = path.join(dir, 'confusion.png');
  await plotConfusionMatrix(evaluation.confusion, classNames, cm);
  files.push(cm);
  if (evaluation.errors.length > 0) {
    const f = path.join(dir, 'errors.png');
    plotErrors(ds, evaluation.errors, classNames, f, { max: 9 });
    files.push(f);
  }
  const convs = classifier.graph ? classifier.convLayers() : [];
  if (convs.length > 0) {
    const f = path.join(dir, 'filters.png');
    writePng(f, plotLayerFilters(classifier));
    files.push(f);
    const x = tf.slice(ds.images, 0, 1);
    try {
      for (const layer of convs.slice(0, 2)) {
        const g = path.join(dir, `activations-${layer.replace(/[^A-Za-z0-9_-]/g, '_')}.png`);
        writePng(g, plotLayerActivations(classifier, x, layer));
        files.push(g);
      }
    } finally {
      x.dispose();
    }
  }
  return files;
}
