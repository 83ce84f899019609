// Worker pool (issue 14 §1): with 2 threads every split gives the 1-thread result (per-sample
// methods identical, sums ≤ 1e-6 relative), graph models go through the pool, function classifiers
// stay in the caller, bad worker counts fail with one line, a killed worker fails its call with a
// typed error and the pool heals, and no tensor is left behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { explain } from '../src/core/registry.js';
import { OptionError } from '../src/core/errors.js';
import '../src/attribution/index.js';
import '../src/attribution/propagation/index.js';
import '../src/counterfactual/index.js';
import { loadDefaultClassifier } from '../src/models/io.js';
import { loadMnist } from '../src/data/mnist.js';
import { exportGraphModel } from '../src/models/graph-model-export.js';
import { getPool, shutdownPool, WorkerCrashError } from '../src/engine/pool/pool.js';
import { planLanes } from '../src/engine/pool/plan.js';
import { requestedWorkers, setWorkers } from '../src/engine/pool/settings.js';
import { getBenchmark } from '../src/tasks/registry.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';
import '../bench/parallel.js';

let clf: Classifier;
let xb: tf.Tensor4D;
let x1: tf.Tensor4D;

beforeAll(async () => {
  await initBackend();
  clf = await loadDefaultClassifier('mnist-cnn');
  const ds = await loadMnist({ split: 'test', limit: 16 });
  xb = ds.images;
  x1 = tf.slice(xb, 0, 1);
  // workers ready before the comparisons, so every split below really reaches a worker
  await getPool().warm(1, clf);
});

afterAll(async () => {
  await shutdownPool();
  tf.dispose([x1, xb]);
});

function countTensors(e: { attribution: tf.Tensor; extras: Record<string, unknown> }): number {
  let k = 1;
  const visit = (v: unknown) => {
    if (v instanceof tf.Tensor) k++;
    else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) Object.values(v).forEach(visit);
  };
  visit(e.extras);
  return k;
}

function relL2(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.norm(tf.sub(a, b)).dataSync()[0] / Math.max(tf.norm(a).dataSync()[0], 1e-30));
}

/** The method with 1 thread and with 2; checks the pool took part; returns the relative L2 difference. */
async function compare(name: string, x: tf.Tensor4D, kernel: string, options: Record<string, unknown> = {}, c = clf): Promise<{ rel: number; maxAbs: number }> {
  const one = await explain(name, c, x, { workers: 1, options });
  // counted after the first call: methods may keep per-model caches (LRP's prepared weights)
  const before = tf.memory().numTensors - countTensors(one);
  getPool().lastRun = undefined;
  const two = await explain(name, c, x, { workers: 2, options });
  const run = getPool().lastRun;
  expect(run?.kernel).toBe(kernel);
  expect(run!.inWorkers).toBeGreaterThan(0);
  expect(run!.inWorkers + run!.inCaller).toBe(run!.chunks);
  expect(two.target).toEqual(one.target);
  expect(two.attribution.shape).toEqual(one.attribution.shape);
  const rel = relL2(one.attribution, two.attribution);
  const maxAbs = tf.tidy(() => tf.max(tf.abs(tf.sub(one.attribution, two.attribution))).dataSync()[0]);
  one.dispose();
  two.dispose();
  expect(tf.memory().numTensors).toBe(before);
  return { rel, maxAbs };
}

