/**
 * The images of a job: building the dataset part of a spec from `--dataset`, and loading the images
 * of one shard. MNIST and Fashion-MNIST splits are loaded once per process (the split is seeded, so
 * every worker sees the same order); image folders are listed once by the run and decoded one shard
 * at a time by whoever runs the shard, so a corrupt file fails its shard and nothing else.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError, OptionError } from '../core/errors.js';
import { loadFashionMnist, loadMnist, type Dataset } from '../data/index.js';
import { listImageFolder, readImage } from '../data/image.js';
import type { SplitName } from '../data/split.js';
import type { DatasetSpec, ShardSpec } from './spec.js';

/** `--dataset mnist|fashion|DIR` (+ --split, --limit) → the dataset part of a spec. */
export async function datasetSpec(dataset: string, opts: { split?: string; limit?: number } = {}): Promise<DatasetSpec> {
  const limit = opts.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new OptionError(`expected --limit to be a positive integer; got ${limit}`);
  if (dataset === 'mnist' || dataset === 'fashion') {
    const split = (opts.split ?? 'test') as SplitName;
    if (!['train', 'test', 'all'].includes(split)) throw new OptionError(`expected --split train, test or all; got "${split}"`);
    const ds = await splitDataset(dataset, split);
    return { kind: dataset, split, classNames: ds.classNames, size: Math.min(ds.labels.length, limit ?? Infinity) };
  }
  const dir = resolve(dataset);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new OptionError(`expected --dataset to be mnist, fashion or an image folder; got "${dataset}" (no such folder)`);
  }
  const listing = listImageFolder(dir);
  const n = Math.min(listing.relative.length, limit ?? Infinity);
  return { kind: 'folder', dir, files: listing.relative.slice(0, n), labels: listing.labels.slice(0, n), classNames: listing.classNames, size: n };
}

const splits = new Map<string, Dataset>();

/** The whole split, loaded once per process and kept (workers run many shards of it). */
async function splitDataset(kind: 'mnist' | 'fashion', split: SplitName): Promise<Dataset> {
  const k = `${kind}/${split}`;
  let ds = splits.get(k);
  if (!ds) {
    ds = kind === 'mnist' ? await loadMnist({ split }) : await loadFashionMnist({ split });
    splits.set(k, ds);
  }
  return ds;
}

/** Releases the cached splits (tests check tensor counts). */
export function releaseSplits(): void {
  for (const ds of splits.values()) ds.dispose();
  splits.clear();
}

export interface ShardImages {
  /** [n, H, W, C] in the classifier's value range; the caller disposes it. */
  images: tf.Tensor4D;
  labels: number[];
  /** Stable image ids: "mnist:<index in the package>", "fashion:<index>", or the path in the folder. */
  ids: string[];
}

/** Loads the images of one shard, shaped and scaled for the classifier. */
export async function loadShardImages(
  ds: DatasetSpec,
  shard: ShardSpec,
  inputShape: readonly number[],
  range: [number, number],
): Promise<ShardImages> {
  const n = shard.end - shard.start;
  if (ds.kind === 'folder') {
    if (!ds.dir || !ds.files || !ds.labels) throw new DataError(`job spec: a folder dataset needs dir, files and labels`);
    const a = shard.start - (ds.offset ?? 0);
    const b = shard.end - (ds.offset ?? 0);
    if (a < 0 || b > ds.files.length) throw new DataError(`job spec: shard ${shard.id} needs folder images ${shard.start}..${shard.end - 1}; the spec lists ${ds.offset ?? 0}..${(ds.offset ?? 0) + ds.files.length - 1}`);
    const parts: tf.Tensor3D[] = [];
    try {
      for (let i = a; i < b; i++) parts.push(await readImage(join(ds.dir, ds.files[i]), inputShape, { range }));
      return { images: tf.stack(parts) as tf.Tensor4D, labels: ds.labels.slice(a, b), ids: ds.files.slice(a, b) };
    } finally {
      tf.dispose(parts);
    }
  }
  const full = await splitDataset(ds.kind, ds.split ?? 'test');
  if (shard.end > full.labels.length) throw new DataError(`job spec: shard ${shard.id} needs images up to ${shard.end}; ${full.name} has ${full.labels.length}`);
  const [, h, w, c] = full.images.shape;
  if (h !== inputShape[0] || w !== inputShape[1] || c !== inputShape[2]) {
    throw new OptionError(`expected a model taking ${h}×${w}×${c} images for ${full.name}; the model takes ${inputShape.join('×')}`);
  }
  const images = tf.tidy(() => {
    const x = tf.slice(full.images, [shard.start, 0, 0, 0], [n, -1, -1, -1]);
    // Datasets are in [0, 1]; map onto the classifier's range when it differs.
    return (range[0] === 0 && range[1] === 1 ? x : tf.add(tf.mul(x, range[1] - range[0]), range[0])) as tf.Tensor4D;
  });
  const src = full.sourceIndices;
  return {
    images,
    labels: Array.from(full.labels.subarray(shard.start, shard.end)),
    ids: Array.from({ length: n }, (_, i) => `${ds.kind}:${src ? src[shard.start + i] : shard.start + i}`),
  };
}
