/**
 * Many machines: the shards of a job as BullMQ jobs on Redis. `glasswing run --queue URL` enqueues the
 * missing shards (one BullMQ job each, id "<run key>.<shard>", so enqueueing twice adds nothing);
 * `glasswing worker --queue URL` on any machine takes jobs, loads the model named in the job (cached
 * per process) and writes the shard into the shared output folder; `glasswing status` reads the
 * queue's counts, failures and throughput.
 *
 * Fault handling is BullMQ's, plus the shard commit of shard.ts: a failing job is retried with
 * exponential backoff and, after its last attempt, kept in the failed set with its one-line reason;
 * a worker that dies (its lock expires) has its job moved back to the wait list by another worker's
 * stalled-job check; a job that runs twice (taken over while the first worker is still alive, or
 * redone after Redis lost its completion) commits once, because the shard record is created
 * exclusively. Completion is judged by the shard records on disk, not by Redis, so a Redis restart
 * costs at most some repeated work.
 */
// bullmq is loaded on first use, so importing the package (or the local runner) does not load it.
import type { Queue, Worker, Job } from 'bullmq';
import { OptionError } from '../core/errors.js';
import type { Classifier } from '../core/classifier.js';
import { loadJobModel } from './model-source.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { countRecords, readRecord, recordPath } from './manifest.js';
import { runShard, workerName } from './shard.js';
import type { DatasetSpec, JobSpec, ShardSpec } from './spec.js';

export const DEFAULT_QUEUE_NAME = 'glasswing';

/** What one BullMQ job carries: everything a worker on another machine needs, nothing more. */
export interface ShardJobData {
  outDir: string;
  key: string;
  model: string;
  /** For image folders: only this shard's files (offset = shard.start). */
  dataset: DatasetSpec;
  options: Record<string, Record<string, unknown>>;
  target: string;
  batch: number;
  metrics?: string[];
  metricOptions?: Record<string, Record<string, unknown>>;
  shard: ShardSpec;
}

export interface ShardJobResult {
  shard: string;
  outcome: 'written' | 'present';
  rows: number;
  modelMs: number;
  loadMs: number;
  explainMs: number;
  writeMs: number;
  worker: string;
}

/** redis://[user:password@]host:port[/db] → ioredis options (workers wait through outages: no request limit). */
export function redisOptions(url: string): { host: string; port: number; password?: string; username?: string; db?: number; maxRetriesPerRequest: null } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new OptionError(`expected --queue redis://HOST:PORT; got "${url}"`);
  }
  if (u.protocol !== 'redis:') throw new OptionError(`expected --queue redis://HOST:PORT; got "${url}"`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(db !== undefined && Number.isInteger(db) ? { db } : {}),
    maxRetriesPerRequest: null,
  };
}

export interface QueueOptions {
  queueName?: string;
}

export async function openQueue(url: string, opts: QueueOptions = {}): Promise<Queue<ShardJobData, ShardJobResult>> {
  const { Queue } = await import('bullmq');
  return new Queue<ShardJobData, ShardJobResult>(opts.queueName ?? DEFAULT_QUEUE_NAME, { connection: redisOptions(url) });
}

export const jobId = (key: string, shard: Pick<ShardSpec, 'id'>): string => `${key}.${shard.id}`;

/** The job data of one shard (a folder dataset is cut to the shard's files). */
export function shardJobData(outDir: string, spec: JobSpec, shard: ShardSpec): ShardJobData {
  const ds = spec.dataset;
  const dataset: DatasetSpec = ds.kind === 'folder'
    ? { ...ds, files: ds.files!.slice(shard.start, shard.end), labels: ds.labels!.slice(shard.start, shard.end), offset: shard.start }
    : ds;
  return {
    outDir, key: spec.key, model: spec.model, dataset, options: spec.options, target: spec.target, batch: spec.batch, shard,
    ...(spec.metrics ? { metrics: spec.metrics, metricOptions: spec.metricOptions } : {}),
  };
}

export interface EnqueueOptions extends QueueOptions {
  /** Tries per job (default 3). */
  attempts?: number;
  /** First retry delay in ms, doubled each retry (default 2000). */
  backoffMs?: number;
}

/** Adds one job per shard (ids "<key>.<shard>"; BullMQ ignores an id it already holds). */
async function addShardJobs(queue: Queue<ShardJobData, ShardJobResult>, outDir: string, spec: JobSpec, shards: ShardSpec[], opts: EnqueueOptions): Promise<void> {
  const attempts = opts.attempts ?? 3;
  for (let i = 0; i < shards.length; i += 500) {
    await queue.addBulk(shards.slice(i, i + 500).map((shard) => ({
      name: shard.id,
      data: shardJobData(outDir, spec, shard),
      opts: {
        jobId: jobId(spec.key, shard),
        attempts,
        backoff: { type: 'exponential', delay: opts.backoffMs ?? 2000 },
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: false,
      },
    })));
  }
}

/**
 * Enqueues these shards. A shard whose job is still waiting, delayed or active is left alone; one whose
 * job completed or failed earlier (its files since lost, or it failed) gets a fresh job.
 */
