/**
 * Seed 000 experiments.
 *
 * `glasswing experiment lse`: §3.2 — LSE success rate and mean ‖ε‖ on the misclassified MNIST test
 * images with the 2-D and 10-D VAE (λ = 0.1), LAE success toward every other class on correctly
 * classified images, beside the paper's figures; Fig. 5-style examples; §5 dataset-bias heatmap (the
 * average perturbation x' − x over the successful LSEs).
 * Options: quick, laeImages (default 30; 0 skips LAE), maxSteps (default 500), laeSteps (default 300),
 * stepSize λ (default 0.1, the paper's; λ = 0.1/87 is the step each image gets when the cross-entropy
 * is averaged over a batch of 87, as a framework's default mean reduction would do).
 *
 * `glasswing experiment lse-latent-maps`: Figs. 2–4 with the 2-D VAE — the class map of c(g(z)) over
 * a latent grid, the class map of c(x') over a grid of ε with cross-entropy contours, the path of
 * z + ε with step marks, and x' and x' − x at steps along the path.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { registerExperiment, type TaskOptions } from '../tasks/registry.js';
import { initBackend, currentBackend } from '../engine/backend.js';
import { latentSearch, LSE_DEFAULTS } from '../counterfactual/lse.js';
import { classMapImage, mark, classesAndCe } from './class-maps.js';
import { outDir, writeReport, figureLinks, markdownTable, pct, mean } from './report.js';
import { firstDefault, generator, predictedTestSplit } from './shipped.js';
import type { Classifier } from '../core/classifier.js';
import type { Generator } from '../generative/types.js';
import { attachClassifier } from '../generative/latent-classifier.js';

const PAPER = {
  'mnist-vae-2d': { lse: '78.16 % / 0.10', lae: '22.34 % / 0.52' },
  'mnist-vae-10d': { lse: '95.40 % / 0.217', lae: '91.11 % / 1.53' },
} as const;

interface LseMeasure {
  row: Record<string, string | number>;
  json: Record<string, unknown>;
  files: string[];
}

/** LSE on the classifier's misclassified test digits and LAE toward every other class, with one generator. */
async function measureLse(
  c: Classifier, cname: string, slug: string, gen: Generator, gname: 'mnist-vae-2d' | 'mnist-vae-10d',
  test: { images: tf.Tensor4D; labels: number[]; preds: number[] },
  o: { quick: boolean; laeN: number; maxSteps: number; laeSteps: number; stepSize: number; dir: string },
): Promise<LseMeasure> {
  const { writePng, grid, renderImage, renderMap } = await import('../render/index.js');
  const { preds, labels } = test;
  let wrong = preds.map((p, i) => (p !== labels[i] ? i : -1)).filter((i) => i >= 0);
  if (o.quick) wrong = wrong.slice(0, 5);
  const right = preds.map((p, i) => (p === labels[i] ? i : -1)).filter((i) => i >= 0).slice(0, o.laeN);
  const take = (idx: number[]) => tf.tidy(() => tf.gather(test.images, tf.tensor1d(idx, 'int32'))) as tf.Tensor4D;
  const files: string[] = [];
  const search = { ...LSE_DEFAULTS, generator: gen, maxSteps: o.maxSteps, stepSize: o.stepSize, recordPath: false };
  const tag = `${gname}-${slug}`;
  // LSE on the misclassified images, toward the true label.
  const t0 = performance.now();
  const xw = take(wrong);
  const r = await latentSearch(c, gen, xw, wrong.map((i) => labels[i]), search);
  const lseMs = (performance.now() - t0) / Math.max(1, wrong.length);
  const okIdx = r.success.map((s, i) => (s ? i : -1)).filter((i) => i >= 0);
  const lseRate = okIdx.length / Math.max(1, wrong.length);
  // Examples (Fig. 5): predicted, x, x', x' − x, label.
  const tiles = [];
  const labs: string[] = [];
  for (const i of okIdx.slice(0, 6)) {
    tiles.push(renderImage(xw, { index: i, scale: 3 }), renderImage(r.perturbed, { index: i, scale: 3, range: 'auto' }), renderMap(r.perturbation, { index: i, scale: 3 }));
    labs.push(`x: said ${preds[wrong[i]]}`, `x': ${r.predicted[i]}`, `x' − x (true ${labels[wrong[i]]})`);
  }
  if (tiles.length) {
    const f = path.join(o.dir, `${tag}-examples.png`);
    writePng(f, grid(tiles, { cols: 3, labels: labs, title: `LSE, ${gname}, classifier ${cname}` }));
    files.push(f);
  }
  // §5: dataset-bias heatmap = mean perturbation over the successful LSEs.
  if (okIdx.length) {
    const heat = tf.tidy(() => tf.mean(tf.gather(r.perturbation, tf.tensor1d(okIdx, 'int32')), 0, true));
    const f = path.join(o.dir, `${tag}-bias-heatmap.png`);
    writePng(f, grid([renderMap(heat, { scale: 8 })], { title: `mean x' − x, ${okIdx.length} LSEs` }));
    files.push(f);
    heat.dispose();
  }
  tf.dispose([xw, r.perturbed, r.perturbation, r.logitsAfter]);
  // LAE toward every other class.
  const t1 = performance.now();
  const xr = take(right);
  let tried = 0;
  let ok = 0;
  const laeEps: number[] = [];
  for (let target = 0; target < 10; target++) {
    const idx = right.map((gi, j) => (labels[gi] !== target ? j : -1)).filter((j) => j >= 0);
    if (!idx.length) continue;
    const xs = tf.tidy(() => tf.gather(xr, tf.tensor1d(idx, 'int32'))) as tf.Tensor4D;
    const q = await latentSearch(c, gen, xs, idx.map(() => target), { ...search, maxSteps: o.laeSteps });
    tried += idx.length;
    q.success.forEach((s, j) => {
      if (s) {
        ok++;
        laeEps.push(q.epsNorm[j]);
      }
    });
    tf.dispose([xs, q.perturbed, q.perturbation, q.logitsAfter]);
  }
  xr.dispose();
  const laeMs = (performance.now() - t1) / Math.max(1, tried);
  const accuracy = 1 - preds.filter((p, i) => p !== labels[i]).length / labels.length;
  const row = {
    generator: gname, classifier: cname, 'test accuracy': pct(accuracy), 'LSE images': wrong.length, 'LSE success': pct(lseRate), 'LSE mean ‖ε‖': mean(okIdx.map((i) => r.epsNorm[i])), 'LSE mean steps': mean(okIdx.map((i) => r.steps[i])),
    'paper LSE (success / ‖ε‖)': PAPER[gname].lse, 'LAE runs': tried, 'LAE success': pct(ok / Math.max(1, tried)), 'LAE mean ‖ε‖': mean(laeEps),
    'paper LAE (success / ‖ε‖)': PAPER[gname].lae, 'LSE s/image': lseMs / 1000, 'LAE s/run': laeMs / 1000,
  };
  return { row, files, json: { ...row, accuracy, lseSuccessRate: lseRate, laeSuccessRate: ok / Math.max(1, tried), stepsToSuccess: mean(okIdx.map((i) => r.steps[i])) } };
}

