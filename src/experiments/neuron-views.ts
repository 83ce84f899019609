/**
 * `glasswing experiment neuron-views`: seed 004 Figs. 2–4 and its Fig. 3 receptive fields on MNIST —
 * for 8 channels of the last conv layer of the shipped MNIST CNN, the top real test images and the top
 * adversarial images (targeted iterative FGSM towards each image's least likely classes, ε = 0.3, as
 * seed 004 attacks), the input patches under the receptive field of the maximal position, and the
 * channel's actual receptive field from discrepancy maps of its top images beside its theoretical
 * field.
 *
 * Per channel the table reads the pictures in numbers: the label purity of the top real images (the
 * fraction sharing their most common class — the neuron's "meaning"), the purity of the top
 * adversarial images by their source class and by their attack's target, how many adversarial top
 * images were pushed towards the neuron's own class (seed 004's red boxes), and the actual field's
 * extent. Seed 004 finds that real top images share a meaning that adversarial ones lack.
 *
 * Options: quick (120 test images, 2 channels, 1 attack per image, 3 PGD steps, k 6), images (default:
 * the whole test split), channels (comma list, default 0..7), percent (top p % of each set, default 1),
 * perImage (attacks per image, default 3), steps (PGD steps, default 10), model (default mnist-cnn).
 */
import * as path from 'node:path';
import { registerExperiment, type SeedClaim, type TaskOptions } from '../tasks/registry.js';
import { initBackend } from '../engine/backend.js';
import { topRealVsAdversarial } from '../interpretation/top-adversarial.js';
import { empiricalReceptiveField } from '../interpretation/empirical-receptive-field.js';
import { plotRealVsAdversarial, plotReceptiveField } from '../render/views.js';
import { grid } from '../render/grid.js';
import { writePng } from '../render/png.js';
import { outDir, writeReport, figureLinks, markdownTable, mean, pct } from './report.js';
import { requireDefault, mnistSplit } from './shipped.js';

/** The most common value and its share. */
function purity(values: number[]): { value: number; share: number } {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = -1;
  let n = 0;
  for (const [v, c] of counts) if (c > n || (c === n && v < best)) [best, n] = [v, c];
  return { value: best, share: values.length ? n / values.length : 0 };
}