describe('pool: 2 threads give the 1-thread results on the MNIST CNN', () => {
  it('single-pass methods split by images (gradient, Grad-CAM with its per-image extra, LRP)', async () => {
    expect((await compare('gradient', xb, 'explain/images')).rel).toBeLessThanOrEqual(1e-6);
    expect((await compare('lrp', xb, 'explain/images')).rel).toBeLessThanOrEqual(1e-6);
    const before = tf.memory().numTensors;
    const cam = await explain('grad-cam', clf, xb, { workers: 2 });
    const ref = await explain('grad-cam', clf, xb, { workers: 1 });
    expect((cam.extras.raw as tf.Tensor).shape[0]).toBe(16);
    expect(relL2(ref.extras.raw as tf.Tensor, cam.extras.raw as tf.Tensor)).toBeLessThanOrEqual(1e-6);
    expect(cam.logits).toEqual(ref.logits);
    cam.dispose();
    ref.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the Captum-parity methods in the image-split table (4 images, the work rule off)', async () => {
    const x4 = tf.slice(xb, 0, 4);
    process.env.GLASSWING_POOL_MIN_MACS = '0';
    try {
      for (const name of ['deeplift-shap', 'layer-integrated-gradients', 'layer-gradient-x-activation', 'neuron-gradient', 'grad-cam-plus-plus', 'layer-cam', 'eigen-cam', 'feature-ablation', 'visual-backprop']) {
        const { rel } = await compare(name, x4, 'explain/images', name === 'layer-integrated-gradients' ? { steps: 8 } : {});
        expect(rel, name).toBeLessThanOrEqual(1e-6);
      }
    } finally {
      delete process.env.GLASSWING_POOL_MIN_MACS;
      x4.dispose();
    }
  });

  it('integrated gradients at batch 1: steps split, ≤ 1e-6 relative', async () => {
    expect((await compare('integrated-gradients', x1, 'integrated-gradients/path')).rel).toBeLessThanOrEqual(1e-6);
  });

  it('SmoothGrad (seeded) at batch 1: identical', async () => {
    expect((await compare('smoothgrad', x1, 'smoothgrad/maps', { seed: 4 })).maxAbs).toBe(0);
  });

  it('occlusion and LIME at batch 1: identical', async () => {
    expect((await compare('occlusion', x1, 'occlusion/scores')).maxAbs).toBe(0);
    expect((await compare('lime', x1, 'lime/logits', { samples: 300, segmentation: 'grid', cellSize: 4 })).maxAbs).toBe(0);
  });

  it('prediction difference (samples drawn in row order) and the contrastive sweep at batch 1', async () => {
    expect((await compare('prediction-difference', x1, 'prediction-difference/logits', { stride: 3, samples: 4 })).maxAbs).toBe(0);
    expect((await compare('contrast', x1, 'contrast/sweep', { weightStep: 0.05 })).rel).toBeLessThanOrEqual(1e-6);
  });

  it('real size: a 224×224×3 MobileNetV2-shaped model (reduced width), batch 2 split by images, IG at batch 1 by steps', async () => {
    const mob = Classifier.fromModel(buildMobileNetV2Shaped({ alpha: 0.35, depth: 1, lastFilters: 64, numClasses: 10, seed: 3 }));
    const x2 = tf.tidy(() => tf.randomUniform([2, 224, 224, 3], 0, 1, 'float32', 5) as tf.Tensor4D);
    const x1m = tf.slice(x2, 0, 1);
    try {
      await getPool().warm(1, mob);
      expect((await compare('gradient', x2, 'explain/images', {}, mob)).rel).toBeLessThanOrEqual(1e-6);
      expect((await compare('lrp', x2, 'explain/images', {}, mob)).rel).toBeLessThanOrEqual(1e-6);
      expect((await compare('integrated-gradients', x1m, 'integrated-gradients/path', { steps: 8, internalBatchSize: 4 }, mob)).rel).toBeLessThanOrEqual(1e-6);
    } finally {
      tf.dispose([x2, x1m]);
      mob.model?.dispose();
    }
  }, 180_000);

  it('a graph model goes through the pool', async () => {
    const art = exportGraphModel(clf.model!);
    const graph = await Classifier.fromGraphModel({ modelJson: art.modelJson, weights: art.shards }, { name: 'graph-mnist' });
    try {
      expect((await compare('gradient', xb, 'explain/images', {}, graph)).rel).toBeLessThanOrEqual(1e-6);
      // the same numbers as the LayersModel it was exported from
      const a = await explain('gradient', graph, xb, { workers: 2 });
      const b = await explain('gradient', clf, xb, { workers: 1 });
      expect(relL2(b.attribution, a.attribution)).toBeLessThanOrEqual(1e-5);
      a.dispose();
      b.dispose();
    } finally {
      getPool().forget(graph);
      graph.dispose();
    }
  });
});

describe('pool: model cache', () => {
  it('more classifiers than a worker keeps, used in turn: evicted ones are sent again', async () => {
    const many = Array.from({ length: 6 }, (_, i) => Classifier.fromModel(clf.model!, { name: `copy${i}` }));
    for (const c of [...many, many[0], many[1]]) {
      getPool().lastRun = undefined;
      const e = await explain('gradient', c, xb, { workers: 2 });
      expect(getPool().lastRun?.inWorkers).toBe(1);
      e.dispose();
    }
    for (const c of many) getPool().forget(c);
  });
});

