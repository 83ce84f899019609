/**
 * `glasswing bench metrics`: seconds per image of every metric on the shipped MNIST CNN (real test
 * digits) and on a 224×224×3 MobileNetV2-shaped network (seeded weights, smooth random images),
 * with the attribution of a cheap method (default: gradient) so the figures are the metric's own
 * cost — its perturbed forward passes, in batches of the memory budget — plus, for the metrics that
 * re-run the method, those explanations. Each row also counts the classifier calls the metric made
 * (a 100-step curve of N images is ⌈N·101 / batch⌉ forward passes, not 101·N).
 *
 * Options: quick (MNIST: 2 images and the report's quick metric options; 224²: the reduced
 * MobileNetV2 at 224², alpha 0.35, one block per stage), images (default 4 / 2 at 224²),
 * method (default gradient), metrics (comma list), models (mnist,mobilenetv2).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, currentBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';
import { gaussianBlur } from '../src/attribution/math.js';
import { explain } from '../src/core/registry.js';
import { evaluateMetric as evaluate, listMetrics, methodExplainer, QUICK_METRIC_OPTIONS } from '../src/metrics/index.js';
import { getMemoryBudget, formatBytes } from '../src/engine/memory.js';
import '../src/attribution/index.js';
import '../src/attribution/propagation/index.js';

type Row = { model: string; input: string; metric: string; method: string; images: number; s_per_image: number; calls: number; mean: number; note: string };

/** A classifier whose logits calls are counted (same graph, so every method runs the same). */
function counted(c: Classifier): { c: Classifier; calls: { n: number } } {
  const calls = { n: 0 };
  const orig = c.logits.bind(c);
  (c as unknown as { logits: Classifier['logits'] }).logits = (x, o) => {
    calls.n++;
    return orig(x, o);
  };
  return { c, calls };
}

async function mnistModel(n: number): Promise<{ name: string; c: Classifier; x: tf.Tensor4D }> {
  const models = await import('../src/models/index.js');
  const data = await import('../src/data/index.js');
  const c = models.hasDefaultModel('mnist-cnn')
    ? await models.loadDefaultClassifier('mnist-cnn')
    : Classifier.fromModel(models.buildConformanceCnn({ seed: 1 }), { name: 'mnist-cnn (random weights)' });
  const ds = await data.loadMnist({ split: 'test', limit: n });
  const x = tf.clone(ds.images);
  ds.dispose();
  return { name: c.name, c, x };
}

function mobileNet(n: number, quick: boolean): { name: string; c: Classifier; x: tf.Tensor4D } {
  const model = quick
    ? buildMobileNetV2Shaped({ inputShape: [224, 224, 3], alpha: 0.35, depth: 1, lastFilters: 128, numClasses: 1000, seed: 0 })
    : buildMobileNetV2Shaped({ inputShape: [224, 224, 3], numClasses: 1000, seed: 0 });
  const c = Classifier.fromModel(model, { name: quick ? 'mobilenetv2-shaped (alpha 0.35, depth 1)' : 'mobilenetv2-shaped' });
  const x = tf.tidy(() => gaussianBlur(tf.randomUniform([n, 224, 224, 3], 0, 1, 'float32', 3) as tf.Tensor4D, 4));
  return { name: c.name, c, x };
}

registerBenchmark({
  name: 'metrics',
  description: 's/image of every metric (method: gradient) on the MNIST CNN and a 224² MobileNetV2-shaped net; classifier calls counted',
  async run(options: TaskOptions) {
    await initBackend();
    const quick = Boolean(options.quick);
    const method = String(options.method ?? 'gradient');
    const only = options.metrics ? String(options.metrics).split(',') : undefined;
    const which = String(options.models ?? 'mnist,mobilenetv2').split(',');
    const metricNames = listMetrics().map((m) => m.name).filter((m) => !only || only.includes(m));
    const rows: Row[] = [];
    const setups: Array<() => Promise<{ name: string; c: Classifier; x: tf.Tensor4D }>> = [];
    if (which.includes('mnist')) setups.push(() => mnistModel(Number(options.images ?? (quick ? 2 : 4))));
    if (which.includes('mobilenetv2')) setups.push(async () => mobileNet(Number(options.images ?? 2), quick));
    for (const setup of setups) {
      const { name, c: base, x } = await setup();
      const { c, calls } = counted(base);
      const input = x.shape.slice(1).join('×');
      const n = x.shape[0];
      // The attribution once (not timed per metric), the method for the metrics that re-run it.
      const e = await explain(method, c, x);
      const explainFn = methodExplainer(method);
      for (const metric of metricNames) {
        const metricOptions = quick ? QUICK_METRIC_OPTIONS[metric] ?? {} : {};
        try {
          calls.n = 0;
          const t0 = performance.now();
          const r = await evaluate(metric, c, x, e.attribution, { target: e.target, explain: explainFn, options: metricOptions });
          const s = (performance.now() - t0) / 1000;
          rows.push({ model: name, input, metric, method, images: n, s_per_image: s / n, calls: calls.n, mean: r.mean, note: quick ? 'quick options' : '' });
        } catch (err) {
          rows.push({ model: name, input, metric, method, images: n, s_per_image: NaN, calls: calls.n, mean: NaN, note: `failed: ${String((err as Error).message ?? err).slice(0, 80)}` });
        }
        process.stderr.write(`  ${name} ${metric}: ${rows[rows.length - 1].s_per_image.toFixed(3)} s/image\n`);
      }
      e.dispose();
      x.dispose();
    }
    return {
      rows,
      json: { quick, method, backend: currentBackend(), memoryBudget: formatBytes(getMemoryBudget()), rows },
    };
  },
});