registerExperiment({
  name: 'neuron-views',
  description: 'top real vs adversarial images, patches and receptive fields of 8 channels of the MNIST CNN\'s last conv layer (seed 004 Figs. 2-4)',
  async run(options: TaskOptions) {
    await initBackend();
    const quick = Boolean(options.quick);
    const modelName = String(options.model ?? 'mnist-cnn');
    const nImages = Number(options.images ?? (quick ? 120 : 1_000_000));
    const channels = options.channels !== undefined ? String(options.channels).split(',').map(Number) : quick ? [0, 1] : [0, 1, 2, 3, 4, 5, 6, 7];
    const percent = options.k !== undefined ? undefined : Number(options.percent ?? (quick ? 5 : 1));
    const k = options.k !== undefined ? Number(options.k) : undefined;
    const perImage = Number(options.perImage ?? (quick ? 1 : 3));
    const steps = Number(options.steps ?? (quick ? 3 : 10));
    const rfK = quick ? 3 : 10;
    const dir = outDir(options, 'neuron-views');
    const cnn = await requireDefault(modelName);
    const layer = cnn.convLayers().at(-1)!;
    const test = await mnistSplit('test', nImages, 0);
    const files: string[] = [];
    const rows: Array<Record<string, string | number>> = [];
    const perChannel: Array<Record<string, unknown>> = [];
    const t0 = performance.now();
    try {
      const results = await topRealVsAdversarial(cnn, test, {
        layer, units: channels.map((channel) => ({ channel })), percent, k, attack: 'pgd', epsilon: 0.3, steps, stepSize: 0.05, perImage,
      });
      const topSeconds = (performance.now() - t0) / 1000;
      const fieldTiles = [];
      const fieldLabels: string[] = [];
      try {
        for (let u = 0; u < channels.length; u++) {
          const ch = channels[u];
          const r = results[u];
          const realP = purity(r.real.top.map((t) => t.label));
          const advSource = purity(r.adversarial.top.map((t) => t.label));
          const advTarget = purity(r.adversarial.top.map((t) => t.target));
          const towardsOwn = r.adversarial.top.filter((t) => t.target === realP.value).length / Math.max(1, r.adversarial.top.length);
          const png = path.join(dir, `${layer.replace(/[^A-Za-z0-9-]+/g, '_')}-channel-${ch}.png`);
          writePng(png, plotRealVsAdversarial(r, {
            range: [cnn.domain.low, cnn.domain.high], max: 9,
            title: `${modelName} ${layer} channel ${ch}: top real (of ${r.real.scanned}) vs top adversarial (of ${r.adversarial.scanned}) images`,
          }));
          files.push(png);
          const erf = await empiricalReceptiveField(cnn, test, { layer, channel: ch, k: rfK, patch: 3, stride: quick ? 2 : 1, seed: 1 });
          const half = erf.extent(0.5);
          fieldTiles.push(plotReceptiveField(erf.map, erf.theoretical, { scale: 3 }));
          fieldLabels.push(`channel ${ch}: ≥50 % ${half.rows}×${half.cols}`);
          rows.push({
            channel: ch, 'top real': r.real.top.length, 'real purity (label)': `${pct(realP.share)} (${realP.value})`,
            'top adversarial': r.adversarial.top.length, 'adv purity (source)': `${pct(advSource.share)} (${advSource.value})`,
            'adv purity (target)': `${pct(advTarget.share)} (${advTarget.value})`, 'adv aimed at the real label': pct(towardsOwn),
            'theoretical field': `${erf.theoretical.rows.size}×${erf.theoretical.cols.size}`, 'actual field ≥ 50 %': `${half.rows}×${half.cols}`,
          });
          perChannel.push({
            channel: ch, realPurity: realP.share, realLabel: realP.value, advSourcePurity: advSource.share, advTargetPurity: advTarget.share, advTowardsOwn: towardsOwn,
            real: r.real.top.map((t) => ({ index: t.index, label: t.label, score: t.score, position: t.position })),
            adversarial: r.adversarial.top.map((t) => ({ index: t.index, label: t.label, target: t.target, prediction: t.prediction, score: t.score, position: t.position })),
            theoreticalField: erf.theoretical, actualField50: half,
          });
        }
      } finally {
        for (const r of results) r.dispose();
      }
      const fieldPng = path.join(dir, 'receptive-fields.png');
      writePng(fieldPng, grid(fieldTiles, { labels: fieldLabels, cols: Math.min(4, fieldTiles.length), fontSize: 10, title: `${layer}: actual receptive fields (theoretical boxed)` }));
      files.push(fieldPng);
      const m = (key: string) => mean(perChannel.map((p) => p[key] as number));
      const attackSuccess = results[0]?.attackSuccess ?? 0;
      const claims: SeedClaim[] = [{
        claim: 'A neuron\'s top real images share a meaning that its top adversarial images lack',
        seed: '004 Figs. 2-4',
        seedFigure: 'explicit semantics in real, none in adversarial top images (qualitative, VGG-16 pool5 / conv5_3)',
        measured: `mean label purity of the top ${percent !== undefined ? `${percent} %` : k}: real ${pct(m('realPurity'))}, adversarial by source ${pct(m('advSourcePurity'))}, by target ${pct(m('advTargetPurity'))} (${channels.length} channels of ${layer})`,
        note: m('realPurity') > m('advSourcePurity') ? undefined : 'on MNIST the adversarial top images keep their source digit\'s shape (ε = 0.3 changes strokes little)',
      }];
      const json: Record<string, unknown> = {
        model: modelName, layer, images: test.labels.length, channels, percent, k, perImage, steps, epsilon: 0.3, attackSuccess, topSeconds, perChannel,
      };
      const markdown = `# Neuron views (seed 004 Figs. 2–4, Fig. 3) on ${modelName}, layer ${layer}\n\n` +
        `${test.labels.length} MNIST test images; ${perImage} adversarial image(s) per test image by targeted PGD without random start (iterative FGSM, ` +
        `ε = 0.3, ${steps} steps of 0.05) towards its least likely classes (targets reached: ${pct(attackSuccess)}). For each channel the top ` +
        `${percent !== undefined ? `${percent} %` : k} of each set by the channel's maximum over positions; "purity" is the share of the most common class among them ` +
        `(in brackets). Actual receptive fields: discrepancy maps of random 3×3 patches over the channel's ${rfK} top real images, calibrated and summed. ` +
        `Top images, adversarial images and patches for all channels: ${topSeconds.toFixed(1)} s.\n\n` +
        `${markdownTable(rows)}\n\n## Seed claims\n\n` +
        markdownTable(claims.map((c) => ({ claim: c.claim, seed: c.seed, 'seed figure': c.seedFigure, measured: c.measured, note: c.note ?? '' }))) +
        `\n\n${figureLinks(files)}\n`;
      files.push(...writeReport(dir, 'neuron-views', markdown, json));
      return { rows, json, markdown, files, claims };
    } finally {
      test.dispose();
      cnn.model?.dispose();
    }
  },
});
