/**
 * Evaluation — the "test" part of seed 002's framework (`print_test_accuracy`,
 * `plot_confusion_matrix`, `plot_example_errors`): accuracy, confusion matrix, per-class accuracy
 * and the list of misclassified examples with the predicted class and its confidence.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { DataError, OptionError } from '../core/errors.js';
import type { LabelledImages } from './train.js';

export interface EvaluationError {
  /** Index of the image in the dataset. */
  index: number;
  label: number;
  predicted: number;
  /** Softmax probability of the predicted class. */
  confidence: number;
}

export interface Evaluation {
  accuracy: number;
  /** confusion[true][predicted] = count. */
  confusion: number[][];
  /** Correct / total per true class (NaN for a class with no images). */
  perClassAccuracy: number[];
  /** Misclassified images in dataset order. */
  errors: EvaluationError[];
  count: number;
  /** Mean softmax cross-entropy. */
  loss: number;
  timeMs: number;
}

export interface EvaluateOptions {
  batchSize?: number;
  /** Evaluate only the first `limit` images. */
  limit?: number;
}

/** Evaluate a classifier on a labelled dataset. */
export async function evaluate(classifier: Classifier, ds: LabelledImages, opts: EvaluateOptions = {}): Promise<Evaluation> {
  const batchSize = opts.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new OptionError(`expected a positive integer batchSize; got ${batchSize}`);
  const total = ds.images.shape[0];
  if (ds.labels.length !== total) throw new DataError(`expected one label per image (${total}); got ${ds.labels.length}`);
  const n = Math.min(total, opts.limit ?? total);
  const k = classifier.numClasses;
  const [, h, w, c] = ds.images.shape;
  const [eh, ew, ec] = classifier.inputShape;
  if (h !== eh || w !== ew || c !== ec) {
    throw new DataError(`expected images of [${eh}, ${ew}, ${ec}] for classifier "${classifier.name}"; got [${h}, ${w}, ${c}]`);
  }
  for (let i = 0; i < n; i++) {
    const l = ds.labels[i];
    if (!(l >= 0 && l < k)) throw new DataError(`expected labels in 0..${k - 1}; got ${l} at index ${i}`);
  }
  const start = Date.now();
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const errors: EvaluationError[] = [];
  let correct = 0;
  let lossSum = 0;
  for (let i = 0; i < n; i += batchSize) {
    const m = Math.min(batchSize, n - i);
    const probs = tf.tidy(() => tf.softmax(classifier.logits(tf.slice(ds.images, i, m))));
    const p = (await probs.data()) as Float32Array;
    probs.dispose();
    for (let b = 0; b < m; b++) {
      let arg = 0;
      for (let j = 1; j < k; j++) if (p[b * k + j] > p[b * k + arg]) arg = j;
      const label = ds.labels[i + b];
      confusion[label][arg]++;
      lossSum -= Math.log(Math.max(p[b * k + label], 1e-30));
      if (arg === label) correct++;
      else errors.push({ index: i + b, label, predicted: arg, confidence: p[b * k + arg] });
    }
  }
  const perClassAccuracy = confusion.map((row, j) => {
    const s = row.reduce((a, b) => a + b, 0);
    return s === 0 ? NaN : row[j] / s;
  });
  return { accuracy: n === 0 ? NaN : correct / n, confusion, perClassAccuracy, errors, count: n, loss: n === 0 ? NaN : lossSum / n, timeMs: Date.now() - start };
}
