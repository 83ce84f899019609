/**
 * `glasswing bench parallel`: ms/image of the methods with 1, 2 and 4 threads (the worker pool,
 * docs/parallel.md) at batch 1 and 32 on the MNIST CNN of the peer's shape (conv 32/64 5×5, dense 128:
 * torch_floor.py's mnist_cnn and the shape Captum's figures were taken on; random weights, as the
 * peer's — timing does not depend on training; `--model shipped` uses models/mnist-cnn, which is
 * half as wide, 16/32), plus the crossover rows
 * that set the pool's shipping rule (a gradient at batch 2–16 on the MNIST CNN and at batch 2 on
 * ResNet-18 224², with the rule switched off so the split always happens).
 *
 * Each row: a warm-up call (workers started and the model shipped before the clock), then the median
 * wall time of `explain` over 3 calls (1 when a call takes more than 2 s), per image. `speedup` is
 * the 1-thread time over this row's; `split` says what the pool did (chunks in the workers / in the
 * caller; "in caller" when the rule kept the call in the calling thread). `cpu_ms_per_image` is the
 * process's CPU time (all threads) per image and `cpu_bound_speedup` = lanes (at most 2, the cores
 * here) × the 1-thread CPU time / this row's: the speed-up the split allows on free cores, which a
 * loaded machine cannot show in wall time (Linux's sched_autogroup gives each session an equal share
 * of the CPUs, so a second thread adds no CPU while other sessions are busy). `captum_ms` is Captum 0.8 on
 * the same shape and cores at batch 1 (bench/attribution.ts); at batch 32 the gradient family is
 * compared with PyTorch's forward + input-gradient floor, which `peer` measures in the same minutes
 * (/usr/bin/python3 ../shared/peer/torch_floor.py, when present). `load` is the 1-minute load average.
 *
 * Options: workers (1,2,4), batches (1,32), methods (comma list of labels' methods), quick (workers
 * 1,2; batch 1 and 8; fewer methods), crossover (true), resnet (true: the 224² crossover row), peer
 * (false: run torch_floor.py for the MNIST CNN after the rows).
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { explain } from '../src/core/registry.js';
import { OptionError } from '../src/core/errors.js';
import { loadDefaultClassifier } from '../src/models/io.js';
import { buildConformanceCnn } from '../src/models/architectures.js';
import { buildResNet18 } from '../src/models/resnet.js';
import { loadMnist } from '../src/data/mnist.js';
import { getPool, shutdownPool } from '../src/engine/pool/pool.js';
import { forwardMacs } from '../src/engine/pool/plan.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import '../src/attribution/index.js';
import '../src/attribution/propagation/index.js';

type Case = { label: string; method: string; options: Record<string, unknown>; batches?: number[]; captum?: number; captum32?: number };

const CASES: Case[] = [
  { label: 'gradient', method: 'gradient', options: {}, captum: 2.45, captum32: 1.09 },
  { label: 'saliency', method: 'saliency', options: {}, captum: 2.6 },
  { label: 'gradient-x-input', method: 'gradient-x-input', options: {} },
  { label: 'guided-backprop', method: 'guided-backprop', options: {}, captum: 2.8 },
  { label: 'deconvnet', method: 'deconvnet', options: {} },
  { label: 'grad-cam', method: 'grad-cam', options: {}, captum: 2.1 },
  { label: 'guided-grad-cam', method: 'guided-grad-cam', options: {} },
  { label: 'lrp epsilon-plus-flat', method: 'lrp', options: { composite: 'epsilon-plus-flat' } },
  { label: 'deeplift', method: 'deeplift', options: {}, captum: 9.9, captum32: 4.2 },
  { label: 'integrated-gradients (50 steps)', method: 'integrated-gradients', options: { steps: 50 }, captum: 64 },
  { label: 'smoothgrad (25 samples)', method: 'smoothgrad', options: { samples: 25 }, captum: 49 },
  { label: 'occlusion (4x4, stride 2)', method: 'occlusion', options: { window: 4, stride: 2 }, captum: 89 },
  { label: 'lime (1000 samples)', method: 'lime', options: { samples: 1000 }, batches: [1], captum: 1148 },
];

const QUICK = new Set(['gradient', 'grad-cam', 'integrated-gradients', 'smoothgrad', 'occlusion']);

type Row = {
  model: string; method: string; batch: number; workers: number; backend: string; ms_per_image: number; speedup: number | string;
  /** CPU time of the process (every thread) per image, and the speed-up it allows on free cores: lanes × cpu(1 thread) / cpu(this row). */
  cpu_ms_per_image: number; cpu_bound_speedup: number | string;
  split: string; captum_ms: number | string; ratio: number | string; rss_mb: number; load: number;
};

