/**
 * How many threads compute: the per-call option (explain's `workers`), else `setWorkers`, else
 * GLASSWING_WORKERS, else the number of cores (Node: os.availableParallelism(); browser:
 * navigator.hardwareConcurrency). The count includes the calling thread: `workers: 2` is the caller
 * plus one pool worker, and `workers: 1` is the in-thread path, unchanged.
 */
import { OptionError } from '../../core/errors.js';

/** Most threads a call may use (a typo such as 1000 fails instead of starting a thousand wasm heaps). */
export const MAX_WORKERS = 64;

let programmatic: number | undefined;
const scoped: number[] = [];
let inWorker = false;
let chunkDepth = 0;
let cores: number | undefined;

/** Validate a worker count from an option or the environment; throws a one-line OptionError. */
export function parseWorkers(value: unknown, what = 'option workers'): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
    throw new OptionError(`expected ${what} to be an integer from 1 to ${MAX_WORKERS}; got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Set the default number of threads for every call (undefined: back to GLASSWING_WORKERS / the core count). */
export function setWorkers(n: number | undefined): void {
  programmatic = n === undefined ? undefined : parseWorkers(n, 'setWorkers(n)');
}

/** Called by the worker entry: inside a pool worker every call runs in its thread. */
export function markWorkerThread(): void {
  inWorker = true;
}

/** Whether this thread is a pool worker. */
export function isWorkerThread(): boolean {
  return inWorker;
}

function envWorkers(): number | undefined {
  const v = typeof process !== 'undefined' ? process.env?.GLASSWING_WORKERS : undefined;
  return v == null || v === '' ? undefined : parseWorkers(v, 'GLASSWING_WORKERS');
}

/** Number of cores of this machine (cached). */
export async function coreCount(): Promise<number> {
  if (cores !== undefined) return cores;
  if (typeof process !== 'undefined' && process.versions?.node) {
    const os = await import('node:os');
    cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  } else {
    cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  }
  cores = Math.max(1, Math.min(MAX_WORKERS, cores));
  return cores;
}

/**
 * Run a chunk in the calling thread's lane of a pool call: work it starts (a base method's own
 * sampling loop) stays in this thread instead of queueing behind the pool's busy workers.
 */
export async function inCallerLane<T>(fn: () => T | Promise<T>): Promise<T> {
  chunkDepth++;
  try {
    return await fn();
  } finally {
    chunkDepth--;
  }
}

/** Threads a call may use now (1 inside a pool worker or a pool chunk). */
export async function requestedWorkers(): Promise<number> {
  if (inWorker || chunkDepth > 0) return 1;
  if (scoped.length > 0) return scoped[scoped.length - 1];
  return programmatic ?? envWorkers() ?? (await coreCount());
}

/**
 * Run fn with this many threads (what explain's `workers` option uses). Like withMemoryBudget, calls
 * awaited concurrently share the innermost setting: await them in turn.
 */
export async function withWorkers<T>(n: number | undefined, fn: () => Promise<T>): Promise<T> {
  if (n === undefined) return fn();
  scoped.push(parseWorkers(n));
  try {
    return await fn();
  } finally {
    scoped.pop();
  }
}
