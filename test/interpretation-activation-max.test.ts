import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, explain, Classifier, hasDefaultModel, loadDefaultClassifier, getMethod, OptionError } from '../src/index.js';
import { activationMax } from '../src/interpretation/activation-max.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';
import { exportGraphModel } from '../src/models/graph-model-export.js';
import { decodePng } from '../src/render/png.js';
import { runNode } from './support/run-node.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');

const shipped = hasDefaultModel('mnist-cnn');
let cnn: Classifier;

beforeAll(async () => {
  await initBackend();
  if (shipped) cnn = await loadDefaultClassifier('mnist-cnn');
});

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

describe.skipIf(!shipped)('activation-max on the shipped mnist-cnn', () => {
  it('class prototypes reach a high probability, the trace rises, values stay in [0, 1], no leaks', async () => {
    const before = tf.memory().numTensors;
    const classes = [0, 3, 7];
    const r = await activationMax(cnn, classes.map((c) => ({ class: c })), { steps: 40, learningRate: 0.05, lambda: 0.01 });
    classes.forEach((c, i) => {
      expect(r.probabilities[i][c]).toBeGreaterThan(0.9);
      expect(r.trace[i]).toHaveLength(40);
      // From the noisy grey start (p(c) well below 1) up to almost log 1 = 0.
      expect(r.trace[i][0]).toBeLessThan(-0.5);
      expect(mean(r.trace[i].slice(-5))).toBeGreaterThan(r.trace[i][0] + 0.5);
      expect(mean(r.trace[i].slice(-5))).toBeGreaterThan(-0.05);
      // The final objective is log p(c|x) of the final prototype.
      expect(r.objective[i]).toBeCloseTo(Math.log(r.probabilities[i][c]), 3);
    });
    const [lo, hi] = [tf.min(r.prototypes), tf.max(r.prototypes)];
    expect(lo.dataSync()[0]).toBeGreaterThanOrEqual(0);
    expect(hi.dataSync()[0]).toBeLessThanOrEqual(1);
    tf.dispose([lo, hi]);
    r.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('with λ large the plain prototype goes to 0', async () => {
    const r = await activationMax(cnn, [{ class: 5 }], { steps: 40, lambda: 1e4, start: 'mean' });
    const m = tf.max(r.prototypes);
    expect(m.dataSync()[0]).toBeLessThan(0.02);
    tf.dispose(m);
    r.dispose();
  });

  it('is deterministic with a seed (noise start, jitter, scales) and depends on it', async () => {
    const opts = { steps: 8, jitter: 2, scales: [0.9, 1, 1.1], tv: 0.1, blur: 0.1, seed: 7 };
    const a = await activationMax(cnn, [{ class: 2 }, { class: 4 }], opts);
    const b = await activationMax(cnn, [{ class: 2 }, { class: 4 }], opts);
    const c = await activationMax(cnn, [{ class: 2 }, { class: 4 }], { ...opts, seed: 8 });
    const same = tf.max(tf.abs(tf.sub(a.prototypes, b.prototypes)));
    const diff = tf.max(tf.abs(tf.sub(a.prototypes, c.prototypes)));
    expect(same.dataSync()[0]).toBe(0);
    expect(diff.dataSync()[0]).toBeGreaterThan(1e-3);
    expect(a.trace).toEqual(b.trace);
    // An image's result does not depend on the batch it shares: image 1 alone (its own stream) equals it in the pair.
    const single = await activationMax(cnn, [{ class: 2 }], { ...opts, batchSize: 1 });
    const first = tf.slice(a.prototypes, 0, 1);
    const d1 = tf.max(tf.abs(tf.sub(first, single.prototypes)));
    expect(d1.dataSync()[0]).toBeLessThan(1e-5);
    tf.dispose([same, diff, first, d1]);
    [a, b, c, single].forEach((r) => r.dispose());
  });

  it('registered in family interpretation: explain gives the prototype, trace and probabilities; given start; option errors', async () => {
    expect(getMethod('activation-max').family).toBe('interpretation');
    const x = tf.fill([2, 28, 28, 1], 0.2) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const e = await explain('activation-max', cnn, x, { target: [1, 8], options: { steps: 20, start: 'given', score: 'logit' } });
    expect(e.attribution.shape).toEqual([2, 28, 28, 1]);
    const probs = e.extras.probabilities as number[][];
    expect(probs[0][1]).toBeGreaterThan(0.5);
    expect(probs[1][8]).toBeGreaterThan(0.5);
    expect((e.extras.trace as number[][])[1]).toHaveLength(20);
    e.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(explain('activation-max', cnn, x, { options: { layer: cnn.convLayers()[0] } })).rejects.toThrow(OptionError);
    await expect(explain('activation-max', cnn, x, { options: { steps: 0 } })).rejects.toThrow(/steps/);
    await expect(activationMax(cnn, [{ class: 10 }], { steps: 1 })).rejects.toThrow(/class in 0..9/);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('a unit objective of the last conv layer (before its ReLU) rises above its start value', async () => {
    const layer = `${cnn.convLayers().at(-1)!}/preact`;
    const shape = cnn.node(layer).shape;
    const unit: [number, number, number] = [Math.floor(shape[0] / 2), Math.floor(shape[1] / 2), 0];
    const r = await activationMax(cnn, [{ layer, unit }], { steps: 30, lambda: 0 });
    const start = tf.fill([1, 28, 28, 1], 0.5);
    const a0 = cnn.activations(start, [layer]).get(layer)!;
    const a1 = cnn.activations(r.prototypes, [layer]).get(layer)!;
    const v0 = (a0.arraySync() as number[][][][])[0][unit[0]][unit[1]][unit[2]];
    const v1 = (a1.arraySync() as number[][][][])[0][unit[0]][unit[1]][unit[2]];
    expect(v1).toBeGreaterThan(v0 + 1);
    expect(r.objective[0]).toBeCloseTo(v1, 3);
    tf.dispose([start, a0, a1]);
    r.dispose();
  });
});

describe.skipIf(!shipped)('CLI: glasswing interpret max', () => {
  it('writes a labelled prototype grid for each variant and reports the same probabilities as the function', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-max-'));
    const env = { env: { ...process.env, GLASSWING_QUIET: '1' } };
    for (const variant of ['plain', 'code', 'expert']) {
      const out = path.join(dir, `${variant}.png`);
      const r = await runNode([CLI, 'interpret', 'max', '--classes', '1,7', '--variant', variant, '--steps', '15', '--seed', '2', '--out', out, '--json'], env);
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      expect(j.names).toEqual(['1', '7']);
      expect(decodePng(fs.readFileSync(out)).width).toBeGreaterThan(2 * 28);
      if (variant === 'plain') {
        const f = await activationMax(cnn, [{ class: 1 }, { class: 7 }], { steps: 15, seed: 2 });
        expect(j.probabilities[0][1]).toBeCloseTo(f.probabilities[0][1], 4);
        expect(j.probabilities[1][7]).toBeCloseTo(f.probabilities[1][7], 4);
        f.dispose();
      }
    }
    const bad = await runNode([CLI, 'interpret', 'max', '--variant', 'nope', '--json'], env);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/expected --variant plain, code or expert/);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});

describe('activation-max on a MobileNetV2-shaped colour model', () => {
  it('a channel objective (mean over positions) rises, with jitter and scale robustness, no leaks', async () => {
    const model = buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 1, lastFilters: 32, numClasses: 5, seed: 3 });
    const mb = Classifier.fromModel(model);
    const layer = 'block_1_expand_relu';
    const before = tf.memory().numTensors;
    const r = await activationMax(mb, [{ layer, channel: 3 }], { steps: 25, jitter: 2, scales: [0.95, 1, 1.05], tv: 0.05, lambda: 0 });
    const start = tf.fill([1, 32, 32, 3], 0.5);
    const ch = (t: tf.Tensor4D) => {
      const a = mb.activations(t, [layer]).get(layer)!;
      const m = tf.tidy(() => tf.mean(tf.slice(a, [0, 0, 0, 3], [-1, -1, -1, 1])));
      const v = m.dataSync()[0];
      tf.dispose([a, m]);
      return v;
    };
    const v0 = ch(start as tf.Tensor4D);
    const v1 = ch(r.prototypes);
    expect(v1).toBeGreaterThan(v0 + 0.1);
    expect(r.objective[0]).toBeCloseTo(v1, 3);
    start.dispose();
    r.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  }, 60_000);

  it('gives the same prototype on a TF graph model as on its LayersModel twin', async () => {
    const model = buildMobileNetV2Shaped({ inputShape: [32, 32, 3], alpha: 0.35, depth: 1, lastFilters: 32, numClasses: 5, seed: 12 });
    const art = exportGraphModel(model);
    const graph = await Classifier.fromGraphModel({ modelJson: art.modelJson, weights: art.shards }, { name: 'graph' });
    const twin = Classifier.fromModel(model, { name: 'twin' });
    const opts = { steps: 6, seed: 4 };
    const [a, b] = [await activationMax(graph, [{ class: 2 }], opts), await activationMax(twin, [{ class: 2 }], opts)];
    const d = tf.max(tf.abs(tf.sub(a.prototypes, b.prototypes)));
    expect(d.dataSync()[0]).toBeLessThan(1e-3);
    expect(a.trace[0].at(-1)!).toBeGreaterThan(a.trace[0][0]);
    expect(a.probabilities[0][2]).toBeCloseTo(b.probabilities[0][2], 4);
    tf.dispose(d);
    [a, b].forEach((r) => r.dispose());
    graph.dispose();
    model.dispose();
  }, 60_000);
});