export async function enqueueShards(url: string, outDir: string, spec: JobSpec, shards: ShardSpec[], opts: EnqueueOptions = {}): Promise<{ added: number; alreadyQueued: number }> {
  const queue = await openQueue(url, opts);
  try {
    let alreadyQueued = 0;
    const fresh: ShardSpec[] = [];
    for (const shard of shards) {
      const old = await queue.getJob(jobId(spec.key, shard));
      if (old) {
        const state = await old.getState();
        if (state === 'completed' || state === 'failed' || state === 'unknown') await old.remove();
        else {
          alreadyQueued++;
          continue;
        }
      }
      fresh.push(shard);
    }
    await addShardJobs(queue, outDir, spec, fresh, opts);
    return { added: fresh.length, alreadyQueued };
  } finally {
    await queue.close();
  }
}

export interface WorkerOptions extends QueueOptions {
  /** Lock time of a job in ms (default 30 s): a worker silent for that long is presumed dead. */
  lockMs?: number;
  /** How often this worker looks for stalled jobs of dead workers, ms (default 30 s). */
  stalledMs?: number;
  /** Called for each finished or failed job (logging). */
  log?: (line: string) => void;
  /** Compute in a child process (default true); see startWorker. */
  sandbox?: boolean;
}

export interface WorkerHandle {
  worker: Worker<ShardJobData, ShardJobResult>;
  /** Stops taking jobs, lets the running one finish, closes the connection. */
  close(): Promise<void>;
}

/** The first line of an error, so the failed set holds one-line reasons. */
export function oneLine(e: unknown): string {
  const m = e instanceof Error ? `${e.name === 'Error' ? '' : e.name + ': '}${e.message}` : String(e);
  return m.split('\n')[0];
}

const models = new Map<string, Promise<Classifier>>();

/**
 * Runs one shard job: loads the job's model (cached per process by its name or path), then the shard.
 * Any error becomes a one-line Error, the reason BullMQ keeps in the failed set.
 */
export async function processShardJob(d: ShardJobData): Promise<ShardJobResult> {
  try {
    const t0 = performance.now();
    let classifier = models.get(d.model);
    if (!classifier) {
      classifier = loadJobModel(d.model);
      models.set(d.model, classifier);
      classifier.catch(() => models.delete(d.model));
    }
    const c = await classifier;
    const modelMs = performance.now() - t0;
    const r = await runShard({ outDir: d.outDir, spec: d, classifier: c, modelMs }, d.shard);
    return { shard: d.shard.id, outcome: r.outcome, rows: r.record.rows, modelMs: r.record.modelMs, loadMs: r.record.loadMs, explainMs: r.record.explainMs, writeMs: r.record.writeMs, worker: workerName() };
  } catch (e) {
    throw new Error(oneLine(e));
  }
}

/**
 * Starts a BullMQ worker, one job at a time (the backend computes on one thread). By default
 * (`sandbox`) the shards are computed in a child process that BullMQ forks once and reuses, while this
 * process keeps renewing the job's lock: a method that holds the CPU for longer than the lock time
 * (a large batch of a slow method at 224²) is then not mistaken for a dead worker. `sandbox: false`
 * computes in this process (locks are renewed between batches only).
 */
export async function startWorker(url: string, opts: WorkerOptions = {}): Promise<WorkerHandle> {
  const { Worker } = await import('bullmq');
  const log = opts.log ?? (() => undefined);
  const processor = opts.sandbox === false
    ? (job: Job<ShardJobData, ShardJobResult>) => processShardJob(job.data)
    : fileURLToPath(new URL('./sandbox.js', import.meta.url));
  const worker = new Worker<ShardJobData, ShardJobResult>(opts.queueName ?? DEFAULT_QUEUE_NAME, processor, {
    connection: redisOptions(url),
    concurrency: 1,
    lockDuration: opts.lockMs ?? 30_000,
    stalledInterval: opts.stalledMs ?? 30_000,
    maxStalledCount: 2,
  });
  worker.on('completed', (_job, r) => log(`${r.worker} ${r.shard}: ${r.outcome} (${r.rows} images, ${r.explainMs.toFixed(0)} ms)`));
  worker.on('failed', (job, err) => log(`${workerName()} ${job?.data.shard.id ?? '?'}: attempt ${job?.attemptsMade ?? '?'} failed: ${err.message}`));
  // Connection errors repeat every retry while Redis is away: log the first of each minute.
  let lastError = 0;
  worker.on('error', (err) => {
    if (Date.now() - lastError < 60_000) return;
    lastError = Date.now();
    log(`${workerName()} queue error (retrying): ${oneLine(err)}`);
  });
  return { worker, close: () => worker.close() };
}

export interface FailedShard {
  shard: string;
  attempts: number;
  reason: string;
}

