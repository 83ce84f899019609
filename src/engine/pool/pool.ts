/**
 * The worker pool: N − 1 workers beside the calling thread, each with its own backend and a copy of
 * the classifiers it was sent, fed chunk by chunk.
 *
 * Scheduling: a call's chunks are taken in order from one queue by every lane — the calling thread
 * (between its chunks it yields to the event loop so results arrive and workers get their next
 * chunk) and each ready worker (two chunks in flight, so a worker never waits for the caller, whose
 * thread is busy computing its own chunk). Results are handed to the method in chunk order, so its
 * reduction is the one its own loop does. A worker that is still starting (about a second: module
 * loading and the wasm backend) gets no chunk; small calls finish in the caller before it is ready.
 *
 * Failures: an error thrown by a kernel fails the call with the same typed error. A worker that dies
 * (killed, out of memory, uncaught error) fails the calls it was serving with WorkerCrashError and
 * is replaced on the next call — the pool heals. Chunks still in flight on other workers for a failed
 * call are discarded when they arrive; tensors are never left behind in the caller.
 *
 * Workers are unref'd while idle, so a program exits after its last line; `shutdownPool()` stops them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../core/classifier.js';
import { GlasswingError } from '../../core/errors.js';
import { getMemoryBudget } from '../memory.js';
import type { ChunkKernel } from './kernels.js';
import { inCallerLane } from './settings.js';
import { MAX_MODELS_PER_WORKER, type HostMessage, type WorkerMessage } from './protocol.js';
import { modelKey, shipClassifier } from './ship.js';
import type { TransportFactory, WorkerTransport } from './transport.js';
import { decode, decodeError, encode, registerWireError } from './wire.js';

/** A pool worker died while serving this call (the pool replaces it: the next call works). */
export class WorkerCrashError extends GlasswingError {}
registerWireError(WorkerCrashError);

/** Chunks a worker holds at once: one computing, one waiting, so it never idles on the caller. */
const IN_FLIGHT = 2;

interface Pending {
  call: CallState;
  index: number;
}

/** What the pool did in its last call (diagnostics, tests, the bench). */
export interface PoolRunStats {
  kernel: string;
  chunks: number;
  /** Chunks computed by the calling thread. */
  inCaller: number;
  /** Chunks computed by workers. */
  inWorkers: number;
  /** Milliseconds the workers spent computing (inside their kernels), summed. */
  workerMs: number;
  /** Wall time of the call. */
  wallMs: number;
}

interface CallState {
  id: number;
  failed?: unknown;
  stats: PoolRunStats;
  accept(index: number, value: unknown): void;
  fail(err: unknown): void;
  pump(): void;
}

class PoolWorker {
  ready = false;
  dead = false;
  readonly models = new Set<string>();
  readonly calls = new Set<number>();
  /** Calls that ended here whose shared values the worker still holds (told with the next task). */
  ended: number[] = [];
  readonly pending = new Map<number, Pending>();
  readyWaiters: Array<() => void> = [];
  chunksDone = 0;
  constructor(readonly transport: WorkerTransport) {}
}

let transportFactory: TransportFactory | undefined;

/**
 * Use another transport for new workers (a browser Web Worker transport; tests). Running workers are
 * kept until shutdownPool().
 */
export function setPoolTransport(factory: TransportFactory | undefined): void {
  transportFactory = factory;
}

async function defaultTransport(): Promise<TransportFactory> {
  if (transportFactory) return transportFactory;
  if (typeof process !== 'undefined' && process.versions?.node) return (await import('./node-transport.js')).nodeTransport;
  throw new Error('no worker transport for this environment: call setPoolTransport(factory) (see docs/parallel.md)');
}

const yieldToEventLoop = (): Promise<void> => new Promise((r) => (typeof setImmediate === 'function' ? setImmediate(r) : setTimeout(r, 0)));

/** Tensors inside a value (to dispose results nobody will read). */
function disposeDeep(v: unknown): void {
  if (v instanceof tf.Tensor) {
    if (!v.isDisposed) v.dispose();
  } else if (v instanceof Map) v.forEach(disposeDeep);
  else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) Object.values(v).forEach(disposeDeep);
}

