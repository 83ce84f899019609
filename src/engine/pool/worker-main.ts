/**
 * The worker side of the pool, independent of what runs it: `serveWorker(endpoint)` starts the
 * backend (with Glasswing's kernels: initBackend runs the same hooks as in the caller), imports the
 * method modules (so every method and chunk kernel is registered), then serves the host's messages
 * one task at a time. Node's entry is node-worker.ts; a browser Worker entry calls serveWorker with
 * `self`.
 *
 * Tasks run one after another (not interleaved at their awaits), so a worker holds one chunk's
 * working set at a time, and the caller's memory budget applies per worker as it would in the
 * caller. Inside a worker the pool is off (setWorkers(1)): methods called by a kernel never fan out
 * again. A wasm abort inside a task is handled like in the caller (guardBackend): the backend is
 * re-created, the cached classifiers' weights restored, and the task fails with BackendResetError.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend.js';
import { withMemoryBudget } from '../memory.js';
import { guardBackend } from '../recovery.js';
import type { Classifier } from '../../core/classifier.js';
import { getChunkKernel } from './kernels.js';
import { markWorkerThread } from './settings.js';
import { receiveClassifier } from './ship.js';
import { decode, encode, encodeError } from './wire.js';
import { MAX_MODELS_PER_WORKER as MAX_MODELS, type HostMessage, type WorkerMessage } from './protocol.js';
import '../../attribution/index.js';
import '../../counterfactual/index.js';
import '../../robustness/index.js';
import './images.js';

export interface WorkerEndpoint {
  post(message: WorkerMessage, transfer: Transferable[]): void;
  onMessage(handler: (message: HostMessage) => void): void;
}


export function serveWorker(endpoint: WorkerEndpoint): void {
  markWorkerThread();
  const models = new Map<string, Classifier>();
  const shared = new Map<number, { value: unknown; tensors: tf.Tensor[] }>();
  /** A model whose message could not be decoded: its tasks fail with this error. */
  const modelErrors = new Map<string, unknown>();
  let ready = false;
  let chain: Promise<void> = initBackend().then(
    (backend) => {
      ready = true;
      endpoint.post({ type: 'ready', backend }, []);
    },
    (err) => endpoint.post({ type: 'fatal', error: encodeError(err) }, []),
  );

  const endCall = (call: number) => {
    const s = shared.get(call);
    if (s) tf.dispose(s.tensors);
    shared.delete(call);
  };

  const handle = async (m: HostMessage): Promise<void> => {
    switch (m.type) {
      case 'model': {
        models.get(m.model.key)?.dispose();
        models.delete(m.model.key);
        try {
          models.set(m.model.key, receiveClassifier(m.model));
        } catch (err) {
          modelErrors.set(m.model.key, err);
          return;
        }
        while (models.size > MAX_MODELS) {
          const [oldest, c] = models.entries().next().value as [string, Classifier];
          c.dispose();
          models.delete(oldest);
        }
        return;
      }
      case 'drop-model':
        models.get(m.key)?.dispose();
        models.delete(m.key);
        return;
      case 'shared': {
        const tensors: tf.Tensor[] = [];
        shared.set(m.call, { value: decode(m.value, tensors), tensors });
        return;
      }
      case 'end':
        endCall(m.call);
        return;
      case 'task': {
        for (const c of m.ended ?? []) endCall(c);
        if (m.shared) {
          const tensors: tf.Tensor[] = [];
          shared.set(m.call, { value: decode(m.shared.value, tensors), tensors });
        }
        const start = performance.now();
        const created: tf.Tensor[] = [];
        try {
          const classifier = models.get(m.model);
          if (!classifier) throw modelErrors.get(m.model) ?? new Error(`internal: model ${m.model} was not sent to this worker`);
          // least recently used last
          models.delete(m.model);
          models.set(m.model, classifier);
          const kernel = getChunkKernel(m.kernel);
          const payload = decode(m.payload, created);
          const sh = shared.get(m.call)?.value;
          const result = await withMemoryBudget(m.budget, () => guardBackend(`chunk "${m.kernel}"`, [classifier], async () => kernel.run(classifier, sh, payload)));
          const transfer: Transferable[] = [];
          const value = encode(result, transfer, { transferArrays: true });
          disposeDeep(result);
          endpoint.post({ type: 'result', id: m.id, value, ms: performance.now() - start }, transfer);
        } catch (err) {
          endpoint.post({ type: 'error', id: m.id, error: encodeError(err) }, []);
        } finally {
          tf.dispose(created);
        }
      }
    }
  };

  endpoint.onMessage((m) => {
    // handle() reports a task's errors itself; nothing else may break the chain
    chain = chain.then(() => (ready ? handle(m) : undefined)).catch(() => undefined);
  });
}

/** Dispose every tensor inside a (kernel result) value. */
function disposeDeep(v: unknown): void {
  if (v instanceof tf.Tensor) {
    if (!v.isDisposed) v.dispose();
  } else if (v instanceof Map) v.forEach(disposeDeep);
  else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) Object.values(v).forEach(disposeDeep);
}
