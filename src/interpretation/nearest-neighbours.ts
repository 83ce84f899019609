/**
 * Nearest neighbours in a layer's space (seed 004, "Last layer: nearest neighbours"): the dataset
 * images whose activations at a node are closest to a query image's, by L2 distance or cosine
 * distance (1 − cos). Neighbours in pixel space share pixels; neighbours in the last layers share what
 * the network has made of them, so the list shows which images the network treats as alike. The
 * dataset is streamed in batches that fit the memory budget; only the k best per query are kept.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { batchSizeFor } from '../engine/memory.js';
import { imageSource, readBatch, type ImageSet } from './image-source.js';

export interface NearestNeighboursOptions {
  /** A node of the classifier; 'input' for pixel space. */
  layer: string;
  /** 'l2' (default) or 'cosine' (1 − cosine similarity). */
  metric?: 'l2' | 'cosine';
  /** Neighbours per query. Default 5. */
  k?: number;
  /** Dataset images per forward pass, at most. Default 256. */
  batchSize?: number;
}

export interface Neighbour {
  index: number;
  label: number;
  distance: number;
}

/**
 * The k nearest dataset images of each query image in a layer's space (nearest first; ties: lower index).
 *
 * @example
 * const nn = await nearestNeighbours(cnn, query, train, { layer: 'fc1', metric: 'cosine', k: 5 });
 * console.log(nn[0].map((n) => n.index));
 */
export async function nearestNeighbours(classifier: Classifier, queries: tf.Tensor4D, data: ImageSet, opts: NearestNeighboursOptions): Promise<Neighbour[][]> {
  const k = opts.k ?? 5;
  const metric = opts.metric ?? 'l2';
  if (!Number.isInteger(k) || k < 1) throw new OptionError(`expected k a positive integer; got ${k}`);
  if (metric !== 'l2' && metric !== 'cosine') throw new OptionError(`expected metric 'l2' or 'cosine'; got ${String(metric)}`);
  classifier.validateInput(queries, { checkRange: false });
  const pixel = opts.layer === 'input';
  if (!pixel) classifier.node(opts.layer);
  const src = imageSource(data);
  const n = src.size;
  if (n === 0) throw new OptionError('expected a dataset with at least one image; got none');
  const features = (x: tf.Tensor4D): tf.Tensor2D => {
    if (pixel) return tf.reshape(x, [x.shape[0], -1]);
    const a = classifier.activations(x, [opts.layer]).get(opts.layer)!;
    // activations() hands back kept tensors, which no tidy frees: copied and freed by hand.
    const f = tf.reshape(a, [x.shape[0], -1]) as tf.Tensor2D;
    const out = tf.clone(f);
    a.dispose();
    return out;
  };
  const normalise = (f: tf.Tensor2D) => tf.div(f, tf.maximum(tf.norm(f, 2, 1, true), 1e-12)) as tf.Tensor2D;
  const q = tf.tidy(() => (metric === 'cosine' ? normalise(features(queries)) : features(queries)));
  const nq = queries.shape[0];
  const best: Array<Array<{ index: number; distance: number }>> = Array.from({ length: nq }, () => []);
  const bs = batchSizeFor(classifier, 'forward', opts.batchSize ?? 256);
  try {
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const xb = await readBatch(src, s, m, classifier.inputShape);
      const dT = tf.tidy(() => {
        let f = features(xb);
        if (metric === 'cosine') {
          f = normalise(f);
          return tf.sub(1, tf.matMul(q, f, false, true));
        }
        // ‖q − f‖ from the differences themselves (not ‖q‖² − 2q·f + ‖f‖², which rounds): an image's
        // distance to itself is exactly 0.
        const rows = Array.from({ length: nq }, (_, i) => tf.sqrt(tf.sum(tf.square(tf.sub(f, tf.slice(q, i, 1))), 1)));
        return tf.stack(rows);
      });
      xb.dispose();
      const d = (await dT.data()) as Float32Array;
      dT.dispose();
      for (let i = 0; i < nq; i++) {
        const list = best[i];
        for (let j = 0; j < m; j++) {
          const dist = d[i * m + j];
          if (list.length === k && !(dist < list[k - 1].distance)) continue;
          let p = list.length;
          while (p > 0 && list[p - 1].distance > dist) p--;
          list.splice(p, 0, { index: s + j, distance: dist });
          if (list.length > k) list.pop();
        }
      }
    }
  } finally {
    q.dispose();
  }
  return best.map((list) => list.map((b) => ({ index: b.index, label: src.labels[b.index], distance: b.distance })));
}
