/**
 * Random logit test (Sixt et al. 2020): explain each image again for a different class drawn from
 * the seed, and measure how similar the two maps are (SSIM by default). A class-sensitive method
 * gives a different map for another class: lower similarity is better.
 */
import { registerMetric } from './registry.js';
import { metricRng, pixelRelevance } from './common.js';
import { normaliseMap, similarity, similarityName, type SimilarityName } from './similarity.js';
import { OptionError } from '../core/errors.js';

export interface RandomLogitOptions {
  similarity: SimilarityName;
  abs: boolean;
  seed: number;
}

registerMetric<RandomLogitOptions>({
  name: 'random-logit',
  family: 'randomization',
  description: 'similarity of the map for the target and for a seeded random other class (Sixt et al. 2020)',
  higherIsBetter: false,
  reexplains: true,
  defaults: { similarity: 'ssim', abs: false, seed: 0 },
  async run(ctx, o) {
    const sim = similarityName(o.similarity);
    const k = ctx.classifier.numClasses;
    if (k < 2) throw new OptionError('metric "random-logit" needs at least 2 classes; got 1');
    const rng = metricRng(o.seed);
    const others = ctx.targets.map((t) => {
      const r = Math.floor(rng() * (k - 1));
      return r >= t ? r + 1 : r;
    });
    const [, h, w] = ctx.x.shape;
    const a = await ctx.explain(ctx.classifier, ctx.x, others);
    const maps = await pixelRelevance(a);
    a.dispose();
    const original = await pixelRelevance(ctx.attribution);
    const scores = original.map((m, i) => similarity(sim, normaliseMap(m, o.abs), normaliseMap(maps[i], o.abs), h, w));
    return { scores, extras: { otherClass: others } };
  },
});
