/**
 * The Node transport: one worker_threads Worker per pool worker, running node-worker.js.
 *
 * The worker runs compiled JavaScript: next to this module when it is itself the compiled file
 * (dist/…), else — when this module is TypeScript run by a loader such as vitest's — the compiled
 * dist/src/engine/pool/node-worker.js of the same checkout (`npm run build` makes it).
 * GLASSWING_POOL_WORKER=/path/to/node-worker.js overrides both.
 *
 * Workers start with GLASSWING_WASM_THREADS=1 (the pool is the parallelism; XNNPACK threads inside
 * each worker would oversubscribe the cores) and GLASSWING_WORKERS=1.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { TransportFactory, WorkerTransport } from './transport.js';
import type { WorkerMessage } from './protocol.js';

/** Where the worker entry is (see the module comment). */
export function nodeWorkerScript(): URL {
  const fromEnv = process.env.GLASSWING_POOL_WORKER;
  if (fromEnv) return pathToFileURL(fromEnv);
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return new URL('./node-worker.js', import.meta.url);
  const dist = here.replace(/([\\/])src([\\/]engine[\\/]pool[\\/])[^\\/]+$/, '$1dist$1src$2node-worker.js');
  if (dist === here || !existsSync(dist)) {
    throw new Error(`the worker pool runs compiled JavaScript: build the package (npm run build) or set GLASSWING_POOL_WORKER; ${dist} is missing`);
  }
  return pathToFileURL(dist);
}

export const nodeTransport: TransportFactory = () => {
  const worker = new Worker(nodeWorkerScript(), {
    env: { ...process.env, GLASSWING_WASM_THREADS: '1', GLASSWING_WORKERS: '1' },
    stdout: false,
    stderr: false,
  });
  let exitHandler: ((reason: string) => void) | undefined;
  let exited = false;
  const exit = (reason: string) => {
    if (exited) return;
    exited = true;
    exitHandler?.(reason);
  };
  worker.on('error', (err) => exit(`worker thread ${worker.threadId} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`));
  worker.on('exit', (code) => exit(`worker thread ${worker.threadId} exited with code ${code}`));
  worker.on('messageerror', (err) => exit(`worker thread ${worker.threadId} sent a message that could not be read: ${String(err)}`));
  const t: WorkerTransport = {
    id: worker.threadId,
    post: (message, transfer) => worker.postMessage(message, transfer as any),
    onMessage: (handler) => worker.on('message', (m: WorkerMessage) => handler(m)),
    onExit: (handler) => {
      exitHandler = handler;
    },
    terminate: async () => {
      exited = true;
      await worker.terminate();
    },
    setRef: (ref) => (ref ? worker.ref() : worker.unref()),
  };
  return t;
};
