/**
 * FGSM — the fast gradient (sign) method (Goodfellow et al. 2015; seed 004).
 *
 * Untargeted: x* = clip(x + ε·sign(∇ₓ ℓ(x, y))) — away from the label y (true class, or the prediction).
 * Targeted:   x* = clip(x − ε·sign(∇ₓ ℓ(x, t))) — towards a target class t (seed 004's consistent-loss
 * form, with y* = t). ℓ is the softmax cross-entropy of the logits. The L2 variant steps
 * ε·g/‖g‖₂ instead of ε·sign(g). Clipping keeps the classifier's input range (Classifier.domain).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { registerMethod } from '../core/registry.js';
import { batchedLogits, batchSizeFor } from '../engine/memory.js';

export type AttackNorm = 'linf' | 'l2';

export interface FgsmOptions {
  /** Step size ε (default 0.1; the MNIST convention is 0.3 with inputs in [0, 1]). */
  epsilon?: number;
  /** Move towards `labels` (targeted) instead of away from them. Default false. */
  targeted?: boolean;
  /** 'linf' (sign of the gradient, default) or 'l2' (normalised gradient). */
  norm?: AttackNorm;
  /** Clip to the input domain. Default true. */
  clip?: boolean;
}

export const FGSM_DEFAULTS = { epsilon: 0.1, targeted: false, norm: 'linf' as AttackNorm, clip: true };

/**
 * ∇ₓ of the summed cross-entropy of the logits against `labels`, in batches that fit the memory
 * budget (each image's gradient depends on that image only, so batching does not change it).
 */
export function lossGradient(classifier: Classifier, x: tf.Tensor, labels: number[] | tf.Tensor1D): tf.Tensor4D {
  const n = x.shape[0];
  const bs = batchSizeFor(classifier, 'gradient', n, { shape: x.shape.slice(1) });
  return tf.tidy(() => {
    const lab = Array.isArray(labels) ? tf.tensor1d(labels, 'int32') : tf.cast(labels, 'int32');
    const oh = tf.oneHot(lab as tf.Tensor1D, classifier.numClasses);
    const part = (xs: tf.Tensor, ohs: tf.Tensor) => {
      const f = (v: tf.Tensor) => tf.losses.softmaxCrossEntropy(ohs, classifier.logits(v), undefined, undefined, tf.Reduction.SUM) as tf.Scalar;
      return tf.grad(f)(xs) as tf.Tensor4D;
    };
    if (bs >= n) return part(x, oh);
    const parts: tf.Tensor4D[] = [];
    for (let s = 0; s < n; s += bs) {
      const c = Math.min(bs, n - s);
      parts.push(tf.tidy(() => part(tf.slice(x, s, c), tf.slice(oh, s, c))));
    }
    return tf.concat(parts, 0);
  });
}

/** Logits of x in batches that fit the memory budget. */
export const logitsInBatches = batchedLogits;

/** Unit step direction per image: sign(g) (L∞) or g/‖g‖₂ (L2). */
export function stepDirection(g: tf.Tensor, norm: AttackNorm): tf.Tensor {
  return tf.tidy(() => {
    if (norm === 'linf') return tf.sign(g);
    const axes = g.shape.slice(1).map((_, i) => i + 1);
    const n = tf.sqrt(tf.sum(tf.square(g), axes, true));
    return tf.div(g, tf.maximum(n, 1e-12));
  });
}

export function clipToDomain(classifier: Classifier, x: tf.Tensor): tf.Tensor {
  return tf.clipByValue(x, classifier.domain.low, classifier.domain.high);
}

export function checkNorm(norm: unknown): asserts norm is AttackNorm {
  if (norm !== 'linf' && norm !== 'l2') throw new OptionError(`expected norm 'linf' or 'l2'; got ${String(norm)}`);
}

/**
 * FGSM adversarial examples for a batch.
 *
 * @example
 * const xAdv = fgsm(classifier, images, labels, { epsilon: 0.3 });
 */
export function fgsm(classifier: Classifier, x: tf.Tensor4D, labels: number[], opts: FgsmOptions = {}): tf.Tensor4D {
  const o = { ...FGSM_DEFAULTS, ...opts };
  checkNorm(o.norm);
  if (!(o.epsilon >= 0)) throw new OptionError(`expected epsilon ≥ 0; got ${o.epsilon}`);
  if (labels.length !== x.shape[0]) throw new OptionError(`expected one label per image (${x.shape[0]}); got ${labels.length}`);
  return tf.tidy(() => {
    const g = lossGradient(classifier, x, labels);
    const step = tf.mul(stepDirection(g, o.norm), o.targeted ? -o.epsilon : o.epsilon);
    const adv = tf.add(x, step);
    return (o.clip ? clipToDomain(classifier, adv) : adv) as tf.Tensor4D;
  });
}

