/**
 * Baseline distributions for the SHAP-family methods (deeplift-shap, gradient-shap): a tensor of
 * baseline images given by the caller, or seeded uniform noise over the classifier's input range.
 * Captum's DeepLiftShap and GradientShap take the distribution as a tensor; 'uniform' is the
 * no-data default (a background set drawn from the input domain), reproducible by its seed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { positiveInt } from './math.js';

export type BaselineDistributionSpec = 'uniform' | tf.Tensor;

/**
 * The baseline distribution [K,H,W,C] (the caller disposes it): the given tensor ([K,H,W,C], or
 * [H,W,C] for a single baseline), or `count` seeded uniform images in [low, high].
 */
export function baselineDistribution(classifier: Classifier, spec: unknown, count: unknown, seed: unknown): tf.Tensor4D {
  const [h, w, c] = classifier.inputShape;
  if (spec instanceof tf.Tensor) {
    if (spec.isDisposed) throw new OptionError('expected option baselines to be a live tensor; got a disposed one');
    const b = spec.rank === 3 ? tf.expandDims(spec, 0) : tf.clone(spec);
    if (b.rank !== 4 || b.shape[1] !== h || b.shape[2] !== w || b.shape[3] !== c || b.shape[0] < 1) {
      b.dispose();
      throw new OptionError(`expected option baselines to be a tensor [K, ${h}, ${w}, ${c}] (or [${h}, ${w}, ${c}]); got [${spec.shape.join(', ')}]`);
    }
    return tf.cast(b, 'float32') as tf.Tensor4D;
  }
  if (spec !== 'uniform') throw new OptionError(`expected option baselines to be "uniform" or a tensor [K, ${h}, ${w}, ${c}]; got ${JSON.stringify(spec)}`);
  const k = positiveInt('numBaselines', count);
  const { low, high } = classifier.domain;
  return tf.randomUniform([k, h, w, c], low, high, 'float32', Number(seed) || 0) as tf.Tensor4D;
}