describe('pool: what stays in the calling thread', () => {
  it('a function classifier runs in the caller (a closure cannot be sent to a worker)', async () => {
    const fn = Classifier.fromFunction((x) => clf.logits(x), { inputShape: [28, 28, 1], numClasses: 10, name: 'fn' });
    const plan = await planLanes(fn, 1000, 'gradient');
    expect(plan.lanes).toBe(1);
    expect(plan.reason).toMatch(/function/);
    getPool().lastRun = undefined;
    const before = tf.memory().numTensors;
    const e = await explain('gradient', fn, xb, { workers: 2 });
    const ref = await explain('gradient', clf, xb, { workers: 1 });
    expect(getPool().lastRun).toBeUndefined();
    expect(relL2(ref.attribution, e.attribution)).toBeLessThanOrEqual(1e-6);
    e.dispose();
    ref.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('small work: a batch-1 gradient is not shipped', async () => {
    const plan = await planLanes(clf, 1, 'gradient');
    expect(plan.lanes).toBe(1);
    getPool().lastRun = undefined;
    const e = await explain('gradient', clf, x1, { workers: 2 });
    expect(getPool().lastRun).toBeUndefined();
    e.dispose();
  });
});

describe('pool: options and faults', () => {
  it('bad worker counts fail with a one-line OptionError', async () => {
    for (const bad of [0, -1, 1.5, 'x', 1000]) {
      const err = await explain('gradient', clf, x1, { workers: bad as number }).catch((e) => e);
      expect(err).toBeInstanceOf(OptionError);
      expect(err.message).toMatch(/^expected option workers to be an integer from 1 to 64; got /);
      expect(err.message).not.toContain('\n');
    }
    expect(() => setWorkers(0)).toThrow(OptionError);
    const saved = process.env.GLASSWING_WORKERS;
    try {
      process.env.GLASSWING_WORKERS = 'many';
      await expect(requestedWorkers()).rejects.toThrow(/GLASSWING_WORKERS/);
      process.env.GLASSWING_WORKERS = '3';
      expect(await requestedWorkers()).toBe(3);
      setWorkers(1);
      expect(await requestedWorkers()).toBe(1);
    } finally {
      setWorkers(undefined);
      if (saved === undefined) delete process.env.GLASSWING_WORKERS;
      else process.env.GLASSWING_WORKERS = saved;
    }
  });

  it('workers that cannot start (worker script missing): the calls run in the calling thread', async () => {
    await shutdownPool();
    const saved = process.env.GLASSWING_POOL_WORKER;
    process.env.GLASSWING_POOL_WORKER = '/nonexistent/node-worker.js';
    try {
      const ref = await explain('gradient', clf, xb, { workers: 1 });
      for (let i = 0; i < 2; i++) {
        const e = await explain('gradient', clf, xb, { workers: 2 });
        expect(relL2(ref.attribution, e.attribution)).toBe(0);
        e.dispose();
        await new Promise((r) => setTimeout(r, 300)); // the worker's failure arrives
      }
      ref.dispose();
      expect(getPool().unavailable).toMatch(/worker/);
      expect((await planLanes(clf, 1000, 'gradient')).reason).toMatch(/no pool workers/);
    } finally {
      if (saved === undefined) delete process.env.GLASSWING_POOL_WORKER;
      else process.env.GLASSWING_POOL_WORKER = saved;
      await shutdownPool();
    }
    await getPool().warm(1, clf);
  });

  it('a worker killed mid-call fails that call with WorkerCrashError; the pool heals and the next call works', async () => {
    const pool = getPool();
    const crashesBefore = pool.crashCount;
    const before = tf.memory().numTensors;
    let killed = false;
    // Kill when a chunk is in a worker (checked at each delivered chunk; a few tries in case every
    // chunk of a call was already answered at that moment).
    for (let attempt = 0; attempt < 4 && !killed; attempt++) {
      const p = explain('integrated-gradients', clf, x1, {
        workers: 2,
        options: { steps: 96, internalBatchSize: 4 }, // 24 chunks: the lanes take them from one queue
        context: {
          progress: () => {
            if (!killed && pool.pendingTasks > 0) {
              killed = true;
              void pool.kill(0);
            }
          },
        },
      });
      const res = await p.then((e) => (e.dispose(), undefined), (e) => e);
      if (killed) {
        expect(res).toBeInstanceOf(WorkerCrashError);
        expect(res.message).toMatch(/pool worker died during this call .*killed.*retry/);
        expect(res.message).not.toContain('\n');
      }
    }
    expect(killed).toBe(true);
    expect(pool.crashCount).toBe(crashesBefore + 1);
    expect(tf.memory().numTensors).toBe(before);
    await pool.warm(1, clf);
    expect((await compare('integrated-gradients', x1, 'integrated-gradients/path')).rel).toBeLessThanOrEqual(1e-6);
  });
});

describe('glasswing bench parallel', () => {
  it('gives one row per method, batch and thread count, with what the pool did', async () => {
    const r = await getBenchmark('parallel').run({ quick: true, methods: 'gradient', workers: '1,2', batches: '16', crossover: false });
    expect(r.rows.map((row) => [row.method, row.batch, row.workers])).toEqual([['gradient', 16, 1], ['gradient', 16, 2]]);
    expect(r.rows[0].split).toBe('in caller');
    expect(r.rows[1].split).toBe('1/1 of 2');
    for (const row of r.rows) expect(Number(row.ms_per_image)).toBeGreaterThan(0);
    expect(r.jsonLines).toHaveLength(2);
  });
});
