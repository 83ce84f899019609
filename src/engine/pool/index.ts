/**
 * The worker pool under the methods (docs/parallel.md): settings, the pool handle, the chunk API
 * methods use, and the transport interface for other environments.
 */
export { setWorkers, withWorkers, requestedWorkers, parseWorkers, coreCount, isWorkerThread, MAX_WORKERS } from './settings.js';
export { getPool, shutdownPool, setPoolTransport, WorkerPool, WorkerCrashError, type PoolRunOptions, type PoolRunStats } from './pool.js';
export { defineChunkKernel, getChunkKernel, type ChunkKernel } from './kernels.js';
export { mapChunks, type MapChunksOptions } from './map.js';
export { planLanes, chunkSizeFor, forwardMacs, MIN_LANE_MACS, minLaneMacs, type LanePlan, type UnitCost } from './plan.js';
export { modelKey, notShippable, shipClassifier, receiveClassifier, type ShippedClassifier } from './ship.js';
export { serveWorker, type WorkerEndpoint } from './worker-main.js';
export type { WorkerTransport, TransportFactory } from './transport.js';
export type { HostMessage, WorkerMessage } from './protocol.js';
export { imageSplit } from './images.js';
