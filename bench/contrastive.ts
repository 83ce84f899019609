/**
 * `glasswing bench contrastive`: seconds per explanation of lse (on misclassified MNIST test images,
 * target = the true label, λ = 0.1, ≤ 500 steps), cdeepex and xgems (probe = second most likely
 * class, default options) at batch 1 with the shipped generator mnist-vae-10d and the default
 * classifier mnist-cnn (mnist-mlp when the CNN is not trained). Target: ≤ 2 s each on 2 cores.
 *
 * The last row explains the cdeepex images in one batch (seconds per explanation = batch time / N).
 *
 * Options: quick (3 images per method), images (default 10).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, currentBackend } from '../src/engine/backend.js';
import { explain } from '../src/core/registry.js';
import type { Classifier } from '../src/core/classifier.js';
import { DataError } from '../src/core/errors.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import { loadDefaultGenerator } from '../src/generative/io.js';
import '../src/counterfactual/lse.js';
import '../src/counterfactual/cdeepex.js';

async function defaultClassifier(): Promise<{ c: Classifier; name: string }> {
  const io = await import('../src/models/io.js');
  for (const name of ['mnist-cnn', 'mnist-mlp']) if (io.hasDefaultModel(name)) return { c: await io.loadDefaultClassifier(name), name };
  throw new DataError('expected a default MNIST classifier (models/mnist-cnn or models/mnist-mlp); got none — run `npm run train:defaults` first');
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

registerBenchmark({
  name: 'contrastive',
  description: 'seconds per explanation of lse, cdeepex and xgems on MNIST (batch 1, mnist-vae-10d)',
  async run(options: TaskOptions) {
    await initBackend();
    const k = Number(options.images ?? (options.quick ? 3 : 10));
    const { c, name } = await defaultClassifier();
    const gen = await loadDefaultGenerator('mnist-vae-10d');
    const { loadMnist } = await import('../src/data/index.js');
    const test = await loadMnist({ split: 'test', seed: 0 });
    const preds = await c.predictClasses(test.images);
    const wrong = preds.map((p, i) => (p !== test.labels[i] ? i : -1)).filter((i) => i >= 0).slice(0, k);
    const right = preds.map((p, i) => (p === test.labels[i] ? i : -1)).filter((i) => i >= 0).slice(0, k);
    const one = (i: number) => tf.slice(test.images, i, 1) as tf.Tensor4D;
    // warm-up
    {
      const x = one(right[0]);
      (await explain('lse', c, x, { target: 'second', options: { generator: gen, maxSteps: 3 } })).dispose();
      (await explain('cdeepex', c, x, { options: { generator: gen, outerSteps: 2 } })).dispose();
      x.dispose();
    }
    const rows: Array<Record<string, string | number>> = [];
    const json: Record<string, unknown> = { classifier: name, generator: 'mnist-vae-10d', backend: currentBackend(), images: k };
    const cases: Array<{ method: string; idx: number[]; target: (i: number) => number | 'second'; note: string; options?: Record<string, unknown> }> = [
      { method: 'lse', idx: wrong, target: (i) => test.labels[i], note: 'misclassified images → true label' },
      { method: 'cdeepex', idx: right, target: () => 'second', note: 'probe = 2nd; seed c0 = 1' },
      { method: 'cdeepex', idx: right, target: () => 'second', note: 'probe = 2nd; c0 = 10', options: { c0: 10 } },
      { method: 'xgems', idx: right, target: () => 'second', note: 'probe = 2nd; seed c0 = 1' },
    ];
    const row = (method: string, note: string, n: number, t: { median: number; mean: number; max: number }, ok: number) => ({
      method, case: note, images: n, backend: String(currentBackend()),
      'median s/explanation': t.median, 'mean s/explanation': t.mean, 'max s': t.max, 'success (lse) / converged': ok / Math.max(1, n),
    }) as Record<string, string | number>;
    for (const cs of cases) {
      const secs: number[] = [];
      let ok = 0;
      for (const i of cs.idx) {
        const x = one(i);
        const e = await explain(cs.method, c, x, { target: cs.target(i), options: { generator: gen, ...(cs.options ?? {}) }, skipRangeCheck: true });
        secs.push(e.timeMs / 1000);
        ok += cs.method === 'lse' ? Number((e.extras.success as boolean[])[0]) : Number((e.extras.converged as boolean[])[0]);
        e.dispose();
        x.dispose();
      }
      const r = row(cs.method, cs.note, cs.idx.length, { median: median(secs), mean: secs.reduce((a, b) => a + b, 0) / Math.max(1, secs.length), max: Math.max(...secs) }, ok);
      rows.push(r);
      json[`${cs.method}${cs.options ? '-c0-10' : ''}`] = r;
    }
    // The same cdeepex images explained in one batch: every multiplier update is one batched pass.
    {
      const x = tf.tidy(() => tf.gather(test.images, tf.tensor1d(right, 'int32'))) as tf.Tensor4D;
      const e = await explain('cdeepex', c, x, { target: 'second', options: { generator: gen }, skipRangeCheck: true });
      const per = e.timeMs / 1000 / right.length;
      const ok = (e.extras.converged as boolean[]).filter(Boolean).length;
      const r = row('cdeepex', `probe = 2nd; seed c0 = 1; one batch of ${right.length}`, right.length, { median: per, mean: per, max: e.timeMs / 1000 }, ok);
      rows.push(r);
      json['cdeepex-batch'] = r;
      e.dispose();
      x.dispose();
    }
    test.dispose();
    c.model?.dispose();
    return { rows, json };
  },
});
