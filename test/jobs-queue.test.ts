// `glasswing run --queue` on a real redis-server with real worker processes: equal to the local run,
// a worker killed mid-shard, Redis killed and restarted mid-run, a poisoned job, and --resume.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import { initBackend, loadMnist, encodePng, renderImage } from '../src/index.js';
import { loadDefaultClassifier } from '../src/models/index.js';
import { buildSpec, runLocal, readSpec, scanRun, readIndexRows, releaseSplits, redisOptions, DEFAULT_QUEUE_NAME, type JobSpec } from '../src/jobs/index.js';
import { ensureRedis, TestRedis } from './support/redis.js';

const CLI = resolve(__dirname, '../dist/src/cli/main.js');
const env = { ...process.env, GLASSWING_QUIET: '1' };
let dir: string;
let redis: TestRedis;
const workers: Array<{ proc: ChildProcess; log: string[] }> = [];

function startWorker(): Promise<{ proc: ChildProcess; log: string[] }> {
  const proc = spawn(process.execPath, [CLI, 'worker', '--queue', redis.url, '--lock-ms', '2000', '--stalled-ms', '500', '--stop-ms', '3000'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const w = { proc, log: [] as string[] };
  workers.push(w);
  return new Promise((ok, fail) => {
    proc.stderr!.on('data', (d: Buffer) => {
      w.log.push(d.toString());
      if (d.toString().includes('waiting for jobs')) ok(w);
    });
    proc.once('exit', (code) => fail(new Error(`worker exited with ${code}: ${w.log.join('')}`)));
  });
}

/** Runs the CLI to its end without blocking this process (workers are our children too). */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  return new Promise((ok) => p.once('exit', (code) => ok({ code, stdout, stderr })));
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** Polls `cond` every 10 ms until it holds, `ms` pass, or `stop` (a process that ended early) is set. */
async function until(cond: () => boolean | Promise<boolean>, ms: number, stop: { ended?: boolean } = {}): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond()) && !stop.ended && Date.now() < deadline) await sleep(10);
}

/** A CLI run in the background, with a flag that says when it has ended. */
function background(...args: string[]): { ended?: boolean; result: ReturnType<typeof cli> } {
  const h: { ended?: boolean; result: ReturnType<typeof cli> } = { result: cli(...args) };
  h.result.then(() => (h.ended = true));
  return h;
}

function records(out: string, method = 'gradient'): number {
  try {
    return readdirSync(join(out, 'shards', method)).filter((f) => /\.done\.json$/.test(f)).length;
  } catch {
    return 0;
  }
}

/** Every shard finished exactly once: one record, one .npy and one .jsonl each, rows unique. */
function expectExactlyOnce(out: string, spec: JobSpec): void {
  const state = scanRun(out, spec, { verify: true });
  expect(state.missing.map((s) => s.id)).toEqual([]);
  for (const m of spec.methods) {
    const files = readdirSync(join(out, 'shards', m));
    const shards = spec.shards.filter((s) => s.method === m).length;
    expect(files.filter((f) => f.endsWith('.npy')).length).toBe(shards);
    expect(files.filter((f) => f.endsWith('.jsonl')).length).toBe(shards);
    expect(files.length).toBe(3 * shards);
  }
  const rows = readIndexRows(out, state.done);
  expect(rows.length).toBe(spec.dataset.size * spec.methods.length);
  expect(new Set(rows.map((r) => `${r.method}/${r.position}`)).size).toBe(rows.length);
  expect(readFileSync(join(out, 'index.jsonl'), 'utf8').trim().split('\n').length).toBe(rows.length);
}

/** Shard contents (checksums) of two runs of the same spec. */
function sameOutputs(a: string, b: string, spec: JobSpec): void {
  const x = scanRun(a, spec, { verify: true }).done;
  const y = scanRun(b, spec, { verify: true }).done;
  expect(x.map((r) => [r.shard, r.npy.sha256])).toEqual(y.map((r) => [r.shard, r.npy.sha256]));
  const strip = (rows: ReturnType<typeof readIndexRows>) => rows.map(({ file: _f, timeMs: _t, ...rest }) => rest);
  expect(strip(readIndexRows(a, x))).toEqual(strip(readIndexRows(b, y)));
}

beforeAll(async () => {
  await ensureRedis();
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'glasswing-queue-'));
  redis = await TestRedis.start();
  await Promise.all([startWorker(), startWorker(), startWorker()]);
});

