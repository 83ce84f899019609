/**
 * `glasswing bench interpretation`: the cost of the interpretation methods (issue 11's speed list).
 *
 *   - seconds per class prototype of each activation-maximisation variant (plain, density expert,
 *     code space) on the MNIST CNN (all ten classes in one call, each variant's default steps) and on a
 *     MobileNetV2-shaped 224² model (2 classes, `steps` steps, with the per-step time extrapolated to
 *     256 steps; its expert is an untrained 16-hidden Gaussian RBM and its generator a random linear
 *     decoder — both only for timing, the MNIST ones are the real thing);
 *   - seconds per unit of top-activations over the 10,000 MNIST digits (one unit alone, and 8 units
 *     sharing one pass), and of top real vs adversarial images (PGD-10) over 1,000;
 *   - seconds per unit of the receptive fields: theoretical (every node of the graph) and actual
 *     (discrepancy maps of 10 top images, 3×3 patches, stride 1; at 224²: 32×32 patches, stride 32, 2 images).
 *
 * The load average (`uptime`) at the start and end is in the JSON: the machine is shared.
 * Options: quick (MNIST 1,000 images and 20 steps; the colour model at 64²), size (colour model side,
 * default 224), steps (colour model steps, default 4).
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadavg } from 'node:os';
import { initBackend, currentBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import { activationMax } from '../src/interpretation/activation-max.js';
import { activationMaxExpert, defaultDensityExpert } from '../src/interpretation/activation-max-expert.js';
import { activationMaxCode } from '../src/interpretation/activation-max-code.js';
import { topActivations, topActivationsOfUnits } from '../src/interpretation/top-activations.js';
import { topRealVsAdversarial } from '../src/interpretation/top-adversarial.js';
import { receptiveFields } from '../src/interpretation/receptive-field.js';
import { empiricalReceptiveField } from '../src/interpretation/empirical-receptive-field.js';
import { GaussianRBM } from '../src/generative/rbm.js';
import type { Generator } from '../src/generative/types.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';
import { createRng, gaussian } from '../src/util/random.js';

type Row = { model: string; task: string; unit: string; seconds: number; note: string };

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t) / 1000 };
}

/** A random linear decoder z → sigmoid(zW) of the model's input shape (timing only). */
function linearGenerator(shape: [number, number, number], latentDim: number, seed: number): Generator {
  const d = shape[0] * shape[1] * shape[2];
  const rng = createRng(seed);
  const vals = new Float32Array(latentDim * d);
  for (let i = 0; i < vals.length; i++) vals[i] = gaussian(rng) / Math.sqrt(latentDim);
  const w = tf.tensor2d(vals, [latentDim, d]);
  return {
    kind: 'gan', name: 'random-linear', latentDim, outputShape: shape, info: {},
    decode: (z) => tf.reshape(tf.sigmoid(tf.matMul(z, w)), [z.shape[0], ...shape]) as tf.Tensor4D,
    dispose: () => w.dispose(),
  };
}

