/**
 * `glasswing bench propagation`: ms per image of the relevance-propagation methods — every shipped
 * LRP composite, Deep Taylor and VisualBackProp (plus the plain input gradient as a yardstick) — on
 * the MNIST CNN (the trained default 'mnist-cnn' when present, else FORMAT.md §2.1 with seeded random
 * weights) at batch 1 and 32, on a small ResNet (28², batch 1 and 32) and on ResNet-18 (224², batch 1).
 *
 * Options: quick (fewer repeats, no ResNet-18), resnet (false skips ResNet-18), repeats (number).
 * The method's own run is timed (no input validation, no extra forward pass for the logits).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { getMethod } from '../src/core/registry.js';
import { disposeExplanation } from '../src/core/explanation.js';
import { buildConformanceCnn } from '../src/models/architectures.js';
import { hasDefaultModel, loadDefaultClassifier } from '../src/models/io.js';
import { buildResNet18, buildSmallResNet } from '../src/models/resnet.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import { medianMs } from '../src/util/timing.js';
import '../src/attribution/index.js';

type Row = { model: string; method: string; batch: number; backend: string; ms_per_image: number; conservation_error: string; note: string };

const CASES: Array<{ label: string; method: string; options: Record<string, unknown> }> = [
  { label: 'forward (yardstick)', method: 'forward', options: {} },
  { label: 'gradient (yardstick)', method: 'gradient', options: {} },
  { label: 'lrp epsilon-plus-flat', method: 'lrp', options: { composite: 'epsilon-plus-flat' } },
  { label: 'lrp epsilon-alpha2-beta1-flat', method: 'lrp', options: { composite: 'epsilon-alpha2-beta1-flat' } },
  { label: 'lrp epsilon-gamma-box', method: 'lrp', options: { composite: 'epsilon-gamma-box' } },
  { label: 'lrp alpha2-beta1', method: 'lrp', options: { composite: 'alpha2-beta1' } },
  { label: 'lrp lrp-0', method: 'lrp', options: { composite: 'lrp-0' } },
  { label: 'deep-taylor', method: 'deep-taylor', options: {} },
  { label: 'visual-backprop', method: 'visual-backprop', options: {} },
];

async function mnistCnn(): Promise<{ clf: Classifier; name: string }> {
  if (hasDefaultModel('mnist-cnn')) {
    try {
      return { clf: await loadDefaultClassifier('mnist-cnn'), name: 'mnist-cnn (trained)' };
    } catch {
      // fall through to the random-weight architecture
    }
  }
  return { clf: Classifier.fromModel(buildConformanceCnn({ seed: 0 })), name: 'mnist-cnn (FORMAT §2.1, random)' };
}

async function run(options: TaskOptions) {
  const backend = await initBackend();
  const quick = Boolean(options.quick);
  const repeats = Number(options.repeats ?? (quick ? 3 : 7));
  const withResNet18 = !quick && options.resnet !== false && options.resnet !== 'false';
  const rows: Row[] = [];

  const bench = async (model: string, clf: Classifier, batch: number, cases: typeof CASES, reps: number) => {
    const [h, w, c] = clf.inputShape;
    const x = tf.randomUniform([batch, h, w, c], clf.domain.low, clf.domain.high, 'float32', 7 + batch) as tf.Tensor4D;
    const targets = Array.from({ length: batch }, (_, i) => i % clf.numClasses);
    for (const k of cases) {
      let ce = '';
      try {
        if (k.method === 'forward') {
          const ms = await medianMs(async () => {
            const y = clf.logits(x);
            await y.data();
            y.dispose();
          }, reps, 1);
          rows.push({ model, method: k.label, batch, backend, ms_per_image: ms / batch, conservation_error: '', note: '' });
          continue;
        }
        const def = getMethod(k.method);
        const opts = { ...def.defaults, ...k.options };
        const once = async () => {
          const r = await def.run(clf, x, targets, opts, {});
          await r.attribution.data();
          const e = r.extras?.conservationError as number[] | undefined;
          if (e && k.method !== 'visual-backprop') ce = Math.max(...e).toExponential(1);
          disposeExplanation({ attribution: r.attribution, extras: r.extras ?? {} });
          r.logitsAfter?.dispose();
        };
        const ms = await medianMs(once, reps, 1);
        rows.push({ model, method: k.label, batch, backend, ms_per_image: ms / batch, conservation_error: ce, note: '' });
      } catch (err) {
        rows.push({ model, method: k.label, batch, backend, ms_per_image: NaN, conservation_error: '', note: `failed: ${String((err as Error).message ?? err).slice(0, 90)}` });
      }
    }
    x.dispose();
  };

  const { clf: cnn, name } = await mnistCnn();
  for (const batch of [1, 32]) await bench(name, cnn, batch, CASES, repeats);

  const small = Classifier.fromModel(buildSmallResNet({ width: 16, seed: 0 }));
  for (const batch of quick ? [1] : [1, 32]) await bench('small-resnet 28² (width 16)', small, batch, CASES, repeats);
  small.model?.dispose();

  if (withResNet18) {
    const r18 = Classifier.fromModel(buildResNet18({ seed: 0 }));
    const cases = CASES.filter((k) => ['forward', 'gradient', 'deep-taylor', 'visual-backprop'].includes(k.method) || k.label === 'lrp epsilon-plus-flat' || k.label === 'lrp epsilon-gamma-box');
    await bench('resnet-18 224²', r18, 1, cases, Math.max(2, Math.min(repeats, 3)));
    r18.model?.dispose();
  }
  cnn.model?.dispose();

  const get = (m: string, b: number) => rows.find((r) => r.model === name && r.method === m && r.batch === b)?.ms_per_image;
  return {
    rows,
    json: {
      backend,
      rows,
      mnist_cnn_ms_per_image: Object.fromEntries(CASES.map((k) => [k.label, { batch1: get(k.label, 1), batch32: get(k.label, 32) }])),
      targets: { 'deep-taylor and lrp (mnist-cnn)': 10, 'visual-backprop (mnist-cnn)': 2, 'zennit epsilon-plus-flat batch 1': 8.7 },
    },
  };
}

registerBenchmark({
  name: 'propagation',
  description: 'ms/image of LRP composites, Deep Taylor and VisualBackProp on the MNIST CNN (batch 1, 32) and ResNet-shaped models',
  run,
});