export interface PoolRunOptions<S, P, R> {
  kernel: ChunkKernel<S, P, R>;
  shared: S;
  count: number;
  /** Lanes to use: the caller plus lanes − 1 workers. */
  lanes: number;
  /** Wait up to this long for workers that are still starting before the caller takes a chunk (default 0). */
  readyWaitMs?: number;
  /** Chunk i's payload, made when the chunk is handed out (so masks etc. exist only while needed). */
  payload(index: number): P;
  /** Chunk i's result, in chunk order; the result's tensors are the method's. */
  onResult(index: number, result: R): void;
  progress?: (fraction: number) => void;
}

export class WorkerPool {
  private readonly workers: PoolWorker[] = [];
  private nextTask = 1;
  private nextCall = 1;
  private crashes = 0;
  private starting: Promise<void> | undefined;
  /** What the last call did (see PoolRunStats). */
  lastRun: PoolRunStats | undefined;
  /**
   * Why workers cannot run in this process (no transport, the worker script missing, a worker
   * that could not start its backend), once that happened: calls then run in the calling thread.
   */
  unavailable: string | undefined;

  /** Workers started so far (excluding the calling thread). */
  get size(): number {
    return this.workers.length;
  }

  /** Workers that died since the pool started (each was replaced). */
  get crashCount(): number {
    return this.crashes;
  }

  /** Chunks sent to workers and not yet answered. */
  get pendingTasks(): number {
    return this.workers.reduce((a, w) => a + w.pending.size, 0);
  }

  /** Thread ids of the live workers. */
  workerIds(): number[] {
    return this.workers.map((w) => w.transport.id);
  }

  /** Start workers until there are `n` (not waiting for them to be ready). */
  async grow(n: number): Promise<void> {
    while (this.starting) await this.starting;
    if (this.workers.length >= n) return;
    this.starting = (async () => {
      const factory = await defaultTransport();
      while (this.workers.length < n) this.workers.push(this.attach(await factory()));
    })();
    try {
      await this.starting;
    } finally {
      this.starting = undefined;
    }
  }

  /** Start `n` workers and wait until each has its backend up (and has `classifier`, when given). */
  async warm(n: number, classifier?: Classifier): Promise<void> {
    await this.grow(n);
    const ws = this.workers.slice(0, n);
    // An idle worker is unref'd; one being waited for must keep the process alive until it is up
    // (else a program whose next line awaits warm() ends with an unsettled await).
    await Promise.all(ws.map((w) => {
      if (w.ready) return undefined;
      w.transport.setRef(true);
      return new Promise<void>((r) => w.readyWaiters.push(r)).then(() => {
        if (!w.dead) w.transport.setRef(w.pending.size > 0);
      });
    }));
    if (classifier) for (const w of ws) this.ensureModel(w, classifier, modelKey(classifier));
  }

  private attach(transport: WorkerTransport): PoolWorker {
    const w = new PoolWorker(transport);
    transport.onMessage((m) => this.onMessage(w, m));
    transport.onExit((reason) => this.onExit(w, reason));
    // After the listeners: in Node, adding a 'message' listener refs the worker's port again, and a
    // worker that never got a task (still starting when the call ended) would keep the process alive.
    transport.setRef(false);
    return w;
  }

  private onMessage(w: PoolWorker, m: WorkerMessage): void {
    if (m.type === 'ready') {
      w.ready = true;
      w.readyWaiters.splice(0).forEach((r) => r());
      for (const p of new Set([...this.activeCalls])) p.pump();
      return;
    }
    if (m.type === 'fatal') {
      // the same environment would fail the same way: stop starting workers
      this.unavailable = `a pool worker could not start: ${decodeError(m.error).message.split('\n')[0]}`;
      this.onExit(w, `worker thread ${w.transport.id} could not start: ${decodeError(m.error).message}`);
      void w.transport.terminate();
      return;
    }
    const p = w.pending.get(m.id);
    if (!p) return;
    w.pending.delete(m.id);
    if (w.pending.size === 0) w.transport.setRef(false);
    if (m.type === 'result') {
      w.chunksDone++;
      if (p.call.failed !== undefined) return; // discarded: never decoded, so no tensors are made
      p.call.stats.inWorkers++;
      p.call.stats.workerMs += m.ms;
      p.call.accept(p.index, m.value);
    } else p.call.fail(decodeError(m.error));
  }

