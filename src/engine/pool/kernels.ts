/**
 * Chunk kernels: the unit of work a method hands to the pool.
 *
 * A kernel is a named function (classifier, shared, payload) → result that the caller's thread and
 * every worker can run, because it is registered when the module that defines it loads — on both
 * sides (workers import the method modules). `shared` is what every chunk of one call reads (the
 * input image, the baseline: sent once per worker per call); `payload` is one chunk's part (its
 * interpolation points, noise seeds, masks); the result goes back to the caller, which reduces the
 * results in chunk order exactly as its own loop did, so a call gives the same numbers whatever
 * the number of workers.
 *
 * Payloads and results may hold tensors, typed arrays, arrays and plain objects (see wire.ts);
 * tensors in a result belong to the caller, tensors in `shared`/`payload` to the pool (the kernel must
 * not dispose them).
 */
import type { Classifier } from '../../core/classifier.js';

export interface ChunkKernel<S = unknown, P = unknown, R = unknown> {
  readonly name: string;
  run(classifier: Classifier, shared: S, payload: P): R | Promise<R>;
}

const kernels = new Map<string, ChunkKernel<any, any, any>>();

/** Define (register) a chunk kernel; names are global, e.g. 'integrated-gradients/path'. */
export function defineChunkKernel<S, P, R>(name: string, run: (classifier: Classifier, shared: S, payload: P) => R | Promise<R>): ChunkKernel<S, P, R> {
  if (kernels.has(name)) throw new Error(`chunk kernel "${name}" is already defined`);
  const k: ChunkKernel<S, P, R> = { name, run };
  kernels.set(name, k);
  return k;
}

/** The kernel of this name (workers look kernels up by the name the caller sent). */
export function getChunkKernel(name: string): ChunkKernel<any, any, any> {
  const k = kernels.get(name);
  if (!k) throw new Error(`internal: chunk kernel "${name}" is not defined in this thread (is its method module imported by the worker?)`);
  return k;
}
