/**
 * `glasswing experiment deepfool-rho`: DeepFool's robustness measure ρ_adv = mean ‖r‖₂/‖x‖₂ on the
 * default MNIST CNN and MLP (DeepFool paper: LeNet 0.20, FC500-150-10 0.11), with FGSM's ρ (the
 * smallest ε per image that flips the label, along sign ∇ℓ) for comparison.
 *
 * Options: quick (20 images), images (default 300).
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { registerExperiment, type SeedClaim, type TaskOptions } from '../tasks/registry.js';
import { initBackend } from '../engine/backend.js';
import { deepfool } from '../counterfactual/deepfool.js';
import { minimalFgsm } from '../robustness/fgsm.js';
import { outDir, writeReport, figureLinks, markdownTable } from './report.js';
import { hasDefault, requireDefault, mnistSplit } from './shipped.js';

const PAPER: Record<string, string> = { 'mnist-cnn': '0.20 (LeNet)', 'mnist-mlp': '0.11 (FC500-150-10)' };
/** The DeepFool paper's net each default model stands in for (seed 004 describes DeepFool; the ρ figures are that paper's). */
const PAPER_NET: Record<string, string> = { 'mnist-cnn': 'LeNet', 'mnist-mlp': 'FC500-150-10' };

registerExperiment({
  name: 'deepfool-rho',
  description: 'DeepFool ρ_adv on the default MNIST CNN and MLP vs the DeepFool paper, with FGSM ρ',
  async run(options: TaskOptions) {
    await initBackend();
    const n = Number(options.images ?? (options.quick ? 20 : 300));
    const dir = outDir(options, 'deepfool-rho');
    const names = [];
    for (const m of ['mnist-cnn', 'mnist-mlp']) if (await hasDefault(m)) names.push(m);
    if (names.length === 0) await requireDefault('mnist-cnn'); // throws the how-to message
    const test = await mnistSplit('test', n);
    const rows: Array<Record<string, string | number>> = [];
    const json: Record<string, unknown> = { images: n };
    const files: string[] = [];
    const claims: SeedClaim[] = [];
    const { plotHistogram, writePng, grid, renderImage, renderMap } = await import('../render/index.js');
    for (const name of names) {
      const c = await requireDefault(name);
      const labels = Array.from(test.labels);
      const pred = await c.predictClasses(test.images);
      const acc = pred.filter((p, i) => p === labels[i]).length / n;
      const t0 = performance.now();
      const rhos: number[] = [];
      const iters: number[] = [];
      let fooled = 0;
      const bs = 50;
      let example: { x: tf.Tensor4D; adv: tf.Tensor4D; r: tf.Tensor4D; from: number[]; to: number[] } | undefined;
      for (let b = 0; b < n; b += bs) {
        const m = Math.min(bs, n - b);
        const xb = tf.slice(test.images, b, m) as tf.Tensor4D;
        const r = await deepfool(c, xb, { batchSize: 25 });
        const nx = tf.tidy(() => tf.norm(tf.reshape(xb, [m, -1]), 2, 1));
        const nxs = await nx.data();
        nx.dispose();
        for (let i = 0; i < m; i++) {
          rhos.push(r.l2[i] / Math.max(1e-12, nxs[i]));
          iters.push(r.iterations[i]);
          if (r.fooled[i]) fooled++;
        }
        if (!example) {
          const k = Math.min(6, m);
          example = { x: tf.slice(xb, 0, k), adv: tf.slice(r.adversarial, 0, k), r: tf.slice(r.perturbation, 0, k), from: r.originalClass.slice(0, k), to: r.newClass.slice(0, k) };
        }
        r.dispose();
        xb.dispose();
      }
      const dfMs = (performance.now() - t0) / n;
      // FGSM: smallest ε per image along sign ∇ℓ; ρ over the images it fools.
      const t1 = performance.now();
      const fr: number[] = [];
      let fgsmFooled = 0;
      for (let b = 0; b < n; b += bs) {
        const m = Math.min(bs, n - b);
        const xb = tf.slice(test.images, b, m) as tf.Tensor4D;
        // Like DeepFool, FGSM starts from the prediction (the label to move away from).
        const { epsilon, adversarial } = await minimalFgsm(c, xb, pred.slice(b, b + m), { maxEpsilon: 1, gridSteps: 20, bisections: 6 });
        const ratio = tf.tidy(() => tf.div(tf.norm(tf.reshape(tf.sub(adversarial, xb), [m, -1]), 2, 1), tf.norm(tf.reshape(xb, [m, -1]), 2, 1)));
        const rv = await ratio.data();
        for (let i = 0; i < m; i++) {
          if (Number.isFinite(epsilon[i]) && epsilon[i] > 0) {
            fr.push(rv[i]);
            fgsmFooled++;
          }
        }
        tf.dispose([xb, adversarial, ratio]);
      }
      const fgsmMs = (performance.now() - t1) / n;
      const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
      const row = {
        model: name, 'test accuracy': acc, 'DeepFool ρ_adv': mean(rhos), 'paper ρ_adv': PAPER[name],
        'DeepFool fooled': fooled / n, 'mean iterations': mean(iters), 'FGSM ρ (minimal ε)': mean(fr), 'FGSM fooled (ε ≤ 1)': fgsmFooled / n,
        'DeepFool ms/image': dfMs, 'FGSM-search ms/image': fgsmMs,
      };
      rows.push(row);
      json[name] = row;
      claims.push({
        claim: `DeepFool ρ_adv = mean ‖r‖₂/‖x‖₂ on MNIST, ${name} (stands in for ${PAPER_NET[name]})`,
        seed: '004 (DeepFool; figure from Moosavi-Dezfooli et al.)',
        seedFigure: PAPER[name],
        measured: `${mean(rhos).toFixed(3)} (${n} test images, ${(100 * fooled / n).toFixed(0)} % fooled)`,
        note: `a different net: the shipped ${name} (test accuracy ${(100 * acc).toFixed(1)} %), not ${PAPER_NET[name]}; ρ measures that net`,
      });
      const hist = path.join(dir, `${name}-rho-histogram.png`);
      writePng(hist, await plotHistogram(rhos, { title: `${name}: DeepFool ‖r‖₂/‖x‖₂ (mean ${mean(rhos).toFixed(3)})`, xLabel: '‖r‖₂/‖x‖₂', yLabel: 'images', bins: 30 }));
      files.push(hist);
      if (example) {
        const k = example.x.shape[0];
        const tiles = [];
        const labs: string[] = [];
        for (let i = 0; i < k; i++) {
          tiles.push(renderImage(example.x, { index: i, scale: 3 }), renderMap(example.r, { index: i, scale: 3 }), renderImage(example.adv, { index: i, scale: 3, range: [0, 1] }));
          labs.push(`x: ${example.from[i]}`, 'r', `x+r: ${example.to[i]}`);
        }
        const ex = path.join(dir, `${name}-examples.png`);
        writePng(ex, grid(tiles, { cols: 3, labels: labs, title: `${name} DeepFool` }));
        files.push(ex);
        tf.dispose([example.x, example.adv, example.r]);
      }
      c.model?.dispose();
    }
    test.dispose();
    const markdown = `# DeepFool ρ_adv on MNIST\n\n${n} test images (seeded MNIST test split), L2 DeepFool, overshoot 0.02, all classes.\n` +
      `ρ_adv = mean ‖r‖₂/‖x‖₂ over all images (DeepFool paper). FGSM ρ uses the smallest ε (grid of 20 in (0, 1], 6 bisections) ` +
      `that changes the predicted label along sign ∇ℓ(x, prediction), averaged over the images FGSM fools.\n\n${markdownTable(rows)}\n\n` +
      figureLinks(files) + '\n';
    files.push(...writeReport(dir, 'deepfool-rho', markdown, json));
    return { rows, json, markdown, files, claims };
  },
});
