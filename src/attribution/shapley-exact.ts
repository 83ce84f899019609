/**
 * `shapley-exact`: exact Shapley values of up to 16 features (a band grid by default: 3×3):
 * φ_i = Σ_{S ⊆ F∖{i}} |S|!(F−1−|S|)!/F! · (v(S ∪ {i}) − v(S)), with v(S) the target logit of x whose
 * pixels outside the features in S come from the baseline. All 2^F coalition values are evaluated
 * (batched across coalitions and images) and combined in float64, summing in increasing order of the
 * coalition's bit pattern (bit i = feature i). In exact arithmetic this is Captum's ShapleyValues
 * (the mean over all F! orderings); Captum accumulates F!·F marginal contributions in float32,
 * which costs it up to 1e-3 relative error on 9 features (FORMAT.md §4), this does not.
 *
 * Efficiency holds by construction: Σ_i φ_i = v(F) − v(∅) = f(x) − f(baseline); extras carry the
 * (float64 rounding) completenessError and scoreDifference, and the coalition count.
 */

import { registerMethod } from '../core/registry.js';
import { OptionError } from '../core/errors.js';
import { makeBaseline, type BaselineSpec } from './integrated-gradients.js';
import { coalitionScores, featureMasks, FEATURE_MASK_DEFAULTS, paintFeatures, type CoalitionRow, type FeatureMaskOptions } from './feature-mask.js';
import { positiveInt } from './math.js';

export const SHAPLEY_EXACT_MAX_FEATURES = 16;

export interface ShapleyExactOptions extends FeatureMaskOptions {
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  /** Coalition images per forward call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

/** Shapley values from all 2^F coalition values v[S] (S as a bit pattern), in float64. */
export function shapleyFromCoalitions(v: ArrayLike<number>, f: number): Float64Array {
  // w[s] = s!(f−1−s)!/f!
  const fact = [1];
  for (let i = 1; i <= f; i++) fact.push(fact[i - 1] * i);
  const w = Array.from({ length: f }, (_, s) => (fact[s] * fact[f - 1 - s]) / fact[f]);
  const phi = new Float64Array(f);
  const popcount = (m: number) => {
    let c = 0;
    for (let b = m; b; b &= b - 1) c++;
    return c;
  };
  for (let s = 0; s < 1 << f; s++) {
    const size = popcount(s);
    for (let i = 0; i < f; i++) {
      if (s & (1 << i)) continue;
      phi[i] += w[size] * (v[s | (1 << i)] - v[s]);
    }
  }
  return phi;
}

/** Presence vector of coalition bit pattern s over f features. */
export function coalition(s: number, f: number): Uint8Array {
  const z = new Uint8Array(f);
  for (let i = 0; i < f; i++) z[i] = (s >> i) & 1;
  return z;
}

registerMethod<ShapleyExactOptions>({
  name: 'shapley-exact',
  family: 'attribution',
  description: 'exact Shapley values of ≤ 16 features (all 2^F coalitions, float64; Captum ShapleyValues without its float32 accumulator)',
  signed: true,
  memory: 'forward',
  perImageExtras: ['completenessError', 'scoreDifference', 'featureCount'],
  parallel: 'images',
  defaults: { featureMask: 'grid', ...FEATURE_MASK_DEFAULTS, baseline: 'zeros', baselineValue: 0, blurSigma: 5, batchSize: 256 },
  async run(classifier, x, targets, options, context) {
    const batchSize = positiveInt('batchSize', options.batchSize);
    const masks = await featureMasks(classifier, x, options);
    for (const m of masks) {
      if (m.count > SHAPLEY_EXACT_MAX_FEATURES) {
        throw new OptionError(`shapley-exact evaluates all 2^F coalitions: expected at most ${SHAPLEY_EXACT_MAX_FEATURES} features; got ${m.count} (use shapley-sampling or kernel-shap)`);
      }
    }
    const baseline = makeBaseline(classifier, x, options.baseline, options.baselineValue, options.blurSigma);
    try {
      const offsets: number[] = [];
      let total = 0;
      for (const m of masks) {
        offsets.push(total);
        total += 1 << m.count;
      }
      // rows generated on demand: 2^16 coalitions per image need not sit in memory as arrays
      const rowAt = (r: number): CoalitionRow => {
        let i = offsets.length - 1;
        while (offsets[i] > r) i--;
        return { image: i, present: coalition(r - offsets[i], masks[i].count) };
      };
      const v = await coalitionScores(classifier, x, baseline, targets, masks, (s, c) => Array.from({ length: c }, (_, j) => rowAt(s + j)), total, batchSize, (f) => context.progress?.(f, 'shapley-exact'));
      const completenessError: number[] = [];
      const scoreDifference: number[] = [];
      const values = masks.map((m, i) => {
        const vi = v.subarray(offsets[i], offsets[i] + (1 << m.count));
        const phi = shapleyFromCoalitions(vi, m.count);
        const diff = vi[(1 << m.count) - 1] - vi[0];
        scoreDifference.push(diff);
        completenessError.push(phi.reduce((a, b) => a + b, 0) - diff);
        return phi;
      });
      return { attribution: paintFeatures(masks, values, x.shape), extras: { completenessError, scoreDifference, featureCount: masks.map((m) => m.count) } };
    } finally {
      baseline.dispose();
    }
  },
});