/**
 * The smallest FGSM ε (per image, L∞ sign direction fixed at x) that changes the label, found on a
 * grid then refined by bisection; Infinity when even maxEpsilon fails. Used for FGSM's ρ_adv as in
 * the DeepFool paper's comparison.
 */
export async function minimalFgsm(
  classifier: Classifier, x: tf.Tensor4D, labels: number[],
  opts: { maxEpsilon?: number; gridSteps?: number; bisections?: number; clip?: boolean } = {},
): Promise<{ epsilon: number[]; adversarial: tf.Tensor4D }> {
  const maxEps = opts.maxEpsilon ?? 1;
  const grid = opts.gridSteps ?? 20;
  const bis = opts.bisections ?? 6;
  const clip = opts.clip ?? true;
  const n = x.shape[0];
  const dir = tf.tidy(() => tf.sign(lossGradient(classifier, x, labels)));
  const wrongAt = async (eps: number[]): Promise<boolean[]> => {
    const pred = tf.tidy(() => {
      const e = tf.reshape(tf.tensor1d(eps), [n, 1, 1, 1]);
      let adv = tf.add(x, tf.mul(dir, e));
      if (clip) adv = clipToDomain(classifier, adv);
      return tf.argMax(logitsInBatches(classifier, adv), 1);
    });
    const p = await pred.data();
    pred.dispose();
    return labels.map((l, i) => p[i] !== l);
  };
  const hi = new Array(n).fill(Infinity);
  const lo = new Array(n).fill(0);
  for (let s = 1; s <= grid; s++) {
    const eps = (maxEps * s) / grid;
    const w = await wrongAt(new Array(n).fill(eps));
    for (let i = 0; i < n; i++) {
      if (hi[i] === Infinity) {
        if (w[i]) hi[i] = eps;
        else lo[i] = eps;
      }
    }
  }
  for (let b = 0; b < bis; b++) {
    const mid = hi.map((h, i) => (Number.isFinite(h) ? (lo[i] + h) / 2 : 0));
    const w = await wrongAt(mid);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(hi[i])) continue;
      if (w[i]) hi[i] = mid[i];
      else lo[i] = mid[i];
    }
  }
  const adversarial = tf.tidy(() => {
    const e = tf.reshape(tf.tensor1d(hi.map((h) => (Number.isFinite(h) ? h : 0))), [n, 1, 1, 1]);
    const adv = tf.add(x, tf.mul(dir, e));
    return (clip ? clipToDomain(classifier, adv) : adv) as tf.Tensor4D;
  });
  dir.dispose();
  return { epsilon: hi, adversarial };
}

registerMethod({
  name: 'fgsm',
  family: 'robustness',
  description: 'FGSM adversarial perturbation (attribution = x* − x); target = prediction → untargeted, another class → targeted',
  signed: true,
  defaults: { ...FGSM_DEFAULTS, targeted: undefined as boolean | undefined },
  // per image (mode, step): explain's memory chunks and the pool's workers split the batch
  perImageExtras: ['adversarial'],
  parallel: 'images',
  async run(classifier, x, targets, options) {
    const pred = await classifier.predictClasses(x);
    // Per image: away from the prediction, or towards another target class.
    const toward = targets.map((t, i) => (options.targeted ?? t !== pred[i]));
    const advAway = fgsm(classifier, x, pred, { ...options, targeted: false });
    const advTo = toward.some(Boolean) ? fgsm(classifier, x, targets, { ...options, targeted: true }) : undefined;
    return tf.tidy(() => {
      const mask = tf.reshape(tf.tensor1d(toward.map((v) => (v ? 1 : 0))), [-1, 1, 1, 1]);
      const adv = advTo ? tf.add(tf.mul(advTo, mask), tf.mul(advAway, tf.sub(1, mask))) : advAway;
      const out = { attribution: tf.sub(adv, x) as tf.Tensor4D, logitsAfter: logitsInBatches(classifier, adv), extras: { adversarial: tf.clone(adv) } };
      tf.dispose([advAway, ...(advTo ? [advTo] : [])]);
      return out;
    });
  },
});