function list(v: unknown, fallback: number[], what: string): number[] {
  if (v === undefined || v === true) return fallback;
  const out = String(v).split(',').map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1)) throw new OptionError(`expected --${what} as a comma list of positive integers; got "${String(v)}"`);
  return out;
}

const r3 = (v: number) => Number(v.toPrecision(3));

/** Median wall ms of explain (after a warm-up call) and what the pool did in the last timed call. */
async function timeCall(name: string, clf: Classifier, x: tf.Tensor4D, workers: number, options: Record<string, unknown>): Promise<{ ms: number; cpuMs: number; split: string }> {
  const once = async () => {
    getPool().lastRun = undefined;
    const t0 = performance.now();
    const e = await explain(name, clf, x, { workers, options });
    const ms = performance.now() - t0;
    e.dispose();
    return ms;
  };
  const first = await once();
  const times: number[] = [];
  const reps = first > 2000 ? 1 : 3;
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) times.push(await once());
  const c = process.cpuUsage(c0);
  times.sort((a, b) => a - b);
  const run = getPool().lastRun;
  const split = run ? `${run.inWorkers}/${run.inCaller} of ${run.chunks}` : 'in caller';
  return { ms: times[Math.floor(times.length / 2)], cpuMs: (c.user + c.system) / 1000 / reps, split };
}

/** PyTorch's floor on the MNIST CNN shape (forward, forward + input gradient) at batch 1 and 32. */
function torchFloor(script: string): Array<Record<string, unknown>> {
  if (!existsSync(script) || !existsSync('/usr/bin/python3')) return [];
  const dir = resolve(script, '..');
  const r = spawnSync('/usr/bin/python3', [script, '--threads', '2', '--json', '--models', 'mnist_cnn'], { cwd: dir, encoding: 'utf8', timeout: 300_000 });
  const last = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return ((JSON.parse(last) as { rows: Array<Record<string, unknown>> }).rows ?? []).map((row) => ({ ...row, load: r3(loadavg()[0]) }));
  } catch {
    return [];
  }
}