  private onExit(w: PoolWorker, reason: string, killed = false): void {
    if (w.dead) return;
    // A worker that dies before its backend is up will die again: stop starting workers.
    if (!w.ready && !killed) this.unavailable ??= reason;
    w.dead = true;
    this.crashes++;
    const i = this.workers.indexOf(w);
    if (i >= 0) this.workers.splice(i, 1);
    w.readyWaiters.splice(0).forEach((r) => r());
    const calls = new Set([...w.pending.values()].map((p) => p.call));
    w.pending.clear();
    for (const c of calls) c.fail(new WorkerCrashError(`a pool worker died during this call (${reason}); the pool replaces it: retry the call`));
  }

  /**
   * Kill worker `index` as a crash would (tests, or a worker stuck in a long chunk): the calls it
   * serves fail with WorkerCrashError and the next call starts a new worker.
   */
  async kill(index: number): Promise<void> {
    const w = this.workers[index];
    if (!w) return;
    this.onExit(w, `worker thread ${w.transport.id} was killed`, true);
    await w.transport.terminate();
  }

  /** Free a classifier's copy in every worker (e.g. before disposing a large model). */
  forget(classifier: Classifier): void {
    const key = modelKey(classifier);
    for (const w of this.workers) {
      if (w.models.delete(key)) w.transport.post({ type: 'drop-model', key }, []);
    }
  }

  /** Stop every worker (pending calls fail with WorkerCrashError). */
  async close(): Promise<void> {
    const ws = this.workers.splice(0);
    for (const w of ws) {
      w.dead = true;
      const calls = new Set([...w.pending.values()].map((p) => p.call));
      w.pending.clear();
      for (const c of calls) c.fail(new WorkerCrashError('the worker pool was shut down during this call'));
    }
    await Promise.all(ws.map((w) => w.transport.terminate()));
  }

  private readonly activeCalls = new Set<CallState>();

  private ensureModel(w: PoolWorker, classifier: Classifier, key: string): void {
    if (w.models.has(key)) {
      // most recently used last, as the worker orders its cache on every task
      w.models.delete(key);
      w.models.add(key);
      return;
    }
    // Older versions of this classifier (weights changed since) are replaced, not kept beside it.
    const stem = key.slice(0, key.indexOf('.') + 1);
    for (const k of [...w.models]) {
      if (stem && k.startsWith(stem)) {
        w.models.delete(k);
        w.transport.post({ type: 'drop-model', key: k }, []);
      }
    }
    const transfer: Transferable[] = [];
    w.transport.post({ type: 'model', model: shipClassifier(classifier, key, transfer) }, transfer);
    w.models.add(key);
    // the worker frees its least recently used model past its limit: so does the mirror
    while (w.models.size > MAX_MODELS_PER_WORKER) w.models.delete(w.models.values().next().value as string);
  }

