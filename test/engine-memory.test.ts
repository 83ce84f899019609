import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  initBackend, Classifier, explain, registerMethod, setMemoryBudget, getMemoryBudget, withMemoryBudget, batchSizeFor, footprint,
  activationBytes, parseBytes, DEFAULT_MEMORY_BUDGET, MemoryBudgetError, BackendResetError, OptionError, backendHealthy,
  backendResetCount, resetBackend, isWasmAbort, deepfool, fgsm, listMethods, loadDefaultClassifier,
} from '../src/index.js';
import { getBenchmark } from '../src/tasks/registry.js';
import '../bench/index.js';
import type { SmokeRow } from '../bench/smoke.js';

beforeAll(async () => {
  expect(await initBackend()).toBe('wasm');
});

afterEach(() => setMemoryBudget(undefined));

function cnn(seed = 1): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.glorotUniform({ seed: seed * 10 + s });
  return tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [12, 12, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1), name: 'c1' }),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2), name: 'c2' }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 5, kernelInitializer: init(3) }),
  ] });
}

/** A classifier that records the batch size of every evaluation, and of those under a gradient tape. */
function recording(model: tfl.LayersModel): { clf: Classifier; sizes: number[]; gradSizes: number[] } {
  const inner = Classifier.fromModel(model);
  const sizes: number[] = [];
  const gradSizes: number[] = [];
  const clf = Classifier.fromFunction((x) => {
    sizes.push(x.shape[0]);
    if ((tf.engine() as unknown as { state: { activeTape: unknown } }).state.activeTape) gradSizes.push(x.shape[0]);
    return inner.logits(x);
  }, { inputShape: [12, 12, 1], numClasses: 5, name: 'recording' });
  return { clf, sizes, gradSizes };
}

/** Tensors an explanation holds (attribution, and tensors among its extras). */
function tensorsOf(e: { attribution: tf.Tensor; extras: Record<string, unknown> }): number {
  let k = 1;
  const visit = (v: unknown): void => {
    if (v instanceof tf.Tensor) k++;
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) Object.values(v).forEach(visit);
  };
  visit(e.extras);
  return k;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(a[i]));
  }
  return num / Math.max(den, 1e-12);
}

