/**
 * Image sources from disk (Node only): a folder of images decoded one batch at a time, and the one
 * switch the CLI, the experiments and the benchmarks use to open "any dataset Glasswing loads" —
 * mnist, fashion(-mnist) or a folder — as an ImageSource. MNIST and Fashion-MNIST are small enough to
 * hold (they are loaded whole); a folder is listed once and decoded per batch, so memory stays bounded
 * by the batch however many photos it holds.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { OptionError } from '../core/errors.js';
import { listImageFolder, readImages, type ImageFolderOptions } from '../data/image.js';
import { loadMnist } from '../data/mnist.js';
import { loadFashionMnist } from '../data/fashion.js';
import type { Classifier } from '../core/classifier.js';
import { imageSource, type ImageSource } from './image-source.js';

export interface FolderSourceOptions extends ImageFolderOptions {
  /** At most this many images (the first in sorted order). */
  limit?: number;
}

/**
 * A folder of images (one sub-folder per class, or all at the top as class 0) as a streamed source of
 * [h, w, c] images in `range` (default [0, 1]; pass the classifier's domain).
 *
 * @example
 * const src = folderSource('photos/', [224, 224, 3], { range: [c.domain.low, c.domain.high] });
 * const r = await topActivations(c, src, { layer: 'block_16_project', channel: 3, percent: 1 });
 */
export function folderSource(dir: string, shape: readonly number[], opts: FolderSourceOptions = {}): ImageSource {
  const listing = listImageFolder(dir, opts);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) throw new OptionError(`expected limit a positive integer; got ${opts.limit}`);
  const n = Math.min(listing.files.length, opts.limit ?? Infinity);
  const files = listing.files.slice(0, n);
  return {
    size: n,
    labels: Int32Array.from(listing.labels.slice(0, n)),
    classNames: listing.classNames,
    read: (start: number, count: number): Promise<tf.Tensor4D> => readImages(files.slice(start, start + count), shape, opts),
  };
}

export interface OpenedSource {
  source: ImageSource;
  /** A short name for titles: "mnist/test", "folder:photos". */
  name: string;
  classNames: string[];
  /** Releases what the source holds (a loaded split's tensor). */
  dispose(): void;
}

/**
 * `mnist`, `fashion` / `fashion-mnist` (split `test` or `train`, first `limit` images) or a folder, as a
 * source for `classifier` (folder images sized and scaled to its input).
 *
 * @example
 * const { source, dispose } = await openImageSource('mnist', cnn, { split: 'test', limit: 1000 });
 */
export async function openImageSource(spec: string, classifier: Classifier, opts: { split?: 'train' | 'test'; limit?: number; seed?: number } = {}): Promise<OpenedSource> {
  const split = opts.split ?? 'test';
  if (split !== 'train' && split !== 'test') throw new OptionError(`expected split test or train; got ${String(split)}`);
  if (spec === 'mnist' || spec === 'fashion' || spec === 'fashion-mnist') {
    const ds = spec === 'mnist' ? await loadMnist({ split, limit: opts.limit, seed: opts.seed }) : await loadFashionMnist({ split, limit: opts.limit, seed: opts.seed });
    const [h, w, c] = classifier.inputShape;
    const [, dh, dw, dc] = ds.images.shape;
    if (dh !== h || dw !== w || dc !== c) {
      ds.dispose();
      throw new OptionError(`dataset ${spec} has ${dh}×${dw}×${dc} images but classifier "${classifier.name}" takes ${h}×${w}×${c}: use a folder of images`);
    }
    return { source: imageSource(ds), name: ds.name, classNames: ds.classNames, dispose: () => ds.dispose() };
  }
  const source = folderSource(spec, classifier.inputShape, { range: [classifier.domain.low, classifier.domain.high], limit: opts.limit });
  return { source, name: `folder:${spec}`, classNames: source.classNames ?? [], dispose: () => undefined };
}
