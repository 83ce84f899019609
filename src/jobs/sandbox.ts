/**
 * The processor file of sandboxed queue workers: BullMQ forks a child process that imports this file
 * and calls its default export once per job (the child is kept for the next job, so the backend and
 * the model cache survive between jobs). The parent `glasswing worker` only talks to Redis, so the
 * job's lock is renewed however long a batch holds this process's CPU.
 */
import { initBackend } from '../engine/backend.js';
import { processShardJob, type ShardJobData, type ShardJobResult } from './queue.js';
import '../attribution/index.js';
import '../counterfactual/index.js';
import '../robustness/index.js';

// A child whose parent died (SIGKILL) would otherwise run on unattended: its job is taken over by
// another worker when the lock expires, and a half-done shard here is never committed.
process.on('disconnect', () => process.exit(1));

// In queue mode the processes are the parallelism (`--concurrency N` forks N of these children, and
// more machines add more): a thread pool per child would start N × cores threads on one machine.
// GLASSWING_WORKERS set by the operator still wins.
if (process.env.GLASSWING_WORKERS == null || process.env.GLASSWING_WORKERS === '') process.env.GLASSWING_WORKERS = '1';

let backend: Promise<unknown> | undefined;

export default async function processShard(job: { data: ShardJobData }): Promise<ShardJobResult> {
  backend ??= initBackend();
  await backend;
  return processShardJob(job.data);
}
