/**
 * `shapley-sampling` (Castro et al. 2009; Captum ShapleyValueSampling): Shapley values estimated
 * from `samples` random feature orderings. Along each ordering the features are switched from the
 * baseline to x one at a time and each gets its marginal change of the target logit; the estimate is
 * the mean over orderings (accumulated in float64). Each ordering costs F forward passes (plus one
 * shared all-baseline pass); all orderings of all images are batched like LIME's samples. Seeded:
 * every image draws its orderings from the same seed, so its result does not depend on the batch.
 *
 * Efficiency holds for every ordering, so Σ_i φ_i = f(x) − f(baseline) exactly (extras
 * completenessError ≈ 0, scoreDifference).
 */
import { registerMethod } from '../core/registry.js';
import { createRng, shuffle } from '../util/random.js';
import { makeBaseline, type BaselineSpec } from './integrated-gradients.js';
import { coalitionScores, featureMasks, FEATURE_MASK_DEFAULTS, paintFeatures, type CoalitionRow, type FeatureMaskOptions } from './feature-mask.js';
import { positiveInt } from './math.js';

export interface ShapleySamplingOptions extends FeatureMaskOptions {
  baseline: BaselineSpec;
  baselineValue: number;
  blurSigma: number;
  /** Number of random feature orderings per image. */
  samples: number;
  seed: number;
  /** Coalition images per forward call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

registerMethod<ShapleySamplingOptions>({
  name: 'shapley-sampling',
  family: 'attribution',
  description: 'Shapley values from random feature orderings (Captum ShapleyValueSampling), seeded',
  signed: true,
  memory: 'forward',
  perImageExtras: ['completenessError', 'scoreDifference', 'featureCount'],
  defaults: { featureMask: 'grid', ...FEATURE_MASK_DEFAULTS, gridSize: [4, 4], baseline: 'zeros', baselineValue: 0, blurSigma: 5, samples: 25, seed: 0, batchSize: 256 },
  async run(classifier, x, targets, options, context) {
    const batchSize = positiveInt('batchSize', options.batchSize);
    const samples = positiveInt('samples', options.samples);
    const seed = Number(options.seed) || 0;
    const masks = await featureMasks(classifier, x, options, seed);
    const baseline = makeBaseline(classifier, x, options.baseline, options.baselineValue, options.blurSigma);
    try {
      // per image: row 0 = all absent, then for each ordering F rows adding one feature at a time
      const orders = masks.map((m) => {
        const rng = createRng(seed);
        return Array.from({ length: samples }, () => shuffle(Array.from({ length: m.count }, (_, j) => j), rng));
      });
      const rows: CoalitionRow[] = [];
      const offsets: number[] = [];
      masks.forEach((m, i) => {
        offsets.push(rows.length);
        rows.push({ image: i, present: new Uint8Array(m.count) });
        for (const order of orders[i]) {
          const z = new Uint8Array(m.count);
          for (const j of order) {
            z[j] = 1;
            rows.push({ image: i, present: z.slice() });
          }
        }
      });
      const v = await coalitionScores(classifier, x, baseline, targets, masks, rows, rows.length, batchSize, (f) => context.progress?.(f, 'shapley-sampling'));
      const completenessError: number[] = [];
      const scoreDifference: number[] = [];
      const values = masks.map((m, i) => {
        const phi = new Float64Array(m.count);
        let r = offsets[i];
        const empty = v[r++];
        let full = empty;
        for (const order of orders[i]) {
          let prev = empty;
          for (const j of order) {
            const cur = v[r++];
            phi[j] += cur - prev;
            prev = cur;
          }
          full = prev;
        }
        for (let j = 0; j < m.count; j++) phi[j] /= samples;
        scoreDifference.push(full - empty);
        completenessError.push(phi.reduce((a, b) => a + b, 0) - (full - empty));
        return phi;
      });
      return { attribution: paintFeatures(masks, values, x.shape), extras: { completenessError, scoreDifference, featureCount: masks.map((m) => m.count) } };
    } finally {
      baseline.dispose();
    }
  },
});
