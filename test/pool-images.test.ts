/**
 * The per-image counterfactual and robustness methods split their batch over the worker pool
 * (Node worker_threads): DeepFool, GeoSal, FGSM, PGD (random start, per-image targets, early stop),
 * CDeepEx, LAE and xGEMs with the shipped VAE (named) and the shipped GAN (an object: Algorithm 2's
 * inversion runs in the workers). On 4 MNIST test digits, 2 threads give exactly the 1-thread
 * result (seeded: identical bits), the pool really ran chunks in a worker, generators are shipped by
 * key (a replaced worker gets the model on a resend), a generator that cannot be shipped keeps the
 * call in the calling thread, and nothing leaks.
 *
 * The workers run the compiled package (dist/): `npm run build` first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { explain } from '../src/core/registry.js';
import type { Classifier } from '../src/core/classifier.js';
import type { Explanation } from '../src/core/explanation.js';
import { footprint, batchSizeFor, withMemoryBudget } from '../src/engine/memory.js';
import { loadDefaultClassifier } from '../src/models/io.js';
import { loadMnist } from '../src/data/mnist.js';
import { loadDefaultGenerator } from '../src/generative/io.js';
import type { Generator } from '../src/generative/types.js';
import { getPool, shutdownPool } from '../src/engine/pool/pool.js';
import { generatorKey, notShippableGenerator } from '../src/engine/pool/ship-generator.js';
import '../src/counterfactual/index.js';
import '../src/robustness/fgsm.js';
import '../src/robustness/pgd.js';

let classifier: Classifier;
let x: tf.Tensor4D;
let gan: Generator;
let vae: Generator;

beforeAll(async () => {
  await initBackend();
  classifier = await loadDefaultClassifier('mnist-cnn');
  const d = await loadMnist({ split: 'test', limit: 4 });
  x = tf.clone(d.images) as tf.Tensor4D;
  d.dispose();
  // Shared, cached objects (not counted as leaks): the generators and the memory footprint.
  vae = await loadDefaultGenerator('mnist-vae-10d');
  gan = await loadDefaultGenerator('mnist-dcgan');
  footprint(classifier);
  // A worker ready before the first call (a starting worker gets no chunk; small calls would finish in the caller).
  await getPool().warm(1, classifier);
}, 120_000);

afterAll(async () => {
  await shutdownPool();
  x?.dispose();
});

/** Everything an explanation holds, as plain numbers (tensors read out). */
function plain(v: unknown): unknown {
  if (v instanceof tf.Tensor) return { shape: v.shape, data: Array.from(v.dataSync()) };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, w]) => [k, plain(w)]));
  return v;
}

function summary(e: Explanation): unknown {
  return plain({ attribution: e.attribution, target: e.target, logits: e.logits, logitsAfter: e.logitsAfter, extras: e.extras });
}

/** Run on 1 thread and on 2; return both summaries and what the pool did on the 2-thread call. */
async function both(method: string, options: Record<string, unknown>, target?: number[] | 'predicted') {
  const before = tf.memory().numTensors;
  const one = await explain(method, classifier, x, { workers: 1, options, target });
  const s1 = summary(one);
  one.dispose();
  getPool().lastRun = undefined;
  const two = await explain(method, classifier, x, { workers: 2, options, target });
  const run = getPool().lastRun;
  const s2 = summary(two);
  two.dispose();
  expect(tf.memory().numTensors, `${method} leaked tensors`).toBe(before);
  return { s1, s2, run };
}

describe('per-image methods across the worker pool', () => {
  const cases: Array<[string, string, Record<string, unknown>, (number[] | 'predicted')?]> = [
    ['deepfool', 'deepfool', {}],
    ['geosal', 'geosal', { maxComparisons: 3 }],
    ['fgsm', 'fgsm', { epsilon: 0.2 }],
    ['pgd (random start)', 'pgd', { steps: 6 }],
    ['pgd (per-image targets, early stop)', 'pgd', { steps: 8, stepSize: 0.05, earlyStop: true }, [0, 1, 2, 3]],
    ['cdeepex (shipped VAE by name)', 'cdeepex', { outerSteps: 15 }],
    ['lae (shipped VAE by name, refined)', 'lae', { maxSteps: 20 }, [1, 2, 3, 5]],
    ['xgems (GAN object: inversion in the workers)', 'xgems', { generator: 'GAN', outerSteps: 8, inversionSteps: 40 }],
  ];
  for (const [label, method, raw, target] of cases) {
    it(`${label}: 2 threads give the 1-thread result exactly`, async () => {
      const options = { ...raw, ...(raw.generator === 'GAN' ? { generator: gan } : {}) };
      const { s1, s2, run } = await both(method, options, target);
      expect(run?.kernel, 'the call went through the pool').toBe('explain/images');
      expect(run!.inWorkers, 'a worker computed a chunk').toBeGreaterThan(0);
      expect(s2).toEqual(s1);
    }, 120_000);
  }

  it('a generator object is sent once per worker by key; a replaced worker gets it again on a resend', async () => {
    const options = { generator: vae, outerSteps: 6 };
    const a = await both('cdeepex', options);
    expect(a.run!.inWorkers).toBeGreaterThan(0);
    const key = generatorKey(vae);
    // the key is stable while the generator's weights keep their buffers
    expect(generatorKey(vae)).toBe(key);
    // the worker that holds it dies; its replacement does not hold the key: MissingGeneratorError → resent with the model
    await getPool().kill(0);
    await getPool().warm(1, classifier);
    const b = await both('cdeepex', options);
    expect(b.run!.inWorkers).toBeGreaterThan(0);
    expect(b.s2).toEqual(b.s1);
    expect(b.s1).toEqual(a.s1);
  }, 120_000);

  it('a generator that cannot be shipped (its own decode function) keeps the call in the calling thread', async () => {
    const wrapped: Generator = {
      kind: 'vae', name: 'wrapped-vae', latentDim: vae.latentDim, outputShape: vae.outputShape, info: {},
      decode: (z) => vae.decode(z), encode: (im) => vae.encode!(im), dispose: () => undefined,
    };
    expect(notShippableGenerator(wrapped)).toMatch(/cannot be sent to another thread/);
    const { s1, s2, run } = await both('cdeepex', { generator: wrapped, outerSteps: 4 });
    expect(run).toBeUndefined();
    expect(s2).toEqual(s1);
  }, 120_000);
});