/** Failed jobs of this run whose shard is still missing. */
export async function failedShards(queue: Queue<ShardJobData, ShardJobResult>, outDir: string, spec: JobSpec): Promise<FailedShard[]> {
  const out: FailedShard[] = [];
  const failed = await queue.getFailed(0, -1);
  for (const job of failed) {
    if (!job || job.data?.key !== spec.key) continue;
    if (readRecord(outDir, job.data.shard)) continue;
    out.push({ shard: job.data.shard.id, attempts: job.attemptsMade, reason: job.failedReason });
  }
  return out.sort((a, b) => a.shard.localeCompare(b.shard));
}

export interface WaitOptions extends QueueOptions {
  pollMs?: number;
  onProgress?: (doneShards: number, doneImages: number) => void;
  /**
   * Every `everyMs` (default 10 s), give a fresh job to each unfinished shard whose job is gone from
   * Redis (a Redis restarted without persistence, or flushed): no shard waits forever for a job that
   * no longer exists. Failed jobs are not retried here (that is --resume's decision).
   */
  requeue?: EnqueueOptions & { everyMs?: number; onRequeue?: (shards: string[]) => void };
}

/** Adds jobs for the unfinished shards that have no job in Redis at all; returns their ids. */
export async function requeueLost(queue: Queue<ShardJobData, ShardJobResult>, outDir: string, spec: JobSpec, opts: EnqueueOptions = {}): Promise<string[]> {
  const lost: ShardSpec[] = [];
  for (const shard of spec.shards) {
    if (existsSync(recordPath(outDir, shard))) continue;
    if (!(await queue.getJob(jobId(spec.key, shard)))) lost.push(shard);
  }
  if (lost.length) await addShardJobs(queue, outDir, spec, lost, opts);
  return lost.map((s) => s.id);
}

/**
 * Waits until every shard of the run is finished or failed for good, polling the records on disk and
 * the failed set. Redis being away (a restart) only delays the polling; with `requeue`, jobs that a
 * restart lost are given again.
 */
export async function waitForRun(url: string, outDir: string, spec: JobSpec, opts: WaitOptions = {}): Promise<{ done: number; failed: FailedShard[] }> {
  const queue = await openQueue(url, opts);
  const sizes = new Map(spec.shards.map((s) => [s.id, s.end - s.start]));
  let lastCheck = Date.now();
  try {
    for (;;) {
      if (opts.requeue && Date.now() - lastCheck >= (opts.requeue.everyMs ?? 10_000)) {
        lastCheck = Date.now();
        const lost = await requeueLost(queue, outDir, spec, { ...opts.requeue, queueName: opts.queueName });
        if (lost.length) opts.requeue.onRequeue?.(lost);
      }
      const done = countRecords(outDir, spec);
      let images = 0;
      for (const s of spec.shards) if (existsSync(recordPath(outDir, s))) images += sizes.get(s.id)!;
      opts.onProgress?.(done, images);
      const failed = done < spec.shards.length ? await failedShards(queue, outDir, spec) : [];
      if (done + failed.length >= spec.shards.length) return { done, failed };
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
  } finally {
    await queue.close();
  }
}

export interface QueueStatus {
  counts: Record<string, number>;
  workers: number;
  failed: Array<FailedShard & { key: string; outDir: string }>;
  /** Over the completed jobs kept (the last 1,000): images, span from first start to last finish. */
  throughput: { jobs: number; images: number; seconds: number; imagesPerSecond: number; msPerJob: number };
  run?: { key: string; shards: number; done: number };
}

/** Counts, failures and throughput of the queue (and the progress of one run when its spec is given). */
export async function queueStatus(url: string, opts: QueueOptions & { outDir?: string; spec?: JobSpec } = {}): Promise<QueueStatus> {
  const queue = await openQueue(url, opts);
  try {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    const workers = await queue.getWorkersCount();
    const failedJobs = await queue.getFailed(0, 999);
    const failed = failedJobs
      .filter((j) => j && (!opts.spec || j.data?.key === opts.spec.key))
      .map((j) => ({ shard: j.data.shard.id, attempts: j.attemptsMade, reason: j.failedReason, key: j.data.key, outDir: j.data.outDir }));
    const completed = (await queue.getCompleted(0, 999)).filter((j) => j && j.returnvalue && (!opts.spec || j.data?.key === opts.spec.key));
    let images = 0;
    let first = Infinity;
    let last = 0;
    let busy = 0;
    for (const j of completed) {
      images += j.returnvalue.rows;
      first = Math.min(first, j.processedOn ?? Infinity);
      last = Math.max(last, j.finishedOn ?? 0);
      busy += (j.finishedOn ?? 0) - (j.processedOn ?? 0);
    }
    const seconds = completed.length ? (last - first) / 1000 : 0;
    const status: QueueStatus = {
      counts,
      workers,
      failed,
      throughput: { jobs: completed.length, images, seconds, imagesPerSecond: seconds > 0 ? images / seconds : 0, msPerJob: completed.length ? busy / completed.length : 0 },
    };
    if (opts.spec && opts.outDir) status.run = { key: opts.spec.key, shards: opts.spec.shards.length, done: countRecords(opts.outDir, opts.spec) };
    return status;
  } finally {
    await queue.close();
  }
}