afterAll(async () => {
  releaseSplits();
  await Promise.all(workers.map(async (w) => {
    if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
    const exited = new Promise((ok) => w.proc.once('exit', ok));
    w.proc.kill('SIGTERM');
    const t = setTimeout(() => w.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
  if (redis) rmSync(redis.dir, { recursive: true, force: true });
});

describe('glasswing run --queue (BullMQ on redis-server)', () => {
  it('3 workers finish a 2,000-image job with outputs equal to the local run', async () => {
    const args = ['--model', 'mnist-mlp', '--dataset', 'mnist', '--split', 'all', '--limit', '2000', '--methods', 'gradient,saliency', '--shard-size', '250'];
    const out = join(dir, 'q2000');
    const r = await cli('run', ...args, '--out', out, '--queue', redis.url);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('0 shards finished, 16 enqueued');
    const spec = readSpec(out)!;
    expectExactlyOnce(out, spec);
    const writers = new Set(scanRun(out, spec).done.map((s) => s.worker));
    expect(writers.size).toBeGreaterThanOrEqual(2);
    const local = join(dir, 'local2000');
    const classifier = await loadDefaultClassifier('mnist-mlp');
    const same = await buildSpec({ model: 'mnist-mlp', dataset: 'mnist', split: 'all', limit: 2000, methods: ['gradient', 'saliency'], shardSize: 250 });
    expect(same.key).toBe(spec.key);
    await runLocal(local, same, classifier);
    sameOutputs(out, local, spec);
    const st = await cli('status', '--queue', redis.url, '--out', out, '--json');
    const status = JSON.parse(st.stdout);
    expect(status.run).toEqual({ key: spec.key, shards: 16, done: 16 });
    expect(status.workers).toBe(3);
    expect(status.throughput.images).toBe(4000);
    expect(status.throughput.imagesPerSecond).toBeGreaterThan(0);
  });

  it('a worker killed with SIGKILL mid-shard: its job is taken over and every shard is present exactly once', async () => {
    const out = join(dir, 'kill');
    const args = ['--model', 'mnist-cnn', '--dataset', 'mnist', '--split', 'test', '--methods', 'gradient', '--shard-size', '500', '--out', out, '--queue', redis.url];
    const r = await cli('run', ...args, '--detach');
    expect(r.code, r.stderr).toBe(0);
    const queue = new Queue(DEFAULT_QUEUE_NAME, { connection: redisOptions(redis.url) });
    try {
      // All three shards in hand and none finished: every worker is mid-shard.
      await until(async () => (await queue.getActiveCount()) >= 3, 15_000);
      expect(await queue.getActiveCount()).toBe(3);
      expect(records(out)).toBe(0);
    } finally {
      await queue.close();
    }
    const victim = workers.find((w) => w.proc.exitCode === null)!;
    victim.proc.kill('SIGKILL');
    await startWorker();
    const r2 = await cli('run', '--resume', '--out', out, '--queue', redis.url);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(/\d shards finished, 0 enqueued, \d already queued/);
    const spec = readSpec(out)!;
    expectExactlyOnce(out, spec);
    const local = join(dir, 'kill-local');
    await runLocal(local, spec, await loadDefaultClassifier('mnist-cnn'));
    sameOutputs(out, local, spec);
  });

  it('Redis killed and restarted mid-run (append-only file): the run completes', async () => {
    const out = join(dir, 'redis-restart');
    const run = background('run', '--model', 'mnist-cnn', '--dataset', 'mnist', '--split', 'train', '--limit', '1500', '--methods', 'gradient', '--shard-size', '100', '--out', out, '--queue', redis.url);
    await until(() => records(out) >= 3, 60_000, run);
    expect(records(out), (await Promise.race([run.result, sleep(0)]))?.stderr).toBeGreaterThanOrEqual(3);
    await redis.stop('SIGKILL');
    const atRestart = records(out);
    await sleep(800);
    await redis.up();
    const r = await run.result;
    expect(r.code, r.stderr).toBe(0);
    expect(atRestart).toBeLessThan(15);
    expectExactlyOnce(out, readSpec(out)!);
  });

  it('Redis restarted without its data mid-run: the waiting run gives the lost shards new jobs and completes', async () => {
    const out = join(dir, 'redis-wiped');
    const run = background('run', '--model', 'mnist-cnn', '--dataset', 'mnist', '--split', 'train', '--limit', '1200', '--methods', 'gradient', '--shard-size', '100', '--out', out, '--queue', redis.url, '--requeue-ms', '300');
    await until(() => records(out) >= 2, 60_000, run);
    expect(records(out), (await Promise.race([run.result, sleep(0)]))?.stderr).toBeGreaterThanOrEqual(2);
    await redis.stop('SIGKILL');
    const atRestart = records(out);
    redis.wipe();
    await redis.up();
    const r = await run.result;
    expect(r.code, r.stderr).toBe(0);
    expect(atRestart).toBeLessThan(12);
    expect(r.stderr).toMatch(/\d+ shards had lost their jobs \(Redis restarted without its data\?\); enqueued again/);
    expectExactlyOnce(out, readSpec(out)!);
  });

  it('a poisoned job (corrupt image) lands in the failed set with a one-line reason, the rest completes; --resume redoes exactly it', async () => {
    const folder = join(dir, 'images');
    const ds = await loadMnist({ split: 'test', limit: 60 });
    const names: string[] = [];
    for (let i = 0; i < 60; i++) {
      const cls = join(folder, String(ds.labels[i]));
      mkdirSync(cls, { recursive: true });
      const f = join(cls, `img${String(i).padStart(2, '0')}.png`);
      writeFileSync(f, encodePng(renderImage(ds.images, { index: i })));
      names.push(f);
    }
    ds.dispose();
    const poisoned = names[30];
    const good = readFileSync(poisoned);
    writeFileSync(poisoned, good.subarray(0, 40)); // a truncated PNG
    const out = join(dir, 'poison');
    const r = await cli('run', '--model', 'mnist-mlp', '--dataset', folder, '--methods', 'gradient', '--shard-size', '20', '--out', out, '--queue', redis.url, '--attempts', '2', '--backoff-ms', '100');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/failed gradient-0000\d after 2 attempts: ImageLoadError: cannot decode image ".*\.png": PNG data is truncated/);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^glasswing: OptionError: expected every shard to finish; 1 of 3 failed/);
    expect(records(out)).toBe(2);
    const st = JSON.parse((await cli('status', '--queue', redis.url, '--out', out, '--json')).stdout);
    expect(st.failed.length).toBe(1);
    expect(st.failed[0].reason).toMatch(/^ImageLoadError: cannot decode image ".*": PNG data is truncated \(no IEND chunk\)$/);
    expect(st.run.done).toBe(2);
    writeFileSync(poisoned, good);
    const r2 = await cli('run', '--resume', '--out', out, '--queue', redis.url);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toContain('2 shards finished, 1 enqueued, 0 already queued');
    expectExactlyOnce(out, readSpec(out)!);
  });

  it('workers load a model given by URL (no shared model folder), with results equal to the shipped model run locally', async () => {
    const root = resolve(__dirname, '../models');
    const server = createServer((req, res) => {
      const file = join(root, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
      if (!file.startsWith(root + '/') || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200).end(readFileSync(file));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/mnist-mlp/`;
      const out = join(dir, 'url-model');
      const r = await cli('run', '--model', url, '--dataset', 'mnist', '--limit', '200', '--methods', 'gradient', '--shard-size', '100', '--out', out, '--queue', redis.url);
      expect(r.code, r.stderr).toBe(0);
      const spec = readSpec(out)!;
      expect(spec.model).toBe(url);
      const local = join(dir, 'url-model-local');
      const same = await buildSpec({ model: 'mnist-mlp', dataset: 'mnist', limit: 200, methods: ['gradient'], shardSize: 100 });
      await runLocal(local, same, await loadDefaultClassifier('mnist-mlp'));
      const a = scanRun(out, spec, { verify: true }).done.map((x) => x.npy.sha256);
      expect(a.length).toBe(2);
      expect(a).toEqual(scanRun(local, same, { verify: true }).done.map((x) => x.npy.sha256));
      const bad = await cli('run', '--model', url.replace('mnist-mlp', 'no-such-model'), '--dataset', 'mnist', '--limit', '10', '--methods', 'gradient', '--out', join(dir, 'url-bad'), '--queue', redis.url);
      expect(bad.code).toBe(1);
      expect(bad.stderr.trim().split('\n').at(-1)).toMatch(/^glasswing: ModelLoadError: cannot fetch http:\/\/127\.0\.0\.1:\d+\/no-such-model\/model\.json: HTTP 404$/);
    } finally {
      await new Promise((ok) => server.close(ok));
    }
  });

  it('bench scale measures images/s with worker processes and the overhead per job', async () => {
    const r = await cli('bench', 'scale', '--quick', '--workers', '1', '--images', '200', '--queue', redis.url, '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(j.bench).toBe('scale');
    expect(j.jobs).toBe(2);
    expect(j.rows.map((x: { setup: string; workers: number }) => `${x.setup}/${x.workers}`)).toEqual(['in-process, no queue/1', 'queue/1']);
    for (const row of j.rows) expect(row.images_per_s).toBeGreaterThan(0);
    expect(j.rows[1].overhead_ms_per_job).toBeGreaterThanOrEqual(0);
    expect(j.rows[1].overhead_ms_per_job).toBeLessThan(5000);
  });
});