registerBenchmark({
  name: 'parallel',
  description: 'worker pool: ms/image per method with 1, 2 and 4 threads at batch 1 and 32 (MNIST CNN), and the shipping crossover',
  async run(o: TaskOptions) {
    const backend = await initBackend();
    const quick = o.quick === true;
    const workerCounts = list(o.workers, quick ? [1, 2] : [1, 2, 4], 'workers');
    const batches = list(o.batches, quick ? [1, 8] : [1, 32], 'batches');
    const only = typeof o.methods === 'string' ? new Set(o.methods.split(',')) : undefined;
    const cases = CASES.filter((c) => (only ? only.has(c.method) : !quick || QUICK.has(c.method)));
    if (o.model !== undefined && o.model !== 'peer' && o.model !== 'shipped') throw new OptionError(`expected --model peer or shipped; got "${String(o.model)}"`);
    const shippedModel = o.model === 'shipped';
    const clf = shippedModel ? await loadDefaultClassifier('mnist-cnn') : Classifier.fromModel(buildConformanceCnn({ seed: 1 }), { name: 'mnist-cnn 32/64 (peer shape)' });
    const modelName = shippedModel ? 'mnist-cnn' : 'mnist-cnn-32-64';
    const data = await loadMnist({ split: 'test', limit: Math.max(...batches, 16) });
    const rows: Row[] = [];
    const pool = getPool();
    try {
      await pool.warm(Math.max(...workerCounts) - 1, clf);
      for (const batch of batches) {
        const x = tf.slice(data.images, 0, batch);
        for (const c of cases) {
          if (c.batches && !c.batches.includes(batch)) continue;
          let base = 0;
          let baseCpu = 0;
          for (const w of workerCounts) {
            const { ms, cpuMs, split } = await timeCall(c.method, clf, x, w, c.options);
            const per = ms / batch;
            const cpuPer = cpuMs / batch;
            if (w === 1) [base, baseCpu] = [per, cpuPer];
            const lanes = getPool().lastRun ? Math.min(w, getPool().lastRun!.chunks) : 1;
            const captum = batch === 1 ? c.captum : batch === 32 ? c.captum32 : undefined;
            rows.push({
              model: modelName, method: c.label, batch, workers: w, backend, ms_per_image: r3(per), speedup: w === 1 ? 1 : r3(base / per),
              cpu_ms_per_image: r3(cpuPer), cpu_bound_speedup: w === 1 ? 1 : r3((Math.min(lanes, 2) * baseCpu) / cpuPer), split,
              captum_ms: captum ?? '', ratio: captum ? r3(per / captum) : '', rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), load: r3(loadavg()[0]),
            });
          }
        }
        x.dispose();
      }
      // The crossover: the split forced (rule off), 1 vs 2 threads, growing work.
      if (o.crossover !== false && o.crossover !== 'false') {
        const saved = process.env.GLASSWING_POOL_MIN_MACS;
        process.env.GLASSWING_POOL_MIN_MACS = '0';
        try {
          const xr: Array<[string, Classifier, tf.Tensor4D, boolean]> = [];
          for (const b of quick ? [2, 8] : [2, 4, 8, 16]) xr.push([`${modelName} (${r3((forwardMacs(clf) * 3 * b) / 2e6)} M MACs per lane)`, clf, tf.slice(data.images, 0, b), false]);
          let resnet: Classifier | undefined;
          if (!quick && o.resnet !== false && o.resnet !== 'false') {
            resnet = Classifier.fromModel(buildResNet18({ inputShape: [224, 224, 3], numClasses: 1000, seed: 0 }), { name: 'resnet18' });
            xr.push([`resnet18 224² (${r3((forwardMacs(resnet) * 3 * 2) / 2e6)} M MACs per lane)`, resnet, tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 1) as tf.Tensor4D, true]);
            await pool.warm(1, resnet);
          }
          for (const [model, c, x, big] of xr) {
            let base = 0;
            let baseCpu = 0;
            for (const w of [1, 2]) {
              const { ms, cpuMs, split } = await timeCall('gradient', c, x, w, {});
              const per = ms / x.shape[0];
              const cpuPer = cpuMs / x.shape[0];
              if (w === 1) [base, baseCpu] = [per, cpuPer];
              rows.push({
                model: `crossover: ${model}`, method: 'gradient (rule off)', batch: x.shape[0], workers: w, backend, ms_per_image: r3(per),
                speedup: w === 1 ? 1 : r3(base / per), cpu_ms_per_image: r3(cpuPer), cpu_bound_speedup: w === 1 ? 1 : r3((2 * baseCpu) / cpuPer), split, captum_ms: '', ratio: '', rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), load: r3(loadavg()[0]),
              });
            }
            x.dispose();
            if (big) pool.forget(c);
          }
          resnet?.model?.dispose();
        } finally {
          if (saved === undefined) delete process.env.GLASSWING_POOL_MIN_MACS;
          else process.env.GLASSWING_POOL_MIN_MACS = saved;
        }
      }
    } finally {
      data.images.dispose();
      if (!shippedModel) clf.model?.dispose();
      await shutdownPool();
    }
    const peer = o.peer === true || o.peer === 'true' ? torchFloor(resolve(String(o.peerScript ?? '../shared/peer/torch_floor.py'))) : [];
    const batchRows = rows.filter((r) => r.batch === Math.max(...batches) && r.workers === 2 && !r.model.startsWith('crossover'));
    const geo = (v: number[]) => (v.length ? r3(Math.exp(v.reduce((a, b) => a + Math.log(b), 0) / v.length)) : 0);
    const json = {
      backend,
      load: r3(loadavg()[0]),
      speedup_2_workers_largest_batch: geo(batchRows.map((r) => Number(r.speedup))),
      cpu_bound_speedup_2_workers_largest_batch: geo(batchRows.map((r) => Number(r.cpu_bound_speedup))),
      rows,
      torch_floor: peer,
    };
    return { rows: [...rows, ...peer.map((p) => ({ model: `torch ${p.model}`, method: String(p.what), batch: Number(p.batch), workers: Number(p.threads), backend: 'pytorch', ms_per_image: Number(p.ms_per_image), speedup: '', cpu_ms_per_image: 0, cpu_bound_speedup: '', split: '', captum_ms: '', ratio: '', rss_mb: 0, load: Number(p.load) }))], json, jsonLines: [...rows, ...peer] };
  },
});
