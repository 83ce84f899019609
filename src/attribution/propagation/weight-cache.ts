/**
 * A cache of tensors derived from weights (BatchNorm-folded kernels, w⁺, w⁻, γ-modified kernels…),
 * so repeated explanations reuse the same buffers: cheaper, and XNNPACK (wasm) keeps its packed
 * copy of a filter only while the filter buffer stays the same.
 *
 * An entry is keyed by a string (node, rule, branch) within an owner object (the graph) and is
 * valid while its source tensors keep their data (a training step or setWeights gives a variable a
 * new dataId, which invalidates the entry; the stale tensor is disposed then). Cached tensors are
 * tf.keep'd: they survive tidy and count in tf.memory() until clearWeightCache(); the caches of the
 * least recently used graphs beyond the last four are disposed automatically.
 */
import * as tf from '@tensorflow/tfjs-core';

interface Entry { ids: unknown[]; value: tf.Tensor }
/** Owners in least-recently-used order; at most MAX_OWNERS keep their entries (bounded memory). */
const caches = new Map<object, Map<string, Entry>>();
const MAX_OWNERS = 4;

function sameIds(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The cached tensor for (owner, key) if its sources are unchanged; else compute, keep and store it. */
export function cachedWeight(owner: object, key: string, sources: Array<tf.Tensor | undefined>, compute: () => tf.Tensor): tf.Tensor {
  let cache = caches.get(owner);
  if (cache) {
    caches.delete(owner); // re-insert as most recently used
  } else {
    cache = new Map();
    while (caches.size >= MAX_OWNERS) clearWeightCache(caches.keys().next().value as object);
  }
  caches.set(owner, cache);
  const ids = sources.map((s) => (s ? (s as unknown as { dataId: unknown }).dataId : undefined));
  const hit = cache.get(key);
  if (hit && !hit.value.isDisposed && sameIds(hit.ids, ids)) return hit.value;
  if (hit && !hit.value.isDisposed) hit.value.dispose();
  cache.delete(key);
  const value = tf.tidy(compute);
  // a modifier that passes a source through (w unchanged) is not a derived tensor: never own it
  if (sources.includes(value)) return value;
  cache.set(key, { ids, value: tf.keep(value) });
  return value;
}

/** Dispose cached weights: of one owner (a classifier's graph), or all. */
export function clearWeightCache(owner?: object): void {
  for (const [o, cache] of caches) {
    if (owner && o !== owner) continue;
    for (const e of cache.values()) if (!e.value.isDisposed) e.value.dispose();
    caches.delete(o);
  }
}

/** Number of cached tensors (for tests). */
export function weightCacheSize(): number {
  let n = 0;
  for (const c of caches.values()) n += c.size;
  return n;
}