  /** Run `count` chunks over `lanes` lanes (see the module comment); resolves when every result was handed over. */
  async run<S, P, R>(classifier: Classifier, o: PoolRunOptions<S, P, R>): Promise<void> {
    let wanted = this.unavailable ? 0 : Math.max(0, o.lanes - 1);
    try {
      await this.grow(wanted);
    } catch (err) {
      // e.g. the compiled worker script is missing: this call and later ones run in the calling thread
      this.unavailable = err instanceof Error ? err.message.split('\n')[0] : String(err);
      wanted = 0;
    }
    const key = modelKey(classifier);
    const budget = getMemoryBudget();
    const workers = this.workers.slice(0, wanted);
    const starting = workers.filter((w) => !w.ready && !w.dead);
    if (starting.length && (o.readyWaitMs ?? 0) > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(starting.map((w) => new Promise<void>((r) => w.readyWaiters.push(r)))),
        new Promise<void>((r) => (timer = setTimeout(r, o.readyWaitMs))),
      ]);
      clearTimeout(timer);
    }
    const results = new Map<number, R>();
    let nextIndex = 0;
    let delivered = 0;
    let settle!: (err?: unknown) => void;
    const finished = new Promise<void>((resolve, reject) => {
      settle = (err) => (err === undefined ? resolve() : reject(err));
    });
    // awaited below; a failure while the caller's lane still computes must not count as unhandled
    finished.catch(() => undefined);
    let sharedWire: { value: unknown; transfer: Transferable[] } | undefined;
    const call: CallState = {
      id: this.nextCall++,
      failed: undefined,
      stats: { kernel: o.kernel.name, chunks: o.count, inCaller: 0, inWorkers: 0, workerMs: 0, wallMs: 0 },
      accept: (index, value) => {
        results.set(index, decode(value) as R);
        deliver();
      },
      fail: (err) => {
        if (call.failed !== undefined) return;
        call.failed = err;
        for (const r of results.values()) disposeDeep(r);
        results.clear();
        settle(err);
      },
      pump: () => {
        for (const w of workers) {
          // A second chunk in flight only while the queue holds more than one per lane: at the end of
          // the queue a worker must not take the chunk the calling thread is about to compute.
          const limit = () => (o.count - nextIndex > o.lanes ? IN_FLIGHT : 1);
          while (call.failed === undefined && !w.dead && w.ready && nextIndex < o.count && [...w.pending.values()].filter((p) => p.call === call).length < limit()) {
            dispatch(w, nextIndex++);
          }
        }
      },
    };
    const deliver = () => {
      try {
        while (call.failed === undefined && results.has(delivered)) {
          const r = results.get(delivered)!;
          results.delete(delivered);
          o.onResult(delivered, r);
          delivered++;
          o.progress?.(delivered / o.count);
        }
      } catch (err) {
        call.fail(err);
        return;
      }
      if (call.failed === undefined && delivered === o.count) settle();
    };
    const dispatch = (w: PoolWorker, index: number) => {
      try {
        this.ensureModel(w, classifier, key);
        let shared: { value: unknown } | undefined;
        if (!w.calls.has(call.id)) {
          // shared values are encoded once per call and cloned (not transferred) for each worker
          sharedWire ??= { value: encode(o.shared, []), transfer: [] };
          shared = { value: sharedWire.value };
          w.calls.add(call.id);
        }
        const transfer: Transferable[] = [];
        const payload = encode(o.payload(index), transfer, { transferArrays: true });
        const id = this.nextTask++;
        w.pending.set(id, { call, index });
        w.transport.setRef(true);
        const ended = w.ended.length ? w.ended.splice(0) : undefined;
        w.transport.post({ type: 'task', id, call: call.id, kernel: o.kernel.name, model: key, payload, budget, shared, ended }, transfer);
      } catch (err) {
        call.fail(err);
      }
    };
    this.activeCalls.add(call);
    const start = performance.now();
    try {
      call.pump();
      // The calling thread's lane.
      while (call.failed === undefined && nextIndex < o.count) {
        const index = nextIndex++;
        let r: R;
        try {
          r = await inCallerLane(() => o.kernel.run(classifier, o.shared, o.payload(index)));
        } catch (err) {
          call.fail(err);
          break;
        }
        if (call.failed !== undefined) {
          disposeDeep(r);
          break;
        }
        call.stats.inCaller++;
        results.set(index, r);
        deliver();
        call.pump();
        await yieldToEventLoop();
        call.pump();
      }
      if (o.count === 0) settle();
      await finished;
    } finally {
      call.stats.wallMs = performance.now() - start;
      this.lastRun = call.stats;
      this.activeCalls.delete(call);
      for (const w of workers) {
        if (w.calls.delete(call.id) && !w.dead) w.ended.push(call.id);
      }
    }
  }
}

let pool: WorkerPool | undefined;

/** The process's pool (created empty; workers start on first use). */
export function getPool(): WorkerPool {
  pool ??= new WorkerPool();
  return pool;
}

/** Stop the pool's workers; the next parallel call starts new ones. */
export async function shutdownPool(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.close();
}