describe('runAttack across the worker pool', () => {
  it('the ready-made attacks split each batch over the workers (FGSM on 4 digits is too little work): the report equals the 1-thread report', async () => {
    const { runAttack, attacks } = await import('../src/robustness/attack-runner.js');
    const labels = await classifier.predictClasses(x);
    for (const [name, attack] of [['pgd', attacks.pgd({ steps: 5 })], ['fgsm', attacks.fgsm({ epsilon: 0.25 })], ['deepfool', attacks.deepfool()]] as const) {
      const before = tf.memory().numTensors;
      const { msPerImage: _a, ...one } = await runAttack(classifier, x, labels, attack, { name, workers: 1 });
      getPool().lastRun = undefined;
      const { msPerImage: _b, ...two } = await runAttack(classifier, x, labels, attack, { name, workers: 2 });
      if (name === 'fgsm') {
        // 4 digits × one gradient: under the lane plan's least work per lane, so it stays in this thread
        expect(getPool().lastRun, name).toBeUndefined();
      } else {
        expect(getPool().lastRun?.kernel, name).toBe('attack/images');
        expect(getPool().lastRun!.inWorkers, name).toBeGreaterThan(0);
      }
      expect(two, name).toEqual(one);
      expect(tf.memory().numTensors, `${name} leaked tensors`).toBe(before);
    }
  }, 120_000);
});

describe('latent heads across the worker pool', () => {
  it('a head attached to a VAE is a graph classifier: shipped to the workers, LAE on it gives the 1-thread result', async () => {
    const { attachClassifier } = await import('../src/generative/latent-classifier.js');
    const { notShippable } = await import('../src/engine/pool/ship.js');
    const d = await loadMnist({ split: 'train', limit: 300 });
    const head = await attachClassifier(vae, d, { epochs: 2, quiet: true, seed: 3 });
    d.dispose();
    expect(notShippable(head.classifier)).toBeUndefined();
    const before = tf.memory().numTensors;
    // this small model is under the lane plan's least work per lane: ship any splittable work for this call
    process.env.GLASSWING_POOL_MIN_MACS = '0';
    try {
      await getPool().warm(1, head.classifier);
      const options = { generator: vae, maxSteps: 20 };
      const one = await explain('lae', head.classifier, x, { workers: 1, options, target: [1, 2, 3, 5] });
      getPool().lastRun = undefined;
      const two = await explain('lae', head.classifier, x, { workers: 2, options, target: [1, 2, 3, 5] });
      expect(getPool().lastRun?.inWorkers).toBeGreaterThan(0);
      expect(summary(two)).toEqual(summary(one));
      one.dispose();
      two.dispose();
    } finally {
      delete process.env.GLASSWING_POOL_MIN_MACS;
      getPool().forget(head.classifier);
    }
    expect(tf.memory().numTensors).toBe(before);
    head.dispose();
  }, 120_000);
});

describe('split invariance without the pool', () => {
  it("PGD's random start and xGEMs with a GAN (Algorithm 2) do not change when the memory budget cuts the batch", async () => {
    const fp = footprint(classifier);
    // room for about one image's forward + gradient: explain runs the per-image methods image by image
    const budget = Math.ceil(fp.gradient * 1.5);
    expect(await withMemoryBudget(budget, async () => batchSizeFor(classifier, 'gradient', 4))).toBeLessThan(4);
    for (const [method, options] of [['pgd', { steps: 4 }], ['xgems', { generator: gan, outerSteps: 4, inversionSteps: 40 }]] as const) {
      const whole = await explain(method, classifier, x, { workers: 1, options });
      const cut = await explain(method, classifier, x, { workers: 1, options, memoryBudget: budget });
      expect(summary(cut), method).toEqual(summary(whole));
      whole.dispose();
      cut.dispose();
    }
  }, 120_000);
});
