/**
 * Complexity (Bhatt et al. 2020): the Shannon entropy (nats) of the fractional contributions
 * pᵢ = |aᵢ| / Σⱼ |aⱼ| of the pixels; 0 when one pixel holds all relevance, ln(n) when all hold the
 * same. Lower is better. Extras: effective complexity (Nguyen & Martínez 2020), the number of pixels
 * whose |aᵢ| exceeds `eps` times the largest |a|.
 */
import { registerMetric } from './registry.js';
import { pixelRelevance } from './common.js';
import { finiteNumber } from '../attribution/math.js';

/** Entropy (nats) of |v| / Σ|v| (0 for an all-zero vector). */
export function entropy(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += Math.abs(values[i]);
  if (s === 0) return 0;
  let h = 0;
  for (let i = 0; i < values.length; i++) {
    const p = Math.abs(values[i]) / s;
    if (p > 0) h -= p * Math.log(p);
  }
  return h;
}

/** Number of entries with |v| > eps · max|v|. */
export function effectiveComplexity(values: ArrayLike<number>, eps: number): number {
  let mx = 0;
  for (let i = 0; i < values.length; i++) mx = Math.max(mx, Math.abs(values[i]));
  let k = 0;
  for (let i = 0; i < values.length; i++) if (Math.abs(values[i]) > eps * mx && mx > 0) k++;
  return k;
}

export interface ComplexityOptions {
  /** Relative threshold of effective complexity. */
  eps: number;
}

registerMetric<ComplexityOptions>({
  name: 'complexity',
  family: 'complexity',
  description: 'entropy of the fractional per-pixel contributions (Bhatt et al. 2020); effective complexity in extras',
  higherIsBetter: false,
  reexplains: false,
  defaults: { eps: 0.01 },
  async run(ctx, o) {
    const eps = finiteNumber('eps', o.eps, 0);
    const maps = await pixelRelevance(ctx.attribution);
    return { scores: maps.map(entropy), extras: { effectiveComplexity: maps.map((m) => effectiveComplexity(m, eps)) } };
  },
});