registerExperiment({
  name: 'lse',
  description: 'seed 000 §3.2: LSE and LAE success rates and ‖ε‖ with the 2-D and 10-D VAE, examples, dataset-bias heatmap',
  async run(options: TaskOptions) {
    await initBackend();
    const quick = Boolean(options.quick);
    const dir = outDir(options, 'lse');
    const { c, name } = await firstDefault(['mnist-cnn', 'mnist-mlp']);
    const { loadMnist } = await import('../data/index.js');
    const { test, labels, preds } = await predictedTestSplit(c);
    const train = await loadMnist({ split: 'train', seed: 0, limit: quick ? 1000 : undefined });
    const o = {
      quick, dir, laeN: Number(options.laeImages ?? (quick ? 4 : 30)),
      maxSteps: Number(options.maxSteps ?? (quick ? 100 : 500)), laeSteps: Number(options.laeSteps ?? (quick ? 50 : 300)),
      stepSize: Number(options.stepSize ?? 0.1),
    };
    const rows: Array<Record<string, string | number>> = [];
    const json: Record<string, unknown> = { classifier: name, backend: currentBackend(), testImages: test.labels.length, laeImages: o.laeN, maxSteps: o.maxSteps, laeSteps: o.laeSteps, stepSize: o.stepSize };
    const files: string[] = [];
    for (const gname of ['mnist-vae-2d', 'mnist-vae-10d'] as const) {
      const gen = await generator(gname);
      // Seed 000's own setup: a classifier trained on the frozen VAE's code (attachClassifier).
      const head = await attachClassifier(gen, train, { epochs: 20, quiet: true, name: `${gname}+head` });
      const headPreds = await head.classifier.predictClasses(test.images);
      for (const [cl, cname, slug, p] of [[c, name, name, preds], [head.classifier, 'head on μ(x)', 'head', headPreds]] as const) {
        const m = await measureLse(cl, cname, slug, gen, gname, { images: test.images, labels, preds: p }, o);
        rows.push(m.row);
        files.push(...m.files);
        json[`${gname} / ${cname}`] = m.json;
      }
      head.dispose();
    }
    test.dispose();
    train.dispose();
    c.model?.dispose();
    const markdown = `# Latent sympathetic examples (seed 000 §3.2)\n\nTwo classifiers per VAE: ${name} (pixels), and seed 000's setup — a classifier attached to the VAE and trained without updating it ` +
      `(an MLP 64 → 10 on the encoder mean μ(x), \`attachClassifier\`). Misclassified images of the ${test.labels.length}-image MNIST test split ` +
      `(the paper: 87); λ = ${o.stepSize}, at most ${o.maxSteps} steps (LAE: ${o.laeSteps}), stop at c(x') = y; ${currentBackend()}. ‖ε‖ is averaged over successful searches. ` +
      `LAE: ${o.laeN} correctly classified images pushed toward each of the other 9 classes.\n\n${markdownTable(rows)}\n\n` +
      figureLinks(files) + '\n';
    files.push(...writeReport(dir, 'lse', markdown, json));
    return { rows, json, markdown, files };
  },
});

