/**
 * `glasswing bench robustness`: ms per image of DeepFool and GeoSal (all 9 comparison classes) on
 * the MNIST MLP and CNN — the shipped default models when present (models/mnist-mlp, models/mnist-cnn),
 * else the FORMAT.md architectures with seeded random weights — plus FGSM and PGD-40 for scale.
 * Seed 002 reports GeoSal at ~5 s per image; the aim here is ≤ 50 ms.
 *
 * 'shortcut every step' is GeoSal with repeats = 1: the geometric-series limit (clipped pixels held,
 * the rest projected) is taken at every step instead of after 3 repeats of the same plane.
 *
 * Options: quick (fewer images and repeats), images (number of test images, default 8).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, currentBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import { medianMs } from '../src/util/timing.js';
import { deepfool } from '../src/counterfactual/deepfool.js';
import { geosal } from '../src/counterfactual/geosal.js';
import { fgsm } from '../src/robustness/fgsm.js';
import { pgd } from '../src/robustness/pgd.js';

type Row = { model: string; weights: string; method: string; batch: number; ms_per_image: number; iterations: number; note: string };

async function loadModels(): Promise<Array<{ name: string; weights: string; c: Classifier }>> {
  const models = await import('../src/models/index.js');
  const out: Array<{ name: string; weights: string; c: Classifier }> = [];
  for (const name of ['mnist-mlp', 'mnist-cnn'] as const) {
    if (models.hasDefaultModel(name)) {
      out.push({ name, weights: 'default', c: await models.loadDefaultClassifier(name) });
    } else {
      const m = name === 'mnist-mlp' ? models.buildMlp({ seed: 1 }) : models.buildConformanceCnn({ seed: 1 });
      out.push({ name, weights: 'random', c: Classifier.fromModel(m, { name }) });
    }
  }
  return out;
}

async function testImages(n: number): Promise<{ x: tf.Tensor4D; y: number[] }> {
  try {
    const data = await import('../src/data/index.js');
    const ds = await data.loadMnist({ split: 'test', limit: n, seed: 0 });
    const x = tf.clone(ds.images);
    const y = Array.from(ds.labels);
    ds.dispose();
    return { x, y };
  } catch {
    return { x: tf.randomUniform([n, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D, y: Array.from({ length: n }, (_, i) => i % 10) };
  }
}

registerBenchmark({
  name: 'robustness',
  description: 'ms/image of DeepFool and GeoSal (all classes), FGSM and PGD-40 on the MNIST MLP and CNN',
  async run(options: TaskOptions) {
    await initBackend();
    const quick = Boolean(options.quick);
    const nImages = Number(options.images ?? (quick ? 4 : 8));
    const reps = quick ? 1 : 3;
    const { x, y } = await testImages(nImages);
    const rows: Row[] = [];
    for (const { name, weights, c } of await loadModels()) {
      const add = async (method: string, batch: number, fn: (xb: tf.Tensor4D, yb: number[]) => Promise<number>) => {
        try {
          // One timed call covers `batch` images; over nImages / batch calls, median per image.
          let iters = 0;
          const perImage: number[] = [];
          for (let b = 0; b + batch <= nImages; b += batch) {
            const xb = tf.slice(x, b, batch) as tf.Tensor4D;
            const yb = y.slice(b, b + batch);
            const ms = await medianMs(async () => {
              iters = await fn(xb, yb);
            }, reps, b === 0 ? 1 : 0);
            perImage.push(ms / batch);
            xb.dispose();
          }
          perImage.sort((a, b) => a - b);
          rows.push({ model: name, weights, method, batch, ms_per_image: perImage[Math.floor(perImage.length / 2)], iterations: iters, note: '' });
        } catch (e) {
          rows.push({ model: name, weights, method, batch, ms_per_image: NaN, iterations: 0, note: `failed: ${String((e as Error).message ?? e).slice(0, 80)}` });
        }
      };
      for (const batch of [1, nImages]) {
        await add('deepfool (L2)', batch, async (xb) => {
          const r = await deepfool(c, xb);
          const it = r.iterations.reduce((s, v) => s + v, 0) / r.iterations.length;
          r.dispose();
          return it;
        });
        await add('geosal (all classes)', batch, async (xb) => {
          const g = await geosal(c, xb);
          const its = g.iterations.flat();
          g.dispose();
          return its.reduce((s, v) => s + v, 0) / Math.max(1, its.length);
        });
        await add('geosal (all classes, shortcut every step)', batch, async (xb) => {
          const g = await geosal(c, xb, undefined, { repeats: 1 });
          const its = g.iterations.flat();
          g.dispose();
          return its.reduce((s, v) => s + v, 0) / Math.max(1, its.length);
        });
      }
      await add('fgsm', nImages, async (xb, yb) => {
        const a = fgsm(c, xb, yb, { epsilon: 0.3 });
        await a.data();
        a.dispose();
        return 1;
      });
      if (!quick) {
        await add('pgd-40', nImages, async (xb, yb) => {
          const a = await pgd(c, xb, yb, { epsilon: 0.3, stepSize: 0.01, steps: 40 });
          a.dispose();
          return 40;
        });
      }
      c.model?.dispose();
    }
    x.dispose();
    const backend = currentBackend() ?? 'unknown';
    const json: Record<string, unknown> = { backend, images: nImages };
    for (const r of rows) json[`${r.model} ${r.method} b${r.batch}`] = Number.isFinite(r.ms_per_image) ? +r.ms_per_image.toFixed(2) : null;
    return { rows, json };
  },
});
