/**
 * Pointing game (Zhang et al. 2018): a hit (1) when the pixel of largest relevance lies inside the
 * ground-truth region, grown by `tolerance` pixels; else a miss (0). Default region: the
 * biased-MNIST square. Higher is better.
 */
import { registerMetric } from './registry.js';
import { pixelRelevance } from './common.js';
import { regionPixels, type RegionOption } from './localisation.js';
import type { SquareOptions } from '../data/derived.js';
import { positiveInt } from '../attribution/math.js';

export interface PointingGameOptions {
  region: RegionOption;
  square: SquareOptions;
  /** Pixels the region is grown by (Zhang et al. use 15 at 224²). */
  tolerance: number;
}

registerMetric<PointingGameOptions>({
  name: 'pointing-game',
  family: 'localisation',
  description: 'hit when the most relevant pixel lies in the ground-truth region (± tolerance; default: the biased-MNIST square)',
  higherIsBetter: true,
  reexplains: false,
  defaults: { region: 'square', square: {}, tolerance: 0 },
  async run(ctx, o) {
    const tol = positiveInt('tolerance', o.tolerance, 0);
    const [n, h, w] = ctx.x.shape;
    const inside = await regionPixels(o.region, o.square, n, h, w);
    const maps = await pixelRelevance(ctx.attribution);
    const argmax: Array<[number, number]> = [];
    const scores = maps.map((m, i) => {
      let best = 0;
      for (let p = 1; p < m.length; p++) if (m[p] > m[best]) best = p;
      const r = Math.floor(best / w);
      const c = best % w;
      argmax.push([r, c]);
      for (let dr = -tol; dr <= tol; dr++) {
        for (let dc = -tol; dc <= tol; dc++) {
          const rr = r + dr;
          const cc = c + dc;
          if (rr >= 0 && rr < h && cc >= 0 && cc < w && inside[i][rr * w + cc]) return 1;
        }
      }
      return 0;
    });
    return { scores, extras: { argmax } };
  },
});
