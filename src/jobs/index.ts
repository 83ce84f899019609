// Dataset-scale jobs: shards, writers, the local runner and the BullMQ/Redis queue (docs/scale.md).
export * from './npy.js';
export * from './spec.js';
export * from './files.js';
export * from './manifest.js';
export * from './source.js';
export * from './shard.js';
export * from './finalize.js';
export * from './local.js';
export * from './queue.js';
export * from './model-source.js';
