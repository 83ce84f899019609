/**
 * Max-sensitivity (Yeh et al. 2019): the largest relative change of the map over seeded noisy copies
 * of the image in a small L∞ ball; extras hold the local Lipschitz estimate (Alvarez-Melis &
 * Jaakkola 2018), the largest ‖ΔA‖ / ‖Δx‖. Lower is better (a robust explanation).
 */
import { registerMetric } from './registry.js';
import { sensitivities, SENSITIVITY_DEFAULTS, type SensitivityOptions } from './sensitivity.js';

registerMetric<SensitivityOptions>({
  name: 'max-sensitivity',
  family: 'robustness',
  description: 'largest relative change ‖A(x′) − A(x)‖/‖A(x)‖ over seeded uniform noise (Yeh et al. 2019); local Lipschitz estimate in extras',
  higherIsBetter: false,
  reexplains: true,
  defaults: { ...SENSITIVITY_DEFAULTS },
  async run(ctx, o) {
    const { relative, lipschitz } = await sensitivities(ctx, o);
    return { scores: relative.map((r) => Math.max(...r)), extras: { lipschitz: lipschitz.map((l) => Math.max(...l)) } };
  },
});
