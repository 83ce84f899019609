export * from './core/index.js';
export { initBackend, currentBackend, type BackendName } from './engine/backend.js';
export { installWasmKernels, uninstallWasmKernels, replacedKernelNames, wasmKernelsInstalled, stockKernelsRequested } from './engine/wasm-kernels/index.js';
export {
  setMemoryBudget, getMemoryBudget, withMemoryBudget, batchSizeFor, footprint, activationBytes, assertFits, availableBudget, parseBytes, formatBytes,
  DEFAULT_MEMORY_BUDGET, WASM_HEAP_LIMIT, FOOTPRINT_SAFETY, type MemoryKind, type Footprint,
} from './engine/memory.js';
export { guardBackend, resetBackend, backendHealthy, isWasmAbort, backendResetCount } from './engine/recovery.js';
export {
  setWorkers, withWorkers, requestedWorkers, getPool, shutdownPool, setPoolTransport, WorkerPool, WorkerCrashError, defineChunkKernel, mapChunks, planLanes,
  chunkSizeFor, forwardMacs, MIN_LANE_MACS, serveWorker, type LanePlan, type ChunkKernel, type WorkerTransport, type TransportFactory, type WorkerEndpoint,
} from './engine/pool/index.js';
export * from './util/random.js';
export * from './util/progress.js';
export * from './tasks/registry.js';
import './attribution/index.js';
import './counterfactual/index.js';
import './robustness/index.js';
export * from './models/index.js';
export * from './generative/index.js';
export * from './data/index.js';
export * from './render/index.js';
export * from './attribution/propagation/index.js';
export * from './conformance/index.js';
export * from './counterfactual/index.js';
export * from './robustness/index.js';
export * from './metrics/index.js';
export * from './interpretation/index.js';
/** Dataset-scale runs (`glasswing run`): spec, shards, manifest, local runner and the BullMQ queue (loaded on first use); see docs/scale.md. */
export * as jobs from './jobs/index.js';
