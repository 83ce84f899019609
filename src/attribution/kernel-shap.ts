/**
 * `kernel-shap` (Lundberg & Lee 2017; Captum KernelShap): Shapley values as the weighted linear
 * surrogate over coalitions of features (super-pixels by default, as LIME; or patches, a band grid,
 * a given mask). Coalitions are drawn from the Shapley kernel: a size k ∈ 1…F−1 with probability
 * ∝ (F−1)/(k(F−k)), then k features uniformly, each draw paired with its complement (variance
 * reduction, as the shap package does); with kernel-distributed draws every row then has weight 1.
 * The fit enforces efficiency exactly (Σ φ = f(x) − f(baseline), φ_0 = f(baseline)) by eliminating
 * one coefficient, and solves the least squares in float64 (Cholesky of the normal equations). As the
 * number of samples grows the solution converges to the exact Shapley values.
 *
 * Coalitions of all images are evaluated in batches like LIME's samples. Seeded: every image draws
 * from the same seed, so its result does not depend on the batch.
 */
import { registerMethod } from '../core/registry.js';
import { OptionError } from '../core/errors.js';
import { createRng, type Rng } from '../util/random.js';
import { makeBaseline, type BaselineSpec } from './integrated-gradients.js';
import { coalitionScores, featureMasks, FEATURE_MASK_DEFAULTS, paintFeatures, type CoalitionRow, type FeatureMaskOptions } from './feature-mask.js';
import { cholesky, choleskySolve, positiveInt } from './math.js';

export interface KernelShapOptions extends FeatureMaskOptions {
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  /** Coalitions per image (rounded up to an even number: draws come in complementary pairs). */
  samples: number;
  seed: number;
  /** Coalition images per forward call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

/** `m` coalitions of f features from the Shapley kernel, in complementary pairs. */
export function kernelCoalitions(f: number, m: number, rng: Rng): Uint8Array[] {
  if (f < 2) return [];
  const sizes = Array.from({ length: f - 1 }, (_, i) => i + 1);
  const p = sizes.map((k) => (f - 1) / (k * (f - k)));
  const total = p.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let acc = 0;
  for (const v of p) cdf.push((acc += v / total));
  const out: Uint8Array[] = [];
  const idx = Array.from({ length: f }, (_, i) => i);
  while (out.length < m) {
    const u = rng();
    let k = sizes[cdf.findIndex((c) => u <= c)] ?? f - 1;
    k = Math.max(1, Math.min(f - 1, k));
    const z = new Uint8Array(f);
    for (let j = 0; j < k; j++) {
      const t = j + Math.floor(rng() * (f - j));
      [idx[j], idx[t]] = [idx[t], idx[j]];
      z[idx[j]] = 1;
    }
    out.push(z);
    out.push(z.map((b) => 1 - b));
  }
  return out;
}

/**
 * Least squares of v_s − v_0 ≈ z_s · φ subject to Σ φ = v_F − v_0 (float64): φ_F is eliminated,
 * the normal equations solved by Cholesky (a tiny ridge keeps features never drawn apart from 0).
 */
export function constrainedShapleyFit(z: Uint8Array[], v: ArrayLike<number>, v0: number, vF: number, f: number): Float64Array {
  const delta = vF - v0;
  if (f === 1) return Float64Array.of(delta);
  const n = f - 1;
  const a = new Float64Array(n * n);
  const b = new Float64Array(n);
  const row = new Float64Array(n);
  z.forEach((zs, s) => {
    const last = zs[f - 1];
    const y = v[s] - v0 - last * delta;
    for (let j = 0; j < n; j++) row[j] = zs[j] - last;
    for (let j = 0; j < n; j++) {
      if (row[j] === 0) continue;
      b[j] += row[j] * y;
      for (let k = 0; k <= j; k++) a[j * n + k] += row[j] * row[k];
    }
  });
  let maxDiag = 0;
  for (let j = 0; j < n; j++) maxDiag = Math.max(maxDiag, a[j * n + j]);
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < j; k++) a[k * n + j] = a[j * n + k];
    a[j * n + j] += 1e-10 * Math.max(maxDiag, 1);
  }
  const phi = choleskySolve(cholesky(a, n), n, b);
  const out = new Float64Array(f);
  out.set(phi);
  out[f - 1] = delta - phi.reduce((s, x) => s + x, 0);
  return out;
}

registerMethod<KernelShapOptions>({
  name: 'kernel-shap',
  family: 'attribution',
  description: 'KernelSHAP: Shapley-kernel weighted linear surrogate over feature coalitions with exact efficiency (Captum KernelShap), seeded',
  signed: true,
  memory: 'forward',
  perImageExtras: ['completenessError', 'scoreDifference', 'featureCount'],
  defaults: { featureMask: 'slic', ...FEATURE_MASK_DEFAULTS, baseline: 'zeros', baselineValue: 0, blurSigma: 5, samples: 1000, seed: 0, batchSize: 256 },
  async run(classifier, x, targets, options, context) {
    const batchSize = positiveInt('batchSize', options.batchSize);
    const samples = positiveInt('samples', options.samples, 2);
    const seed = Number(options.seed) || 0;
    const masks = await featureMasks(classifier, x, options, seed);
    const baseline = makeBaseline(classifier, x, options.baseline, options.baselineValue, options.blurSigma);
    try {
      // per image: all absent, all present, then the kernel draws
      const draws = masks.map((m) => kernelCoalitions(m.count, samples, createRng(seed)));
      const rows: CoalitionRow[] = [];
      const offsets: number[] = [];
      masks.forEach((m, i) => {
        offsets.push(rows.length);
        rows.push({ image: i, present: new Uint8Array(m.count) });
        rows.push({ image: i, present: new Uint8Array(m.count).fill(1) });
        for (const z of draws[i]) rows.push({ image: i, present: z });
      });
      if (masks.some((m) => m.count < 1)) throw new OptionError('expected a feature mask with at least one feature');
      const v = await coalitionScores(classifier, x, baseline, targets, masks, rows, rows.length, batchSize, (f) => context.progress?.(f, 'kernel-shap'));
      const completenessError: number[] = [];
      const scoreDifference: number[] = [];
      const values = masks.map((m, i) => {
        const o = offsets[i];
        const v0 = v[o];
        const vF = v[o + 1];
        const phi = constrainedShapleyFit(draws[i], v.subarray(o + 2, o + 2 + draws[i].length), v0, vF, m.count);
        scoreDifference.push(vF - v0);
        completenessError.push(phi.reduce((a, b) => a + b, 0) - (vF - v0));
        return phi;
      });
      return { attribution: paintFeatures(masks, values, x.shape), extras: { completenessError, scoreDifference, featureCount: masks.map((m) => m.count) } };
    } finally {
      baseline.dispose();
    }
  },
});
