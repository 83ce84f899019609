/**
 * Iterative attacks: BIM / PGD (Kurakin et al. 2016, Madry et al. 2018; seed 004's iterative form
 * x*_t = clip(x*_{t−1} − ε·sign ∇ℓ(1_{y*}, f(x*_{t−1})))).
 *
 * Each step moves by stepSize along sign(g) (L∞) or g/‖g‖₂ (L2) — up the loss of the label
 * (untargeted) or down the loss of a target class (targeted) — then projects back onto the ε-ball
 * around x and clips to the input domain. randomStart begins at a uniform point of the L∞ ball (or
 * a random point of the L2 ball), seeded per image (the seed mixed with a hash of the image's pixels:
 * an image starts at the same point in any batch, chunk or pool worker). earlyStop freezes each image
 * at its first success, so an image's result never depends on the other images of its batch — the
 * pool splits a batch over workers and gets the 1-worker result exactly (docs/parallel.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { registerMethod } from '../core/registry.js';
import { imageSeeds, deriveSeed } from '../util/image-seed.js';
import { checkNorm, clipToDomain, logitsInBatches, lossGradient, stepDirection, type AttackNorm } from './fgsm.js';

export interface PgdOptions {
  /** Radius of the ball (default 0.3). */
  epsilon?: number;
  /** Step size (default 0.01). */
  stepSize?: number;
  /** Number of steps (default 40). */
  steps?: number;
  norm?: AttackNorm;
  targeted?: boolean;
  /** Start at a random point of the ball (default true: PGD; false: BIM). */
  randomStart?: boolean;
  seed?: number;
  clip?: boolean;
  /** Freeze each image once it is misclassified (untargeted) / on target; stop when all are. Default false. */
  earlyStop?: boolean;
}

export const PGD_DEFAULTS = { epsilon: 0.3, stepSize: 0.01, steps: 40, norm: 'linf' as AttackNorm, targeted: false, randomStart: true, seed: 0, clip: true, earlyStop: false };

/** Project x* onto the ε-ball around x (per image). */
export function projectBall(x: tf.Tensor, adv: tf.Tensor, epsilon: number, norm: AttackNorm): tf.Tensor {
  return tf.tidy(() => {
    const d = tf.sub(adv, x);
    if (norm === 'linf') return tf.add(x, tf.clipByValue(d, -epsilon, epsilon));
    const axes = d.shape.slice(1).map((_, i) => i + 1);
    const n = tf.sqrt(tf.sum(tf.square(d), axes, true));
    const factor = tf.minimum(1, tf.div(epsilon, tf.maximum(n, 1e-12)));
    return tf.add(x, tf.mul(d, factor));
  });
}

/**
 * PGD adversarial examples.
 *
 * @example
 * const xAdv = await pgd(classifier, images, labels, { epsilon: 0.3, stepSize: 0.01, steps: 40 });
 */
