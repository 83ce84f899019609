/**
 * `glasswing bench scale`: throughput of a fixed `glasswing run --queue` job with 1, 2 and 4 worker
 * processes on this machine, beside the same job run in-process without a queue, and the queue's
 * overhead per job.
 *
 * The reference is the same shards run in-process (the sum of their loading, explaining and writing
 * times). The job: MNIST test images (1,500; `images` to change) × `method` (gradient) on `model` (mnist-cnn),
 * shards of `shardSize` (100). Workers are real `glasswing worker` processes started before the clock
 * starts (their start-up — Node, wasm, model — is reported apart); the clock runs from enqueueing to
 * the last shard record on disk, after a warm-up job per worker (model and data loaded). Overhead per job = (wall time with one worker − the time the worker
 * spent loading, explaining and writing, from the shard records) / jobs: fetching, locking and
 * completing the job in Redis plus the 20 ms polling of the waiting side.
 *
 * Redis: `queue` (redis://HOST:PORT) or, by default, a private redis-server on a free port in a temp
 * folder (scripts/ensure-redis.sh installs Debian's package when it is missing).
 * Options: workers (1,2,4), images, shardSize, model, method, quick (300 images, 1 and 2 workers).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import { OptionError } from '../src/core/errors.js';
import { buildSpec, runLocal, prepareRun } from '../src/jobs/local.js';
import { enqueueShards, waitForRun } from '../src/jobs/queue.js';
import { scanRun } from '../src/jobs/manifest.js';
import { releaseSplits } from '../src/jobs/source.js';
import { resolveClassifier } from '../src/cli/model-arg.js';
import '../src/attribution/index.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

/** A private redis-server (no persistence: the bench measures the queue, not the disk). */
async function privateRedis(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  if (spawnSync('redis-server', ['--version']).status !== 0) throw new OptionError('expected redis-server on PATH (run scripts/ensure-redis.sh) or --queue redis://HOST:PORT; got neither');
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => new Promise<void>((ok) => {
      proc.once('exit', () => ok());
      proc.kill('SIGTERM');
    }),
  };
}

/** Starts n worker processes and resolves when all wait for jobs. */
async function startWorkers(url: string, n: number, queueName: string): Promise<ChildProcess[]> {
  const procs: ChildProcess[] = [];
  await Promise.all(Array.from({ length: n }, () => new Promise<void>((ok, fail) => {
    const p = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--queue-name', queueName], { env: { ...process.env, GLASSWING_QUIET: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    procs.push(p);
    let log = '';
    p.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('waiting for jobs')) ok();
    });
    p.once('exit', (code) => fail(new Error(`worker exited with ${code}: ${log.split('\n').slice(-3).join(' ')}`)));
  })));
  return procs;
}

async function stopWorkers(procs: ChildProcess[]): Promise<void> {
  await Promise.all(procs.map((p) => new Promise<void>((ok) => {
    if (p.exitCode !== null) return ok();
    p.removeAllListeners('exit');
    p.once('exit', () => ok());
    p.kill('SIGTERM');
  })));
}

registerBenchmark({
  name: 'scale',
  description: 'images/s of a fixed `run --queue` job with 1, 2, 4 worker processes (BullMQ on Redis), and the queue overhead per job',
  async run(options: TaskOptions) {
    const quick = Boolean(options.quick);
    const counts = String(options.workers ?? (quick ? '1,2' : '1,2,4')).split(',').map(Number);
    const images = Number(options.images ?? (quick ? 300 : 1500));
    const shardSize = Number(options.shardSize ?? 100);
    const model = String(options.model ?? 'mnist-cnn');
    const method = String(options.method ?? 'gradient');
    const tmp = mkdtempSync(join(tmpdir(), 'glasswing-bench-scale-'));
    const redis = options.queue ? { url: String(options.queue), stop: async () => undefined } : await privateRedis(tmp);
    const queueName = `bench-scale-${process.pid}`;
    const rows: Array<Record<string, string | number>> = [];
    try {
      const spec = await buildSpec({ model, dataset: 'mnist', split: 'test', limit: images, methods: [method], shardSize });
      const jobs = spec.shards.length;
      const classifier = await resolveClassifier(model);
      // In-process, no queue: the reference throughput.
      // Timed by its shard records (loading, explaining, writing), so the one-off loading of the split and
      // the final index/report are left out as they are for the queue runs.
      const warmLocal = await buildSpec({ model, dataset: 'mnist', split: 'test', limit: 1, methods: [method], shardSize: 1 });
      await runLocal(join(tmp, 'local-warm'), warmLocal, classifier, { label: 'warm-up' });
      await runLocal(join(tmp, 'local'), spec, classifier, { label: 'local' });
      const localS = scanRun(join(tmp, 'local'), spec).done.reduce((a, rec) => a + rec.loadMs + rec.explainMs + rec.metricMs + rec.writeMs, 0) / 1000;
      rows.push({ setup: 'in-process, no queue', workers: 1, images: spec.dataset.size, seconds: localS, images_per_s: spec.dataset.size / localS, speedup: 1, startup_s: 0, overhead_ms_per_job: 0 });
      for (const n of counts) {
        const out = join(tmp, `queue-${n}`);
        const s0 = performance.now();
        const procs = await startWorkers(redis.url, n, queueName);
        const startup = (performance.now() - s0) / 1000;
        try {
          // Warm-up: one 1-image job per worker, so each has loaded the model and the split before the clock starts.
          const warm = await buildSpec({ model, dataset: 'mnist', split: 'test', limit: n, methods: [method], shardSize: 1 });
          const warmOut = join(tmp, `warm-${n}`);
          await enqueueShards(redis.url, warmOut, warm, prepareRun(warmOut, warm).missing, { queueName });
          await waitForRun(redis.url, warmOut, warm, { queueName, pollMs: 20 });
          const state = prepareRun(out, spec);
          const t1 = performance.now();
          await enqueueShards(redis.url, out, spec, state.missing, { queueName });
          const r = await waitForRun(redis.url, out, spec, { queueName, pollMs: 20 });
          const wall = (performance.now() - t1) / 1000;
          if (r.failed.length) throw new Error(`bench scale: ${r.failed.length} shards failed: ${r.failed[0].reason}`);
          const busy = scanRun(out, spec).done.reduce((a, rec) => a + rec.modelMs + rec.loadMs + rec.explainMs + rec.metricMs + rec.writeMs, 0);
          rows.push({
            setup: 'queue',
            workers: n,
            images: spec.dataset.size,
            seconds: wall,
            images_per_s: spec.dataset.size / wall,
            speedup: localS / wall,
            startup_s: startup,
            // With one worker the jobs run back to back: what is not the worker's own work is the queue's.
            overhead_ms_per_job: n === 1 ? Math.max(0, (wall * 1000 - busy) / jobs) : Number.NaN,
          });
        } finally {
          await stopWorkers(procs);
        }
      }
      const json = { model, method, images, shardSize, jobs, cores: cpus().length, loadavg: loadavg()[0], rows };
      return { rows, json };
    } finally {
      releaseSplits();
      await redis.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  },
});