describe('memory budget', () => {
  it('parses sizes and layers global, environment and per-call budgets', async () => {
    expect(parseBytes('512MB')).toBe(512 * 2 ** 20);
    expect(parseBytes('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseBytes(1000)).toBe(1000);
    expect(() => parseBytes('lots')).toThrow(OptionError);
    expect(() => parseBytes(-1)).toThrow(OptionError);
    expect(getMemoryBudget()).toBe(DEFAULT_MEMORY_BUDGET);
    process.env.GLASSWING_MEMORY_BUDGET = '300MB';
    try {
      expect(getMemoryBudget()).toBe(300 * 2 ** 20);
      setMemoryBudget('2GB');
      expect(getMemoryBudget()).toBe(2 * 2 ** 30);
      await withMemoryBudget('10MB', async () => {
        expect(getMemoryBudget()).toBe(10 * 2 ** 20);
        await withMemoryBudget(5000, async () => expect(getMemoryBudget()).toBe(5000));
        expect(getMemoryBudget()).toBe(10 * 2 ** 20);
      });
      expect(getMemoryBudget()).toBe(2 * 2 ** 30);
    } finally {
      delete process.env.GLASSWING_MEMORY_BUDGET;
    }
  });

  it('measures a per-sample footprint: gradient above forward above the bare activations', () => {
    const model = cnn();
    const clf = Classifier.fromModel(model);
    const fp = footprint(clf);
    const act = activationBytes(clf)!;
    // 12·12·1 input + 4 conv maps (preact and relu) + pool + 6 maps ×2 + flatten + logits, float32
    expect(act).toBe(4 * (144 + 2 * 144 * 4 + 36 * 4 + 2 * 36 * 6 + 216 + 5));
    expect(fp.forward).toBeGreaterThanOrEqual(act);
    expect(fp.gradient).toBeGreaterThan(fp.forward);
    expect(footprint(clf)).toBe(fp); // cached
    setMemoryBudget(fp.gradient * 3.5);
    expect(batchSizeFor(clf, 'gradient')).toBe(3);
    expect(batchSizeFor(clf, 'gradient', 2)).toBe(2);
    expect(batchSizeFor(clf, 'forward')).toBeGreaterThan(3);
    model.dispose();
  });

  it('fails before any work when not even one sample fits, saying the need and the budget', async () => {
    const model = cnn();
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 12, 12, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    let progressCalls = 0;
    const before = tf.memory().numTensors;
    const err = await explain('integrated-gradients', clf, x, { memoryBudget: 2000, context: { progress: () => progressCalls++ } }).catch((e) => e);
    expect(err).toBeInstanceOf(MemoryBudgetError);
    expect(err.message).toMatch(/needs at least [0-9.]+ kB for a forward and backward pass .* the memory budget is 2 kB/);
    expect(err.budgetBytes).toBe(2000);
    expect(progressCalls).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    // Between the activations' lower bound and the measured need: the measured figure is quoted.
    const fp = footprint(clf);
    const err2 = await explain('gradient', clf, x, { memoryBudget: fp.gradient - 1 }).catch((e) => e);
    expect(err2).toBeInstanceOf(MemoryBudgetError);
    expect(err2.perSampleBytes).toBe(fp.gradient);
    // A forward-only method still fits that budget.
    const ok = await explain('occlusion', clf, x, { memoryBudget: fp.gradient - 1, options: { window: 4, stride: 4 } });
    ok.dispose();
    await expect(explain('gradient', clf, x, { memoryBudget: 'a lot' })).rejects.toThrow(OptionError);
    x.dispose();
    model.dispose();
  });

  it('sizes internal batches from the budget, with the same results as unbatched', async () => {
    const model = cnn(2);
    const { clf, sizes, gradSizes } = recording(model);
    const x = tf.randomUniform([3, 12, 12, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const fp = footprint(clf);
    const small = fp.gradient * 2.5; // two gradient rows per call
    const fwd = Math.floor(small / fp.forward);
    expect(fwd).toBeGreaterThan(2);
    const cases: Array<[string, Record<string, unknown>, 'gradient' | 'forward']> = [
      ['integrated-gradients', { steps: 7 }, 'gradient'],
      ['smoothgrad', { samples: 5 }, 'gradient'],
      ['occlusion', { window: 4, stride: 2 }, 'forward'],
      ['lime', { samples: 40, segmentation: 'grid', cellSize: 4 }, 'forward'],
      ['prediction-difference', { windowSize: 3, padding: 1, stride: 3, samples: 3 }, 'forward'],
      ['gradient', {}, 'gradient'],
      ['weight-saliency', {}, 'gradient'],
      ['fgsm', { epsilon: 0.05 }, 'gradient'],
      ['pgd', { steps: 3, stepSize: 0.02, epsilon: 0.05 }, 'gradient'],
      ['deepfool', { maxIterations: 3 }, 'gradient'],
      ['geosal', { maxIterations: 3 }, 'gradient'],
      ['contrast', { weightStep: 0.1 }, 'forward'],
    ];
    for (const [method, options, kind] of cases) {
      sizes.length = 0;
      gradSizes.length = 0;
      const big = await explain(method, clf, x, { options, memoryBudget: '1GB' });
      const bigMax = Math.max(...(kind === 'gradient' ? gradSizes : sizes));
      sizes.length = 0;
      gradSizes.length = 0;
      const tensors = tf.memory().numTensors;
      const bounded = await explain(method, clf, x, { options, memoryBudget: small });
      expect(Math.max(...sizes), method).toBeLessThanOrEqual(fwd);
      if (kind === 'gradient') expect(Math.max(...gradSizes), method).toBeLessThanOrEqual(2);
      expect(bigMax, method).toBeGreaterThan(kind === 'gradient' ? 2 : fwd);
      const a = await big.attribution.data();
      const b = await bounded.attribution.data();
      // The same computation in other chunks: equal up to float32 summation order.
      expect(maxRelDiff(a, b), method).toBeLessThan(1e-5);
      big.dispose();
      bounded.dispose();
      expect(tf.memory().numTensors, `${method} leaks when chunked`).toBe(tensors - tensorsOf(big));
    }
    x.dispose();
    model.dispose();
  });

  it('runs per-image methods (LRP, Deep Taylor) on chunks of images that fit, merging their extras', async () => {
    const model = cnn(7);
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([5, 12, 12, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
    const small = footprint(clf).gradient * 2.5;
    for (const method of ['lrp', 'deep-taylor', 'grad-cam']) {
      (await explain(method, clf, x)).dispose(); // fills the per-classifier caches (canonized weights)
      const before = tf.memory().numTensors;
      const big = await explain(method, clf, x, { memoryBudget: '1GB' });
      const bounded = await explain(method, clf, x, { memoryBudget: small });
      expect(bounded.attribution.shape).toEqual(big.attribution.shape);
      expect(maxRelDiff(await big.attribution.data(), await bounded.attribution.data()), method).toBeLessThan(1e-5);
      for (const key of ['conservationError', 'relevanceSum', 'outputRelevance']) {
        if (method === 'grad-cam') continue;
        const a = big.extras[key] as number[];
        const b = bounded.extras[key] as number[];
        expect(b.length, key).toBe(5);
        b.forEach((v, i) => expect(v).toBeCloseTo(a[i], 4));
      }
      if (method === 'lrp') expect(bounded.extras.composite).toBe(big.extras.composite);
      big.dispose();
      bounded.dispose();
      expect(tf.memory().numTensors, method).toBe(before);
    }
    x.dispose();
    model.dispose();
  });

  it('runs the latent searches (lse, cdeepex) on chunks of images too, with the same results', async () => {
    const clf = await loadDefaultClassifier('mnist-cnn');
    const x = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 12) as tf.Tensor4D;
    const small = footprint(clf).gradient * 1.5; // one image per chunk
    for (const [method, options] of [['lse', { maxSteps: 15 }], ['cdeepex', { outerSteps: 2, innerSteps: 5 }]] as const) {
      const big = await explain(method, clf, x, { target: 'second', options, memoryBudget: '1GB' });
      const bounded = await explain(method, clf, x, { target: 'second', options, memoryBudget: small });
      expect(maxRelDiff(await big.attribution.data(), await bounded.attribution.data()), method).toBeLessThan(1e-5);
      const key = method === 'lse' ? 'steps' : 'distance';
      expect((bounded.extras[key] as number[]).length, method).toBe(3);
      (bounded.extras[key] as number[]).forEach((v, i) => expect(v).toBeCloseTo((big.extras[key] as number[])[i], 4));
      big.dispose();
      bounded.dispose();
    }
    x.dispose();
  });

  it('bounds direct calls too (fgsm, deepfool) by the global budget', async () => {
    const model = cnn(3);
    const { clf, sizes } = recording(model);
    const x = tf.randomUniform([4, 12, 12, 1], 0, 1, 'float32', 6) as tf.Tensor4D;
    const fp = footprint(clf);
    setMemoryBudget(Math.floor(fp.gradient * 3.5));
    sizes.length = 0;
    const adv = fgsm(clf, x, [0, 1, 2, 3], { epsilon: 0.1 });
    expect(Math.max(...sizes)).toBe(3);
    sizes.length = 0;
    const r = await deepfool(clf, x, { maxIterations: 2 });
    expect(Math.max(...sizes)).toBeLessThanOrEqual(Math.floor(3.5 * fp.gradient / fp.forward));
    r.dispose();
    adv.dispose();
    x.dispose();
    model.dispose();
  });
});

/** A test-only method that breaks the wasm module the way an out-of-memory abort does. */
let sabotageWeights: tf.Tensor[] = [];
registerMethod({
  name: 'test-wasm-abort',
  family: 'attribution',
  description: 'test only: corrupts the wasm heap (static data and the classifier weights), then reads out of bounds',
  signed: true,
  defaults: {},
  memory: 'none',
  run() {
    sabotage(sabotageWeights);
    return { attribution: tf.zeros([1, 1, 1, 1]) as tf.Tensor4D };
  },
});

registerMethod({
  name: 'test-wasm-oom',
  family: 'attribution',
  description: 'test only: asks the wasm heap for more than it can hold',
  signed: true,
  defaults: {},
  memory: 'none',
  run() {
    return { attribution: tf.tidy(() => tf.reshape(tf.fill([1100, 1000, 1000], 1), [1100, 1000, 1000, 1])) as tf.Tensor4D };
  },
});

function sabotage(weights: tf.Tensor[]): void {
  const b = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array }; dataIdMap: { get(id: object): { memoryOffset: number } } };
  const heap = b.wasm.HEAPU8;
  for (const w of weights) heap.fill(0x7f, b.dataIdMap.get(w.dataId).memoryOffset, b.dataIdMap.get(w.dataId).memoryOffset + w.size * 4);
  heap.fill(0xab, 8, 1 << 16);
  const t = tf.ones([4]);
  b.dataIdMap.get(t.dataId).memoryOffset = 0xfffff000;
  tf.add(t, 1);
}

describe('wasm abort recovery', () => {
  it('a corrupted heap is detected; resetBackend heals it and carries every tensor over', async () => {
    const x = tf.tensor1d([1, 2, 3]);
    const b = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } };
    b.wasm.HEAPU8.fill(0xab, 8, 1 << 16);
    expect(backendHealthy()).toBe(false);
    const resets = backendResetCount();
    await resetBackend();
    expect(backendResetCount()).toBe(resets + 1);
    expect(backendHealthy()).toBe(true);
    expect(Array.from(await tf.add(x, 1).data())).toEqual([2, 3, 4]);
    x.dispose();
  });

  it('explain raises BackendResetError for the failing call only; the next call gives the same result', async () => {
    const model = cnn(4);
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([3, 12, 12, 1], 0, 1, 'float32', 8) as tf.Tensor4D;
    const e0 = await explain('integrated-gradients', clf, x, { options: { steps: 5 } });
    const a0 = await e0.attribution.data();
    e0.dispose();
    sabotageWeights = model.weights.map((w) => w.read());
    const tensors = tf.memory().numTensors;
    const err = await explain('test-wasm-abort', clf, x).catch((e) => e);
    expect(err).toBeInstanceOf(BackendResetError);
    expect(err.message).toMatch(/failed inside the wasm backend \(memory access out of bounds\); the backend was re-initialised/);
    expect(isWasmAbort(err.causeError)).toBe(true);
    expect(backendHealthy()).toBe(true);
    // The weights were overwritten with garbage before the abort: they come back from the snapshot.
    const e1 = await explain('integrated-gradients', clf, x, { options: { steps: 5 } });
    expect(Array.from(await e1.attribution.data())).toEqual(Array.from(a0));
    e1.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(tensors + 2);
    sabotageWeights = [];
    x.dispose();
    model.dispose();
  });

  it('a buffer beyond the wasm32 heap (4.4 GB) is caught before anything is written, and recovered', async () => {
    const model = cnn(6);
    const clf = Classifier.fromModel(model);
    const x = tf.randomUniform([2, 12, 12, 1], 0, 1, 'float32', 9) as tf.Tensor4D;
    const e0 = await explain('gradient', clf, x);
    const a0 = Array.from(await e0.attribution.data());
    e0.dispose();
    const err = await explain('test-wasm-oom', clf, x).catch((e) => e);
    expect(err).toBeInstanceOf(BackendResetError);
    expect(err.message).toMatch(/wasm out of memory: malloc of 4\.10 GB failed/);
    const e1 = await explain('gradient', clf, x);
    expect(Array.from(await e1.attribution.data())).toEqual(a0);
    e1.dispose();
    x.dispose();
    model.dispose();
  });

  it('ordinary errors pass through without a reset', async () => {
    const model = cnn(5);
    const clf = Classifier.fromModel(model);
    const x = tf.zeros([1, 12, 12, 1]) as tf.Tensor4D;
    const resets = backendResetCount();
    await expect(explain('occlusion', clf, x, { options: { window: 40 } })).rejects.toThrow(OptionError);
    expect(backendResetCount()).toBe(resets);
    x.dispose();
    model.dispose();
  });
});

describe('smoke: every registered method on a MobileNetV2-shaped and a ResNet-50-shaped model', () => {
  it('runs (or refuses with a typed reason), leaks nothing and leaves the backend healthy', async () => {
    const methods = listMethods().map((d) => d.name).filter((m) => !m.startsWith('test-'));
    const r = await getBenchmark('smoke').run({ quick: true, methods: methods.join(',') });
    const rows = r.json.rows as SmokeRow[];
    expect(new Set(rows.map((row) => row.model))).toEqual(new Set(['mobilenetv2', 'resnet50']));
    for (const row of rows) {
      const label = `${row.model} ${row.method}: ${row.message}`;
      expect(['ok', 'refused'], label).toContain(row.outcome);
      if (row.outcome === 'refused') expect(row.message, label).toMatch(/generator .* makes images 28×28×1, but classifier .* takes 96×96×3: pass option generator, a generator of 96×96×3 images|the default density expert models 28×28×1 MNIST images, but classifier .* takes 96×96×3: pass option expert/);
      expect(row.leakedTensors, label).toBe(0);
      expect(row.healthy, label).toBe(true);
      expect(row.resets, label).toBe(0);
    }
    expect(rows.filter((row) => row.outcome === 'refused').map((row) => row.method).sort()).toEqual(['activation-max-code', 'activation-max-code', 'activation-max-expert', 'activation-max-expert', 'cdeepex', 'cdeepex', 'lae', 'lae', 'lse', 'lse', 'xgems', 'xgems']);
  }, 300_000);
});
