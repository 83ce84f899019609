/**
 * The transport interface: how the pool talks to one worker, whatever runs it. Node's
 * worker_threads (node-transport.ts) implement it today; a browser Web Worker transport implements
 * the same five members and is handed to the pool with `setPoolTransport` (docs/parallel.md).
 *
 * The worker side is `serveWorker(endpoint)` (worker-main.ts) with an endpoint that posts and
 * receives messages: Node's parentPort, or a Web Worker's `self`.
 */
import type { WorkerMessage, HostMessage } from './protocol.js';

export interface WorkerTransport {
  /** Send a message; buffers in `transfer` are moved to the worker. */
  post(message: HostMessage, transfer: Transferable[]): void;
  /** Messages from the worker. */
  onMessage(handler: (message: WorkerMessage) => void): void;
  /**
   * The worker died (uncaught error, killed, exited): called once with a reason. Every pending call on
   * this worker fails with WorkerCrashError and the pool replaces the worker.
   */
  onExit(handler: (reason: string) => void): void;
  /** Stop the worker now (pool shutdown, or replacing a broken worker). */
  terminate(): Promise<void>;
  /**
   * Whether the worker keeps the process alive. The pool unrefs idle workers so a program exits
   * after its last line, and refs them while a call waits for them.
   */
  setRef(ref: boolean): void;
  /** An id for messages and tests (Node: the thread id). */
  readonly id: number;
}

/** Makes one worker (the pool calls it at start-up and after a crash). */
export type TransportFactory = () => WorkerTransport | Promise<WorkerTransport>;
