/**
 * Model-parameter randomization (Adebayo et al. 2018, "Sanity checks for saliency maps"): explain
 * again with the weights of layers replaced by seeded random draws — cascading (from the logits
 * down, each step keeping the layers above randomized) or independent (one layer at a time) — and
 * measure per layer how similar the new map is to the original: Spearman rank correlation, SSIM and
 * HOG similarity. A map that depends on what the network learned changes: lower similarity is
 * better. The score is the mean over layers of the chosen similarity.
 *
 * The weights are never written: each step explains a copy of the graph whose randomized nodes read
 * new tensors (models.ts), released after the step, whether the method succeeds or throws.
 */
import { registerMetric, type MetricCurve } from './registry.js';
import { metricRng, pixelRelevance } from './common.js';
import { normaliseMap, similarity, similarityName, SIMILARITIES, type SimilarityName } from './similarity.js';
import { randomizedClassifier, weightNodes } from './models.js';
import { oneOf } from '../attribution/math.js';
import { OptionError } from '../core/errors.js';

export interface RandomizationOptions {
  /** 'cascading': top layer first, then cumulatively down; 'independent': one layer at a time. */
  mode: 'cascading' | 'independent';
  /** The similarity the score averages (all three are reported as curves). */
  similarity: SimilarityName;
  /** Compare absolute maps (Adebayo et al.'s usual view) rather than signed ones. */
  abs: boolean;
  /** Weight layers to randomize (null: all, in the mode's order). */
  layers: string[] | null;
  seed: number;
}

registerMetric<RandomizationOptions>({
  name: 'randomization',
  family: 'randomization',
  description: 'cascading / independent model-parameter randomization: similarity (Spearman, SSIM, HOG) of the map per randomized layer (Adebayo et al. 2018)',
  higherIsBetter: false,
  reexplains: true,
  needsLayers: true,
  defaults: { mode: 'cascading', similarity: 'spearman', abs: true, layers: null, seed: 0 },
  async run(ctx, o) {
    const mode = oneOf('mode', o.mode, ['cascading', 'independent'] as const);
    const sim = similarityName(o.similarity);
    const all = weightNodes(ctx.classifier);
    if (all.length === 0) throw new OptionError(`metric "randomization" needs weight layers; classifier "${ctx.classifier.name}" has none`);
    const layers = o.layers ? o.layers : [...all].reverse();
    for (const l of layers) if (!all.includes(l)) throw new OptionError(`expected weight layers of "${ctx.classifier.name}" (${all.join(', ')}); got "${l}"`);
    const [n, h, w] = ctx.x.shape;
    const original = (await pixelRelevance(ctx.attribution)).map((m) => normaliseMap(m, o.abs));
    const rng = metricRng(o.seed);
    const seed = Math.floor(rng() * 1e6);
    const values: Record<SimilarityName, number[][]> = { spearman: [], ssim: [], hog: [] };
    for (let i = 0; i < n; i++) for (const s of SIMILARITIES) values[s].push([]);
    for (let step = 0; step < layers.length; step++) {
      const randomized = mode === 'cascading' ? layers.slice(0, step + 1) : [layers[step]];
      const v = randomizedClassifier(ctx.classifier, randomized, seed + step * (mode === 'cascading' ? 0 : 1));
      try {
        const a = await ctx.explain(v.classifier, ctx.x, ctx.targets);
        const maps = (await pixelRelevance(a)).map((m) => normaliseMap(m, o.abs));
        a.dispose();
        for (let i = 0; i < n; i++) for (const s of SIMILARITIES) values[s][i].push(similarity(s, original[i], maps[i], h, w));
      } finally {
        v.dispose();
      }
      ctx.progress?.((step + 1) / layers.length, layers[step]);
    }
    const x = layers.map((_, i) => i + 1);
    const curves: MetricCurve[] = SIMILARITIES.map((s) => ({
      name: s, xLabel: `layers randomized (${mode}, from the top)`, yLabel: `${s} similarity to the original map`, x, labels: layers,
      y: values[s], mean: x.map((_, k) => values[s].reduce((acc, y) => acc + y[k], 0) / n),
    }));
    const scores = values[sim].map((y) => y.reduce((a, b) => a + b, 0) / y.length);
    return { scores, curves, extras: { layers, mode } };
  },
});
