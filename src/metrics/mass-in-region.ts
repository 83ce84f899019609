/**
 * Relevance mass accuracy (Arras et al. 2022): the share of the positive (or absolute) per-pixel
 * relevance that falls inside the ground-truth region — by default the biased-MNIST square, where a
 * model trained on biased MNIST looks for its "8". Higher is better when the region is what the
 * model uses.
 */
import { registerMetric } from './registry.js';
import { pixelRelevance } from './common.js';
import { regionPixels, type RegionOption } from './localisation.js';
import type { SquareOptions } from '../data/derived.js';
import { oneOf } from '../attribution/math.js';

export interface MassInRegionOptions {
  /** 'square' (the biased-MNIST square, see `square`) or a mask tensor [1 or N, H, W, C] (> 0 inside). */
  region: RegionOption;
  square: SquareOptions;
  /** Which relevance counts: the positive part (evidence for the target) or magnitudes. */
  part: 'positive' | 'absolute';
}

registerMetric<MassInRegionOptions>({
  name: 'mass-in-region',
  family: 'localisation',
  description: 'share of the positive relevance inside the ground-truth region (default: the biased-MNIST square)',
  higherIsBetter: true,
  reexplains: false,
  defaults: { region: 'square', square: {}, part: 'positive' },
  async run(ctx, o) {
    const part = oneOf('part', o.part, ['positive', 'absolute'] as const);
    const [n, h, w] = ctx.x.shape;
    const inside = await regionPixels(o.region, o.square, n, h, w);
    const maps = await pixelRelevance(ctx.attribution);
    const scores = maps.map((m, i) => {
      let tot = 0;
      let inn = 0;
      for (let p = 0; p < m.length; p++) {
        const v = part === 'positive' ? Math.max(0, m[p]) : Math.abs(m[p]);
        tot += v;
        if (inside[i][p]) inn += v;
      }
      return tot > 0 ? inn / tot : 0;
    });
    return { scores };
  },
});
