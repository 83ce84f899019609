/**
 * Quality figures of a trained GAN (default models/mnist-gan):
 *  - diversity: 200 prior samples classified by the shipped mnist-cnn; classes with confidence > 0.9;
 *  - Algorithm 2 inversion of real test digits: mean squared / absolute error per pixel of G(z0) vs I;
 *  - cdeepex with generator = this GAN on a few test digits: convergence rate and time.
 * Writes samples-200.png and inversions.png into the generator's folder.
 *
 *   npm run build && node dist/scripts/evaluate-gan.js [DIR_OR_NAME] [--inversions N] [--cdeepex N]
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, currentBackend } from '../src/engine/backend.js';
import { loadMnist } from '../src/data/index.js';
import { loadDefaultClassifier } from '../src/models/io.js';
import { loadGenerator, modelsDir } from '../src/generative/io.js';
import { WGAN } from '../src/generative/gan.js';
import { invertGenerator } from '../src/generative/inversion.js';
import { explain } from '../src/core/registry.js';
import '../src/counterfactual/index.js';
import { grid, renderImage, writePng } from '../src/render/index.js';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (k: string, d: number) => (argv.includes(k) ? Number(argv[argv.indexOf(k) + 1]) : d);
  const name = argv.find((a, i) => !a.startsWith('--') && (i === 0 || !argv[i - 1].startsWith('--'))) ?? 'mnist-gan';
  const nInv = opt('--inversions', 32);
  const nCdx = opt('--cdeepex', 4);
  await initBackend();
  const dir = path.isAbsolute(name) || name.includes('/') ? name : path.join(modelsDir(), name);
  const gen = await loadGenerator(dir);
  if (!(gen instanceof WGAN)) throw new Error(`expected a GAN in ${dir}; got kind ${gen.kind}`);
  const clf = await loadDefaultClassifier('mnist-cnn');
  console.log(`backend ${currentBackend()}, generator ${dir}, info ${JSON.stringify(gen.info)}`);

  // Diversity.
  const samples = gen.sample(200, 123);
  const probs = tf.tidy(() => tf.softmax(clf.logits(samples)));
  const p = (await probs.array()) as number[][];
  probs.dispose();
  const hist = new Array(10).fill(0);
  const histAll = new Array(10).fill(0);
  let confident = 0;
  for (const row of p) {
    const k = row.indexOf(Math.max(...row));
    histAll[k]++;
    if (row[k] > 0.9) {
      hist[k]++;
      confident++;
    }
  }
  const distinct = hist.filter((v) => v > 0).length;
  console.log(`diversity: ${confident}/200 samples classified with confidence > 0.9; ${distinct} distinct classes among them`);
  console.log(`  confident histogram (0..9): ${hist.join(' ')}`);
  console.log(`  argmax histogram    (0..9): ${histAll.join(' ')}`);
  const tiles = tf.unstack(tf.slice(samples, 0, 100)).map((t) => {
    const im = renderImage(t);
    t.dispose();
    return im;
  });
  writePng(path.join(dir, 'samples-200.png'), grid(tiles, { cols: 10, scale: 2, padding: 2 }));
  samples.dispose();

  // Algorithm 2 inversion of real test digits.
  const test = await loadMnist({ split: 'test', seed: 0, limit: 1000 });
  const x = tf.slice(test.images, 200, nInv) as tf.Tensor4D;
  let t0 = performance.now();
  const inv = await invertGenerator(gen, x, { method: 'optimize', steps: 300, seed: 1 });
  const invMs = performance.now() - t0;
  const mae = tf.tidy(() => tf.mean(tf.abs(inv.residual)).dataSync()[0]);
  const mse = inv.mse.reduce((a, b) => a + b, 0) / inv.mse.length;
  const rec = tf.add(x, inv.residual);
  const predT = tf.tidy(() => tf.argMax(clf.logits(rec), 1));
  const pred = Array.from(await predT.data());
  predT.dispose();
  const agree = pred.filter((k, i) => k === test.labels[200 + i]).length;
  console.log(`inversion (Algorithm 2, 300 Adam steps, ${nInv} test digits, ${(invMs / 1000).toFixed(1)} s): MSE ${mse.toFixed(4)} per pixel, mean |G(z0) − I| ${mae.toFixed(4)}, G(z0) classified as the label: ${agree}/${nInv}`);
  const shown = Math.min(16, nInv);
  const parts = [...tf.unstack(tf.slice(x, 0, shown)), ...tf.unstack(tf.slice(rec, 0, shown))];
  writePng(path.join(dir, 'inversions.png'), grid(parts.map((t) => renderImage(t)), { cols: shown, scale: 2, padding: 2, rowLabels: ['input', 'G(z0)'] }));
  tf.dispose([...parts, rec, inv.z0, inv.residual, x]);

  // cdeepex with this generator.
  if (nCdx > 0) {
    const xc = tf.slice(test.images, 0, nCdx) as tf.Tensor4D;
    t0 = performance.now();
    const e = await explain('cdeepex', clf, xc, { options: { generator: dir } });
    const ms = performance.now() - t0;
    const conv = e.extras.converged as boolean[];
    console.log(`cdeepex (generator ${name}, ${nCdx} digits, batch ${nCdx}): converged ${conv.filter(Boolean).length}/${nCdx}, ${(ms / 1000).toFixed(1)} s; outer steps ${(e.extras.outerSteps as number[]).join(' ')}; |h| ${(e.extras.equalityResidual as number[]).map((v) => Math.abs(v).toFixed(4)).join(' ')}; true→probe ${(e.extras.trueClass as number[]).map((t, i) => `${t}→${(e.extras.probe as number[])[i]}`).join(' ')}`);
    e.dispose();
    xc.dispose();
  }
  test.dispose();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