export async function pgd(classifier: Classifier, x: tf.Tensor4D, labels: number[], opts: PgdOptions = {}): Promise<tf.Tensor4D> {
  const o = { ...PGD_DEFAULTS, ...opts };
  checkNorm(o.norm);
  if (!(o.epsilon >= 0) || !(o.stepSize > 0) || !(o.steps >= 0)) {
    throw new OptionError(`expected epsilon ≥ 0, stepSize > 0, steps ≥ 0; got ${o.epsilon}, ${o.stepSize}, ${o.steps}`);
  }
  if (labels.length !== x.shape[0]) throw new OptionError(`expected one label per image (${x.shape[0]}); got ${labels.length}`);
  const n = x.shape[0];
  let adv: tf.Tensor4D = tf.tidy(() => {
    if (!o.randomStart || o.epsilon === 0 || n === 0) return tf.clone(x);
    const seeds = imageSeeds(x, o.seed);
    const per = x.shape.slice(1);
    let start: tf.Tensor;
    if (o.norm === 'linf') {
      start = tf.add(x, tf.concat(seeds.map((s) => tf.randomUniform([1, ...per], -o.epsilon, o.epsilon, 'float32', s)), 0));
    } else {
      const g = tf.concat(seeds.map((s) => tf.randomNormal([1, ...per], 0, 1, 'float32', s)), 0);
      const norm = tf.sqrt(tf.sum(tf.square(g), [1, 2, 3], true));
      const r = tf.mul(tf.concat(seeds.map((s) => tf.randomUniform([1, 1, 1, 1], 0, 1, 'float32', deriveSeed(s, 1))), 0), o.epsilon);
      start = tf.add(x, tf.mul(tf.div(g, norm), r));
    }
    return (o.clip ? clipToDomain(classifier, start) : start) as tf.Tensor4D;
  });
  const sign = o.targeted ? -1 : 1;
  const lab = tf.tensor1d(labels, 'int32');
  const done = new Array<boolean>(n).fill(false);
  for (let s = 0; s < o.steps; s++) {
    const frozen = done.some(Boolean) ? tf.tensor1d(done, 'bool') : undefined;
    const next = tf.tidy(() => {
      const g = lossGradient(classifier, adv, lab);
      const moved = tf.add(adv, tf.mul(stepDirection(g, o.norm), sign * o.stepSize));
      const proj = projectBall(x, moved, o.epsilon, o.norm);
      const stepped = (o.clip ? clipToDomain(classifier, proj) : proj) as tf.Tensor4D;
      // images that already succeeded keep their adversarial example
      return frozen ? (tf.where(tf.broadcastTo(tf.reshape(frozen, [n, 1, 1, 1]), adv.shape), adv, stepped) as tf.Tensor4D) : stepped;
    });
    frozen?.dispose();
    adv.dispose();
    adv = next;
    if (o.earlyStop) {
      const pred = await classifier.predictClasses(adv);
      pred.forEach((p, i) => {
        if (o.targeted ? p === labels[i] : p !== labels[i]) done[i] = true;
      });
      if (done.every(Boolean)) break;
    }
  }
  lab.dispose();
  return adv;
}

registerMethod({
  name: 'pgd',
  family: 'robustness',
  description: 'PGD / iterative FGSM adversarial perturbation (attribution = x* − x); target = prediction → untargeted, another class → targeted',
  signed: true,
  defaults: { ...PGD_DEFAULTS, targeted: undefined as boolean | undefined },
  // per-image seeds, mode and early stop: explain's memory chunks and the pool's workers split the batch
  perImageExtras: ['adversarial', 'targeted'],
  parallel: 'images',
  async run(classifier, x, targets, options) {
    const pred = await classifier.predictClasses(x);
    // Per image: away from the prediction, or towards another target class (as FGSM).
    const toward = targets.map((t, i) => options.targeted ?? t !== pred[i]);
    const groups = [false, true].map((mode) => toward.flatMap((v, i) => (v === mode ? [i] : [])));
    let adv: tf.Tensor4D;
    if (groups[0].length === 0 || groups[1].length === 0) {
      const mode = groups[1].length > 0;
      adv = await pgd(classifier, x, mode ? targets : pred, { ...options, targeted: mode });
    } else {
      // Each mode on its images; the per-image seeds make this equal to running the images one by one.
      const parts: tf.Tensor4D[] = [];
      for (const [mode, idx] of groups.entries()) {
        const xs = tf.gather(x, idx) as tf.Tensor4D;
        parts.push(await pgd(classifier, xs, idx.map((i) => (mode ? targets[i] : pred[i])), { ...options, targeted: mode === 1 }));
        xs.dispose();
      }
      const order = [...groups[0], ...groups[1]];
      const inverse = new Array<number>(order.length);
      order.forEach((i, k) => (inverse[i] = k));
      adv = tf.tidy(() => tf.gather(tf.concat(parts, 0), inverse) as tf.Tensor4D);
      tf.dispose(parts);
    }
    const out = tf.tidy(() => ({ attribution: tf.sub(adv, x) as tf.Tensor4D, logitsAfter: logitsInBatches(classifier, adv) }));
    return { ...out, extras: { adversarial: adv, targeted: toward } };
  },
});
