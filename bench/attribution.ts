/**
 * `glasswing bench attribution`: ms per image of every attribution method on the MNIST CNN (the
 * trained default 'mnist-cnn' when present, else FORMAT.md §2.1 with seeded random weights) at batch 1
 * and 32 — IG 50 steps, SmoothGrad 25 samples, occlusion 4×4 stride 2, LIME 1000 samples — and
 * Grad-CAM, IG and occlusion on ResNet-shaped models: the small ResNet (28², batch 1 and 32) and
 * ResNet-18 (224², batch 1; IG 50 steps, occlusion 32×32 stride 16 = 169 windows as on MNIST).
 * Captum 0.8 on the MNIST CNN shape, same 2 cores, batch 1 (ms/image): Saliency 2.6, IG 64,
 * SmoothGrad 49, guided backprop 2.8, Grad-CAM 2.1, occlusion 89, LIME 1148; batch 1 / 32: DeepLift
 * 9.9 / 4.2, the forward + input gradient floor 2.45 / 1.09; ResNet-18 224² batch 1: DeepLift 254.
 * The Captum-parity methods (DeepLIFT, the SHAP family, ablation, Shapley values, layer and neuron
 * attribution, Grad-CAM++, Score-CAM, Eigen-CAM, Layer-CAM) run with their default options.
 *
 * Options: quick (batch 1 only with fewer repeats, no ResNet-18), resnet (false skips ResNet-18),
 * repeats (number), pda (true adds prediction-difference, slow). Each method's own run is timed
 * (median of `repeats` runs after a warm-up; a single timed run at batch 32 or when a run takes more than 3 s).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { getMethod } from '../src/core/registry.js';
import { disposeExplanation } from '../src/core/explanation.js';
import { buildMnistCnnArchitecture } from '../src/conformance/models.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import '../src/attribution/index.js';

type Row = { model: string; method: string; batch: number; backend: string; ms_per_image: number; captum_ms: number | string; ratio: number | string };
/** captum: Captum's ms/image at batch 1 on the same shape and cores; captum32: at batch 32 (issue 16's figures). */
type Case = { label: string; method: string; options: Record<string, unknown>; captum?: number; captum32?: number };

const MNIST_CASES: Case[] = [
  { label: 'forward (yardstick)', method: 'forward', options: {} },
  { label: 'gradient', method: 'gradient', options: {}, captum: 2.45, captum32: 1.09 },
  { label: 'saliency', method: 'saliency', options: {}, captum: 2.6 },
  { label: 'sensitivity', method: 'sensitivity', options: {} },
  { label: 'gradient-x-input', method: 'gradient-x-input', options: {} },
  { label: 'integrated-gradients (50 steps)', method: 'integrated-gradients', options: { steps: 50 }, captum: 64 },
  { label: 'smoothgrad (25 samples)', method: 'smoothgrad', options: { samples: 25 }, captum: 49 },
  { label: 'guided-backprop', method: 'guided-backprop', options: {}, captum: 2.8 },
  { label: 'deconvnet', method: 'deconvnet', options: {} },
  { label: 'grad-cam', method: 'grad-cam', options: {}, captum: 2.1 },
  { label: 'guided-grad-cam', method: 'guided-grad-cam', options: {} },
  { label: 'occlusion (4x4, stride 2)', method: 'occlusion', options: { window: 4, stride: 2 }, captum: 89 },
  { label: 'lime (1000 samples)', method: 'lime', options: { samples: 1000 }, captum: 1148 },
  // Captum-parity methods (issue 16); Captum figures where the issue gives them (gradient: the forward + input gradient floor)
  { label: 'deeplift', method: 'deeplift', options: {}, captum: 9.9, captum32: 4.2 },
  { label: 'deeplift-shap (8 baselines)', method: 'deeplift-shap', options: {} },
  { label: 'gradient-shap (32 samples)', method: 'gradient-shap', options: {} },
  { label: 'feature-ablation (4x4 patches)', method: 'feature-ablation', options: {} },
  { label: 'feature-permutation (4x4 patches)', method: 'feature-permutation', options: {} },
  { label: 'shapley-exact (3x3 grid, 512 coalitions)', method: 'shapley-exact', options: {} },
  { label: 'shapley-sampling (4x4 grid, 25 orderings)', method: 'shapley-sampling', options: {} },
  { label: 'kernel-shap (SLIC 50, 1000 coalitions)', method: 'kernel-shap', options: {} },
  { label: 'layer-integrated-gradients (50 steps)', method: 'layer-integrated-gradients', options: {} },
  { label: 'layer-conductance (50 steps)', method: 'layer-conductance', options: {} },
  { label: 'layer-gradient-x-activation', method: 'layer-gradient-x-activation', options: {} },
  { label: 'neuron-gradient', method: 'neuron-gradient', options: {} },
  { label: 'neuron-integrated-gradients (50 steps)', method: 'neuron-integrated-gradients', options: {} },
  { label: 'grad-cam-plus-plus', method: 'grad-cam-plus-plus', options: {} },
  { label: 'score-cam (all channels)', method: 'score-cam', options: {} },
  { label: 'eigen-cam', method: 'eigen-cam', options: {} },
  { label: 'layer-cam', method: 'layer-cam', options: {} },
];

async function mnistCnn(): Promise<{ clf: Classifier; name: string }> {
  try {
    const io = await import('../src/models/io.js');
    if (io.hasDefaultModel('mnist-cnn')) return { clf: await io.loadDefaultClassifier('mnist-cnn'), name: 'mnist-cnn (trained)' };
  } catch {
    // models module or default model missing: fall back to the architecture with random weights
  }
  const model = buildMnistCnnArchitecture();
  return { clf: Classifier.fromModel(model, { name: 'mnist-cnn' }), name: 'mnist-cnn (FORMAT §2.1, random)' };
}

