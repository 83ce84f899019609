/**
 * Average sensitivity (Yeh et al. 2019): the mean relative change of the map over seeded noisy copies
 * of the image in a small L∞ ball. Lower is better.
 */
import { registerMetric } from './registry.js';
import { sensitivities, SENSITIVITY_DEFAULTS, type SensitivityOptions } from './sensitivity.js';

registerMetric<SensitivityOptions>({
  name: 'avg-sensitivity',
  family: 'robustness',
  description: 'mean relative change ‖A(x′) − A(x)‖/‖A(x)‖ over seeded uniform noise (Yeh et al. 2019)',
  higherIsBetter: false,
  reexplains: true,
  defaults: { ...SENSITIVITY_DEFAULTS },
  async run(ctx, o) {
    const { relative, lipschitz } = await sensitivities(ctx, o);
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    return { scores: relative.map(mean), extras: { lipschitzMean: lipschitz.map(mean) } };
  },
});
