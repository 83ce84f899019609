/**
 * The browser transport of the worker pool: one Web Worker per pool worker, running the worker bundle
 * dist/browser/glasswing-worker.js (src/engine/pool/worker-browser.ts) — its own wasm backend, Glasswing's
 * kernels, the method modules; the classifier (and the generators of the latent methods) are sent
 * once per worker and cached there by model identity, as with Node's worker_threads.
 *
 *   import { setPoolTransport, browserTransport, setWorkers } from './glasswing.js';
 *   setPoolTransport(browserTransport(new URL('./glasswing-worker.js', import.meta.url)));
 *   setWorkers(navigator.hardwareConcurrency);
 *
 * The worker is a module worker (`type: 'module'`) loaded from the page's own origin; in a
 * cross-origin-isolated page (COOP/COEP) its script must be served with the same headers, which the
 * explorer's server does. A Web Worker has no exit event: an uncaught error or an unreadable message
 * counts as the worker's death (the pool fails its calls with WorkerCrashError and replaces it).
 * `setRef` does nothing: a page has no event loop to keep alive.
 */
import type { TransportFactory, WorkerTransport } from './transport.js';
import type { HostMessage, WorkerMessage } from './protocol.js';

interface WebWorker {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: 'message' | 'error' | 'messageerror', handler: (e: any) => void): void;
  terminate(): void;
}

let nextId = 1;

/**
 * A transport factory for `setPoolTransport`: each call starts a Web Worker on `url` (the worker
 * bundle; `?wasm=FOLDER` in it names where the .wasm files are when they are not beside it).
 */
export function browserTransport(url: string | URL): TransportFactory {
  return () => {
    const Ctor = (globalThis as { Worker?: new (url: string | URL, opts: { type: 'module'; name?: string }) => WebWorker }).Worker;
    if (!Ctor) throw new Error('browserTransport needs Web Workers (globalThis.Worker); in Node the pool uses worker_threads by itself');
    const id = nextId++;
    const worker = new Ctor(url, { type: 'module', name: `glasswing-pool-${id}` });
    let exitHandler: ((reason: string) => void) | undefined;
    let exited = false;
    const exit = (reason: string) => {
      if (exited) return;
      exited = true;
      exitHandler?.(reason);
    };
    worker.addEventListener('error', (e: { message?: string; preventDefault?: () => void }) => {
      e.preventDefault?.();
      exit(`web worker ${id} failed: ${e.message ?? 'script error (could the worker bundle be loaded?)'}`);
    });
    worker.addEventListener('messageerror', () => exit(`web worker ${id} sent a message that could not be read`));
    const t: WorkerTransport = {
      id,
      post: (message: HostMessage, transfer: Transferable[]) => worker.postMessage(message, transfer),
      onMessage: (handler: (message: WorkerMessage) => void) => worker.addEventListener('message', (e: { data: WorkerMessage }) => handler(e.data)),
      onExit: (handler) => {
        exitHandler = handler;
      },
      terminate: async () => {
        exited = true;
        worker.terminate();
      },
      setRef: () => undefined,
    };
    return t;
  };
}
