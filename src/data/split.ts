/** Seeded, stratified train/test splits. */
import { DataError } from '../core/errors.js';
import { createRng, shuffle } from '../util/random.js';

export type SplitName = 'train' | 'test' | 'all';

export interface SplitResult {
  /** Indices into the labels array, in a seeded random order. */
  train: Int32Array;
  test: Int32Array;
  /** All indices in a seeded random order (train and test mixed). */
  all: Int32Array;
}

/**
 * Splits indices 0..N−1 into train and test, stratified per class: the test set holds `testCount`
 * images in total, allotted to the classes in proportion to their sizes (largest remainder, so the
 * total is exact). Same labels + same seed → same split.
 */
export function stratifiedSplit(labels: ArrayLike<number>, numClasses: number, testCount: number, seed: number): SplitResult {
  const n = labels.length;
  if (!Number.isInteger(testCount) || testCount < 0 || testCount > n) {
    throw new DataError(`stratifiedSplit: testCount must be an integer in 0..${n}; got ${testCount}`);
  }
  const perClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (!(l >= 0 && l < numClasses)) throw new DataError(`stratifiedSplit: label ${l} at ${i} outside 0..${numClasses - 1}`);
    perClass[l].push(i);
  }
  // Largest-remainder allocation of testCount over the classes.
  const exact = perClass.map((idx) => (idx.length * testCount) / Math.max(1, n));
  const alloc = exact.map(Math.floor);
  let left = testCount - alloc.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((e, c) => [e - Math.floor(e), c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, c] of byRemainder) {
    if (left <= 0) break;
    if (alloc[c] < perClass[c].length) {
      alloc[c]++;
      left--;
    }
  }
  const rng = createRng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (let c = 0; c < numClasses; c++) {
    const idx = shuffle(perClass[c].slice(), rng);
    test.push(...idx.slice(0, alloc[c]));
    train.push(...idx.slice(alloc[c]));
  }
  shuffle(train, rng);
  shuffle(test, rng);
  const all = shuffle(Array.from({ length: n }, (_, i) => i), rng);
  return { train: Int32Array.from(train), test: Int32Array.from(test), all: Int32Array.from(all) };
}

export interface DataLoadOptions {
  /** 'train' (default), 'test' or 'all'. */
  split?: SplitName;
  /** Seed of the split and of the order (default 0). */
  seed?: number;
  /** Keep only the first `limit` images of the (shuffled) split. */
  limit?: number;
}

export function checkLoadOptions(what: string, opts: DataLoadOptions): Required<Omit<DataLoadOptions, 'limit'>> & { limit?: number } {
  const split = opts.split ?? 'train';
  if (!['train', 'test', 'all'].includes(split)) {
    throw new DataError(`${what}: split must be "train", "test" or "all"; got "${String(split)}"`);
  }
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new DataError(`${what}: seed must be an integer; got ${seed}`);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 0)) {
    throw new DataError(`${what}: limit must be a non-negative integer; got ${opts.limit}`);
  }
  return { split, seed, limit: opts.limit };
}

/** The indices of one split, cut to `limit`. */
export function pickSplit(s: SplitResult, split: SplitName, limit?: number): Int32Array {
  const idx = s[split];
  return limit !== undefined && limit < idx.length ? idx.slice(0, limit) : idx;
}
