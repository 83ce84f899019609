/** Entry of a Node worker_threads pool worker: serveWorker over parentPort (see worker-main.ts). */
import { parentPort } from 'node:worker_threads';
import { serveWorker } from './worker-main.js';
import type { HostMessage } from './protocol.js';

if (!parentPort) throw new Error('node-worker.js is a worker_threads entry; it cannot run as a main script');
const port = parentPort;
serveWorker({
  post: (message, transfer) => port.postMessage(message, transfer as any),
  onMessage: (handler) => port.on('message', (m: HostMessage) => handler(m)),
});
