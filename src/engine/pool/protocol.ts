/** Messages between the pool (host) and a worker. Values are encoded with wire.ts. */
import type { ShippedClassifier } from './ship.js';
import type { WireError } from './wire.js';

export type HostMessage =
  /** Keep this classifier under its key (sent once per worker and model key). */
  | { type: 'model'; model: ShippedClassifier }
  /** Free a cached classifier. */
  | { type: 'drop-model'; key: string }
  /** What every chunk of call `call` reads (sent before the call's first task on this worker). */
  | { type: 'shared'; call: number; value: unknown }
  /**
   * Run one chunk: kernel(classifier[model], shared[call], payload) under the caller's memory budget.
   * The call's shared value rides on its first task to this worker, and the calls that ended since
   * the last message ride on the next one: one message per chunk (each message wakes a thread,
   * which costs more than the copying on a loaded machine).
   */
  | { type: 'task'; id: number; call: number; kernel: string; model: string; payload: unknown; budget: number; shared?: { value: unknown }; ended?: number[] }
  /** The call is over: free its shared value. */
  | { type: 'end'; call: number };

export type WorkerMessage =
  /** The worker's backend is up (sent once, after start-up). */
  | { type: 'ready'; backend: string }
  | { type: 'result'; id: number; value: unknown; ms: number }
  | { type: 'error'; id: number; error: WireError }
  /** Start-up failed: the worker cannot be used. */
  | { type: 'fatal'; error: WireError };

/**
 * Classifiers a worker keeps (least recently used freed first). The pool mirrors the same LRU from
 * the same message order, so it knows which worker still holds which model without asking.
 */
export const MAX_MODELS_PER_WORKER = 4;