/** The plain forward pass as a method, to show how loaded the machine is (ENGINE.md: 1.4 / 20.5 ms at batch 1 / 32). */
const FORWARD = {
  defaults: {},
  run: (clf: Classifier, x: tf.Tensor4D) => ({ attribution: clf.logits(x) as unknown as tf.Tensor4D, extras: {} as Record<string, unknown>, logitsAfter: undefined as tf.Tensor2D | undefined }),
};

async function timeRun(clf: Classifier, k: Case, x: tf.Tensor4D, targets: number[], repeats: number): Promise<number> {
  const def = k.method === 'forward' ? FORWARD : getMethod(k.method);
  const options = { ...def.defaults, ...k.options };
  const once = async () => {
    const t = performance.now();
    const r = await def.run(clf, x, targets, options, {});
    await r.attribution.data();
    const ms = performance.now() - t;
    disposeExplanation({ attribution: r.attribution, extras: r.extras ?? {} });
    r.logitsAfter?.dispose();
    return ms;
  };
  // Warm-up (kernel set-up, caches): the whole batch when it is small, else its first image.
  let first: number;
  if (x.shape[0] <= 1) first = await once();
  else {
    const x1 = tf.slice(x, 0, 1) as tf.Tensor4D;
    const r = await def.run(clf, x1, targets.slice(0, 1), options, {});
    disposeExplanation({ attribution: r.attribution, extras: r.extras ?? {} });
    r.logitsAfter?.dispose();
    x1.dispose();
    first = Infinity;
  }
  const n = first > 3000 ? 1 : repeats;
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push(await once());
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function run(options: TaskOptions) {
  const backend = await initBackend();
  const quick = Boolean(options.quick);
  const repeats = Number(options.repeats ?? (quick ? 1 : 3));
  const withResNet18 = !quick && options.resnet !== false && options.resnet !== 'false';
  const rows: Row[] = [];
  const bench = async (model: string, clf: Classifier, batch: number, cases: Case[]) => {
    const [h, w, c] = clf.inputShape;
    const x = tf.randomUniform([batch, h, w, c], clf.domain.low, clf.domain.high, 'float32', 7 + batch) as tf.Tensor4D;
    const targets = Array.from({ length: batch }, (_, i) => i % clf.numClasses);
    for (const k of cases) {
      try {
        const ms = (await timeRun(clf, k, x, targets, repeats)) / batch;
        const ref = batch === 1 ? k.captum : batch === 32 ? k.captum32 : undefined;
        const captum = ref && (model.startsWith('mnist') || model.startsWith('resnet18')) ? ref : '';
        rows.push({ model, method: k.label, batch, backend, ms_per_image: +ms.toFixed(2), captum_ms: captum, ratio: captum ? +(ms / captum).toFixed(2) : '' });
      } catch (e) {
        rows.push({ model, method: `${k.label} (failed: ${(e as Error).message.slice(0, 60)})`, batch, backend, ms_per_image: NaN, captum_ms: '', ratio: '' });
      }
      process.stderr.write(`  ${model} b${batch} ${k.label}: ${rows[rows.length - 1].ms_per_image} ms/image\n`);
    }
    x.dispose();
  };

  const { clf, name } = await mnistCnn();
  const mnistCases = options.pda ? [...MNIST_CASES, { label: 'prediction-difference (4x4, 10 samples)', method: 'prediction-difference', options: {} }] : MNIST_CASES;
  for (const batch of quick ? [1] : [1, 32]) await bench(name, clf, batch, mnistCases);
  clf.model?.dispose();

  let resnet: typeof import('../src/models/resnet.js') | undefined;
  try {
    resnet = await import('../src/models/resnet.js');
  } catch {
    resnet = undefined;
  }
  if (resnet) {
    const small = Classifier.fromModel(resnet.buildSmallResNet({ seed: 0 }), { name: 'small-resnet' });
    const resCases: Case[] = [
      { label: 'grad-cam', method: 'grad-cam', options: {} },
      { label: 'integrated-gradients (50 steps)', method: 'integrated-gradients', options: { steps: 50 } },
      { label: 'occlusion (4x4, stride 2)', method: 'occlusion', options: { window: 4, stride: 2 } },
    ];
    for (const batch of quick ? [1] : [1, 32]) await bench('small-resnet 28²', small, batch, resCases);
    small.model?.dispose();
    if (withResNet18) {
      const r18 = Classifier.fromModel(resnet.buildResNet18({ seed: 0 }), { name: 'resnet18' });
      await bench('resnet18 224²', r18, 1, [
        { label: 'grad-cam', method: 'grad-cam', options: {} },
        { label: 'deeplift', method: 'deeplift', options: {}, captum: 254 },
        { label: 'integrated-gradients (50 steps)', method: 'integrated-gradients', options: { steps: 50, internalBatchSize: 16 } },
        { label: 'occlusion (32x32, stride 16)', method: 'occlusion', options: { window: 32, stride: 16, batchSize: 32 } },
      ]);
      r18.model?.dispose();
    }
  }
  const json: Record<string, unknown> = { backend, rows };
  return { rows, json };
}

registerBenchmark({
  name: 'attribution',
  description: 'ms/image of every attribution method on the MNIST CNN (batch 1, 32) and Grad-CAM/IG/occlusion on ResNet-shaped models',
  run,
});