registerExperiment({
  name: 'lse-latent-maps',
  description: 'seed 000 Figs. 2–4: class maps of c(g(z)) and c(x\') over the 2-D latent space, CE contours, the ε path',
  async run(options: TaskOptions) {
    await initBackend();
    const quick = Boolean(options.quick);
    const dir = outDir(options, 'lse-latent-maps');
    const { c, name } = await firstDefault(['mnist-cnn', 'mnist-mlp']);
    const gen = await generator('mnist-vae-2d');
    const { writePng, grid, renderImage, renderMap } = await import('../render/index.js');
    const { test, labels, preds } = await predictedTestSplit(c);
    const G = quick ? 25 : 61;
    const R = 3;
    const coords = Array.from({ length: G }, (_, i) => -R + (2 * R * i) / (G - 1));
    const files: string[] = [];
    // Grid of z (row 0 = top = largest z2).
    const grid2 = tf.tensor2d(coords.slice().reverse().flatMap((z2) => coords.map((z1) => [z1, z2])));
    // Fig. 2: c(g(z)).
    const gImgs = tf.tidy(() => gen.decode(grid2));
    const fig2 = await classesAndCe(c, gImgs);
    gImgs.dispose();
    const toRows = (a: number[]) => Array.from({ length: G }, (_, r) => a.slice(r * G, (r + 1) * G));
    const cell = 6;
    const toPx = (z1: number, z2: number) => [((z1 + R) / (2 * R)) * (G - 1) * cell + cell / 2, ((R - z2) / (2 * R)) * (G - 1) * cell + cell / 2];
    // A misclassified image whose LSE succeeds (else the first misclassified one).
    const wrong = preds.map((p, i) => (p !== labels[i] ? i : -1)).filter((i) => i >= 0).slice(0, quick ? 3 : 20);
    if (!wrong.length) throw new Error('the classifier makes no mistakes on the test split; nothing to explain');
    const xw = tf.tidy(() => tf.gather(test.images, tf.tensor1d(wrong, 'int32'))) as tf.Tensor4D;
    const r = await latentSearch(c, gen, xw, wrong.map((i) => labels[i]), { ...LSE_DEFAULTS, generator: gen, maxSteps: quick ? 100 : 500 });
    // The successful search with the most steps (a visible path), else the first image.
    let pick = 0;
    r.success.forEach((ok, i) => {
      if (ok && (!r.success[pick] || r.steps[i] > r.steps[pick])) pick = i;
    });
    const gi = wrong[pick];
    const y = labels[gi];
    const z = r.z[pick];
    const img2 = classMapImage(toRows(fig2.cls), { cell });
    mark(img2, ...(toPx(0, 0) as [number, number]), [255, 255, 255], 7);
    mark(img2, ...(toPx(z[0], z[1]) as [number, number]), [0, 0, 0], 7);
    const f2 = path.join(dir, 'fig2-class-map-g-z.png');
    writePng(f2, grid([img2], { title: 'c(g(z))', padding: 6 }));
    files.push(f2);
    // Fig. 3/4: c(x') over ε grid centred at e(x) with CE(c(x'), y) contours and the path.
    const x1 = tf.slice(test.images, gi, 1);
    const zGrid = tf.tidy(() => tf.add(grid2, tf.tensor2d([z]))) as tf.Tensor2D;
    const xp = tf.tidy(() => {
      const gz = gen.decode(tf.tensor2d([z]));
      return tf.add(x1, tf.sub(gen.decode(zGrid), gz)) as tf.Tensor4D;
    });
    const fig3 = await classesAndCe(c, xp, y);
    tf.dispose([xp, zGrid]);
    const toPxE = (e1: number, e2: number) => toPx(e1, e2);
    const img3 = classMapImage(toRows(fig3.cls), { cell, ce: toRows(fig3.ce), band: 1 });
    const p = r.path[pick];
    const firstOk = r.success[pick] ? r.steps[pick] : -1;
    for (const [k, pt] of p.entries()) mark(img3, ...(toPxE(pt[0] - z[0], pt[1] - z[1]) as [number, number]), [20, 20, 20], 3);
    mark(img3, ...(toPxE(0, 0) as [number, number]), [255, 255, 255], 7);
    if (firstOk >= 0) mark(img3, ...(toPxE(p[firstOk][0] - z[0], p[firstOk][1] - z[1]) as [number, number]), [255, 215, 0], 7);
    const f3 = path.join(dir, 'fig3-4-class-map-x-prime-path.png');
    writePng(f3, grid([img3], { title: `c(x'), true ${y}`, padding: 6 }));
    files.push(f3);
    // Perturbation at steps along the path.
    const stepsShown = [...new Set([0, Math.floor(p.length / 4), Math.floor(p.length / 2), Math.floor((3 * p.length) / 4), p.length - 1])].filter((s) => s >= 0 && s < p.length);
    const tiles = [];
    const labs: string[] = [];
    for (const s of stepsShown) {
      const [xs, d] = tf.tidy(() => {
        const gz = gen.decode(tf.tensor2d([z]));
        const diff = tf.sub(gen.decode(tf.tensor2d([p[s]])), gz);
        return [tf.add(x1, diff), diff];
      });
      const cls = (await c.predictClasses(xs))[0];
      tiles.push(renderImage(xs, { scale: 3, range: 'auto' }), renderMap(d, { scale: 3 }));
      labs.push(`step ${s}: c(x') = ${cls}`, `x' − x`);
      tf.dispose([xs, d]);
    }
    const f4 = path.join(dir, 'fig4-steps.png');
    writePng(f4, grid(tiles, { cols: 2, labels: labs, title: 'LSE steps' }));
    files.push(f4);
    const json = {
      classifier: name, generator: 'mnist-vae-2d', grid: G, image: gi, trueClass: y, predicted: preds[gi], success: r.success[pick], steps: r.steps[pick],
      epsNorm: r.epsNorm[pick], classesInGZ: [...new Set(fig2.cls)].sort(), classesReachableInXPrime: [...new Set(fig3.cls)].sort(),
    };
    const rows = [{ image: gi, 'true class': y, said: preds[gi], success: String(r.success[pick]), steps: r.steps[pick], '‖ε‖': r.epsNorm[pick], 'classes in c(g(z))': json.classesInGZ.join(' '), "classes in c(x')": json.classesReachableInXPrime.join(' ') }];
    tf.dispose([grid2, x1, xw, r.perturbed, r.perturbation, r.logitsAfter]);
    test.dispose();
    c.model?.dispose();
    const markdown = `# LSE latent maps (seed 000 Figs. 2–4)\n\nClassifier ${name}, generator mnist-vae-2d, ${G}×${G} grid on [−3, 3]². ` +
      `fig2: class of c(g(z)) (colours: tab10 by class), white = z = 0, black = e(x). fig3-4: class of c(x') over ε centred on e(x), darker bands and lines = ` +
      `CE(c(x'), y) contours every 1 nat, dark dots = the path of z + ε, white = start, gold = first step with c(x') = y.\n\n${markdownTable(rows)}\n\n` +
      figureLinks(files) + '\n';
    files.push(...writeReport(dir, 'lse-latent-maps', markdown, json));
    return { rows, json, markdown, files };
  },
});