registerBenchmark({
  name: 'interpretation',
  description: 'seconds per prototype (plain, expert, code space), per unit of top-activations (10,000 images) and of receptive fields, MNIST CNN and 224² MobileNetV2-shaped',
  async run(options: TaskOptions) {
    await initBackend();
    const quick = Boolean(options.quick);
    const size = Number(options.size ?? (quick ? 64 : 224));
    const colourSteps = Number(options.steps ?? 4);
    const load0 = loadavg()[0];
    const rows: Row[] = [];
    const add = (model: string, task: string, unit: string, seconds: number, note = '') => rows.push({ model, task, unit, seconds, note });
    const models = await import('../src/models/index.js');
    const data = await import('../src/data/index.js');

    // ---- MNIST CNN ----------------------------------------------------------------------------
    if (models.hasDefaultModel('mnist-cnn')) {
      const cnn = await models.loadDefaultClassifier('mnist-cnn');
      const classes = Array.from({ length: 10 }, (_, c) => ({ class: c }));
      const steps = quick ? { steps: 20 } : {};
      await defaultDensityExpert();
      const layer = cnn.convLayers().at(-1)!;
      try {
        // Warm-up: the first call compiles kernels and loads the generator.
        (await activationMaxCode(cnn, [{ class: 0 }], { steps: 2 })).dispose();
        for (const [name, run] of [
          ['plain', () => activationMax(cnn, classes, steps)],
          ['expert', () => activationMaxExpert(cnn, classes, steps)],
          ['code space', () => activationMaxCode(cnn, classes, steps)],
        ] as const) {
          const { value, seconds } = await timed(run);
          const n = value.trace[0].length;
          value.dispose();
          add('mnist-cnn', `activation-max ${name}`, 'per prototype', seconds / 10, `10 classes in one call, ${n} steps`);
        }
        const nAll = quick ? 1000 : 10_000;
        const all = await data.loadMnist({ split: 'all', limit: nAll });
        try {
          const warm = data.take(all, 256);
          (await topActivations(cnn, warm, { layer, channel: 0, k: 1 })).dispose();
          warm.dispose();
          const one = await timed(() => topActivations(cnn, all, { layer, channel: 0, percent: 1 }));
          one.value.dispose();
          add('mnist-cnn', `top-activations ${layer}, top 1 %`, 'per unit', one.seconds, `1 unit, ${all.labels.length} images`);
          const eight = await timed(() => topActivationsOfUnits(cnn, all, { layer, units: Array.from({ length: 8 }, (_, c) => ({ channel: c })), percent: 1 }));
          for (const r of eight.value) r.dispose();
          add('mnist-cnn', `top-activations ${layer}, top 1 %`, 'per unit', eight.seconds / 8, `8 units in one pass, ${all.labels.length} images`);
          const nAdv = quick ? 200 : 1000;
          const sub = data.take(all, nAdv);
          try {
            const adv = await timed(() => topRealVsAdversarial(cnn, sub, { layer, units: Array.from({ length: 8 }, (_, c) => ({ channel: c })), percent: 1, attack: 'pgd', steps: 10 }));
            for (const r of adv.value) r.dispose();
            add('mnist-cnn', `top real vs adversarial ${layer} (PGD-10)`, 'per unit', adv.seconds / 8, `8 units in one pass, ${nAdv} images + ${nAdv} adversarial`);
          } finally {
            sub.dispose();
          }
          const th = await timed(async () => receptiveFields(cnn));
          add('mnist-cnn', 'receptive field (theoretical)', 'per unit', th.seconds / th.value.size, `all ${th.value.size} nodes`);
          const k = quick ? 3 : 10;
          const erf = await timed(() => empiricalReceptiveField(cnn, all, { layer, channel: 0, k, patch: 3, stride: 1 }));
          add('mnist-cnn', `receptive field (discrepancy maps) ${layer}`, 'per unit', erf.seconds, `${k} top images of ${all.labels.length}, 3×3 patches, stride 1`);
        } finally {
          all.dispose();
        }
      } finally {
        cnn.model?.dispose();
      }
    } else {
      add('mnist-cnn', 'all', '-', NaN, 'skipped: models/mnist-cnn not shipped (npm run train:defaults)');
    }

    // ---- MobileNetV2-shaped colour model ---------------------------------------------------------
    const model = buildMobileNetV2Shaped({ inputShape: [size, size, 3], seed: 1 });
    const mb = Classifier.fromModel(model, { name: `MobileNetV2-shaped ${size}²` });
    const gen = linearGenerator([size, size, 3], 64, 2);
    const rbm = new GaussianRBM({ inputShape: [size, size, 3], hidden: 16, sigma: 0.3, seed: 3 });
    const name = `MobileNetV2-shaped ${size}²`;
    try {
      const objectives = [{ class: 1 }, { class: 2 }];
      const robust = { jitter: Math.max(1, Math.round(size / 28)), scales: [0.95, 1, 1.05], lambda: 0 };
      (await activationMax(mb, [{ class: 0 }], { steps: 1 })).dispose();
      for (const [variant, run] of [
        ['plain (jitter, scales)', () => activationMax(mb, objectives, { ...robust, steps: colourSteps })],
        ['expert (untrained RBM, timing only)', () => activationMaxExpert(mb, objectives, { ...robust, steps: colourSteps, expert: rbm, expertWeight: 0.01 })],
        ['code space (random linear generator, timing only)', () => activationMaxCode(mb, objectives, { steps: colourSteps, generator: gen })],
      ] as const) {
        const { value, seconds } = await timed(run);
        value.dispose();
        const perStep = seconds / objectives.length / colourSteps;
        add(name, `activation-max ${variant}`, 'per prototype', perStep * 256, `measured ${colourSteps} steps × 2 classes (${(perStep * 1000).toFixed(0)} ms per step), extrapolated to 256 steps`);
      }
      const n = quick ? 16 : 64;
      const imgs = tf.randomUniform([n, size, size, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
      const ds = { images: imgs, labels: new Int32Array(n) };
      const layer = 'block_16_project';
      try {
        (await topActivations(mb, ds, { layer, channel: 0, k: 1, batchSize: 16 })).dispose();
        const top = await timed(() => topActivations(mb, ds, { layer, channel: 0, k: 4, batchSize: 16 }));
        top.value.dispose();
        add(name, `top-activations ${layer}`, 'per unit', (top.seconds / n) * 10_000, `measured on ${n} images (${((top.seconds / n) * 1000).toFixed(0)} ms each), extrapolated to 10,000`);
        const th = await timed(async () => receptiveFields(mb));
        add(name, 'receptive field (theoretical)', 'per unit', th.seconds / th.value.size, `all ${th.value.size} nodes`);
        const patch = Math.max(4, Math.round(size / 7));
        const erf = await timed(() => empiricalReceptiveField(mb, ds, { layer: 'block_6_expand_relu', channel: 0, k: 2, patch, stride: patch, batchSize: 16 }));
        add(name, 'receptive field (discrepancy maps) block_6_expand_relu', 'per unit', erf.seconds, `2 top images of ${n}, ${patch}×${patch} patches, stride ${patch}`);
      } finally {
        imgs.dispose();
      }
    } finally {
      gen.dispose();
      rbm.dispose();
      model.dispose();
    }
    const load1 = loadavg()[0];
    const json: Record<string, unknown> = { backend: currentBackend() ?? 'unknown', size, colourSteps, loadStart: +load0.toFixed(2), loadEnd: +load1.toFixed(2) };
    for (const r of rows) json[`${r.model} | ${r.task} | ${r.note}`] = Number.isFinite(r.seconds) ? +r.seconds.toPrecision(4) : null;
    return { rows, json };
  },
});
