/**
 * Input invariance (Kindermans et al. 2017; seed 002's offset experiment): a model f and its
 * offset-shifted twin g(x + m) = f(x) give the same outputs for every image, so an explanation of
 * the twin at x + m should equal the explanation of f at x. The score is the relative distance
 * ‖A_g(x + m) − A_f(x)‖ / ‖A_f(x)‖ (0: invariant). Gradients are invariant; gradient × input,
 * integrated gradients with a zero baseline and z^B-free LRP are not. Lower is better.
 *
 * The twin is built from the model (models.ts shiftedTwin), or given as `twin` with its `shift`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMetric } from './registry.js';
import { rowNorms } from './common.js';
import { shiftedTwin, type ModelVariant } from './models.js';
import { finiteNumber } from '../attribution/math.js';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';

export interface InputInvarianceOptions {
  /** The constant m added to every input (null: −(high − low)/2, i.e. −0.5 on [0, 1], seed 002's offset). */
  shift: number | null;
  /** A user-supplied twin with g(x + shift) = f(x) (null: built from the model). */
  twin: Classifier | null;
  /** Relative distance below which an image counts as invariant (extras.invariant). */
  tolerance: number;
}

registerMetric<InputInvarianceOptions>({
  name: 'input-invariance',
  family: 'invariance',
  description: 'relative change of the map between the model at x and its offset-shifted twin at x + m (Kindermans et al. 2017)',
  higherIsBetter: false,
  reexplains: true,
  defaults: { shift: null, twin: null, tolerance: 1e-3 },
  async run(ctx, o) {
    const { low, high } = ctx.classifier.domain;
    const shift = o.shift === null ? -(high - low) / 2 : finiteNumber('shift', o.shift);
    const tol = finiteNumber('tolerance', o.tolerance, 0);
    let twin: ModelVariant;
    if (o.twin) {
      if (o.twin.inputShape.join() !== ctx.classifier.inputShape.join() || o.twin.numClasses !== ctx.classifier.numClasses) {
        throw new OptionError(`expected a twin with the input shape and classes of "${ctx.classifier.name}"; got "${o.twin.name}"`);
      }
      twin = { classifier: o.twin, dispose: () => undefined };
    } else {
      twin = shiftedTwin(ctx.classifier, shift);
    }
    const xs = tf.add(ctx.x, shift) as tf.Tensor4D;
    try {
      const a = await ctx.explain(twin.classifier, xs, ctx.targets);
      const diff = tf.sub(a, ctx.attribution);
      const [dn, an] = await Promise.all([rowNorms(diff), rowNorms(ctx.attribution)]);
      tf.dispose([a, diff]);
      const scores = Array.from(dn, (d, i) => (an[i] > 0 ? d / an[i] : d > 0 ? Infinity : 0));
      return { scores, extras: { shift, invariant: scores.map((s) => s <= tol) } };
    } finally {
      xs.dispose();
      twin.dispose();
    }
  },
});
