/**
 * Sparseness (Chalasani et al. 2020): the Gini index of the absolute per-pixel attribution,
 * G = Σᵢ (2i − n − 1)·aᵢ / (n·Σ aᵢ) over the values sorted ascending (i = 1…n). 0: relevance spread
 * evenly; → 1: on a single pixel. Higher is better (a concise explanation).
 */
import { registerMetric } from './registry.js';
import { pixelRelevance } from './common.js';

/** Gini index of the absolute values (0 for an all-zero vector). */
export function gini(values: ArrayLike<number>): number {
  const a = Float64Array.from(values, Math.abs).sort();
  const n = a.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (2 * (i + 1) - n - 1) * a[i];
    den += a[i];
  }
  return den > 0 ? num / (n * den) : 0;
}

registerMetric<Record<string, never>>({
  name: 'sparseness',
  family: 'complexity',
  description: 'Gini index of the absolute per-pixel attribution (Chalasani et al. 2020)',
  higherIsBetter: true,
  reexplains: false,
  defaults: {},
  async run(ctx) {
    return { scores: (await pixelRelevance(ctx.attribution)).map(gini) };
  },
});
