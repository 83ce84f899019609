/**
 * Batched attack runner: runs an attack over a labelled set and reports clean and adversarial
 * accuracy, the success rate (originally correct images whose label the attack changed), the mean
 * perturbation norms and ρ_adv = mean ‖r‖₂ / ‖x‖₂ (the DeepFool paper's robustness measure).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { progress } from '../util/progress.js';
import { deepfool, type DeepFoolOptions } from '../counterfactual/deepfool.js';
import { fgsm, type FgsmOptions } from './fgsm.js';
import { pgd, type PgdOptions } from './pgd.js';
import { guardBackend } from '../engine/recovery.js';

/** An attack: images and labels in, adversarial images out (a new tensor the runner disposes). */
export type AttackFn = (classifier: Classifier, x: tf.Tensor4D, labels: number[]) => Promise<tf.Tensor4D> | tf.Tensor4D;

export interface AttackReport {
  attack: string;
  n: number;
  cleanAccuracy: number;
  adversarialAccuracy: number;
  /** Among originally correct images: fraction now misclassified. */
  successRate: number;
  meanL2: number;
  meanLinf: number;
  /** mean ‖r‖₂ / ‖x‖₂ over all images. */
  rhoAdv: number;
  msPerImage: number;
}

export interface RunAttackOptions {
  name?: string;
  batchSize?: number;
  /** Show a progress bar (default true for more than one batch). */
  showProgress?: boolean;
}

/** Ready-made attack functions. */
export const attacks = {
  fgsm: (opts: FgsmOptions = {}): AttackFn => (c, x, y) => fgsm(c, x, y, opts),
  pgd: (opts: PgdOptions = {}): AttackFn => (c, x, y) => pgd(c, x, y, opts),
  /** DeepFool moves away from the prediction (labels are not used). */
  deepfool: (opts: DeepFoolOptions = {}): AttackFn => async (c, x) => {
    const r = await deepfool(c, x, opts);
    const adv = r.adversarial;
    tf.dispose([r.perturbation, r.rTotal, r.logitsAfter]);
    return adv;
  },
};

/**
 * Run an attack over images with labels, in batches.
 *
 * @example
 * const rep = await runAttack(classifier, ds.images, Array.from(ds.labels), attacks.fgsm({ epsilon: 0.3 }), { name: 'fgsm 0.3' });
 */
export async function runAttack(classifier: Classifier, images: tf.Tensor4D, labels: ArrayLike<number>, attack: AttackFn, opts: RunAttackOptions = {}): Promise<AttackReport> {
  // A wasm abort inside the run re-creates the backend and fails this run only (BackendResetError).
  return guardBackend(`attack ${opts.name ?? ''}`.trim(), [classifier], () => runAttackGuarded(classifier, images, labels, attack, opts));
}

async function runAttackGuarded(classifier: Classifier, images: tf.Tensor4D, labels: ArrayLike<number>, attack: AttackFn, opts: RunAttackOptions): Promise<AttackReport> {
  const n = images.shape[0];
  if (labels.length !== n) throw new OptionError(`expected one label per image (${n}); got ${labels.length}`);
  const bs = opts.batchSize ?? 64;
  const bar = (opts.showProgress ?? n > bs) ? progress(`attack ${opts.name ?? ''}`.trim(), n) : undefined;
  let clean = 0;
  let adv = 0;
  let correct = 0;
  let success = 0;
  let l2 = 0;
  let linf = 0;
  let rho = 0;
  const start = performance.now();
  for (let b = 0; b < n; b += bs) {
    const m = Math.min(bs, n - b);
    const x = tf.slice(images, b, m);
    const y = Array.from({ length: m }, (_, i) => labels[b + i]);
    const xa = await attack(classifier, x, y);
    const [p0, p1, norms] = tf.tidy(() => {
      const r = tf.reshape(tf.sub(xa, x), [m, -1]);
      const xf = tf.reshape(x, [m, -1]);
      const n2 = tf.sqrt(tf.sum(tf.square(r), 1));
      const ni = tf.max(tf.abs(r), 1);
      const nx = tf.sqrt(tf.sum(tf.square(xf), 1));
      return [tf.argMax(classifier.logits(x), 1), tf.argMax(classifier.logits(xa), 1), tf.stack([n2, ni, tf.div(n2, tf.maximum(nx, 1e-12))])];
    });
    const [a0, a1, nn] = await Promise.all([p0.data(), p1.data(), norms.data()]);
    tf.dispose([x, xa, p0, p1, norms]);
    for (let i = 0; i < m; i++) {
      const ok0 = a0[i] === y[i];
      const ok1 = a1[i] === y[i];
      clean += ok0 ? 1 : 0;
      adv += ok1 ? 1 : 0;
      if (ok0) {
        correct++;
        if (!ok1) success++;
      }
      l2 += nn[i];
      linf += nn[m + i];
      rho += nn[2 * m + i];
    }
    bar?.update(b + m);
  }
  bar?.done();
  const ms = performance.now() - start;
  return {
    attack: opts.name ?? 'attack', n,
    cleanAccuracy: clean / n, adversarialAccuracy: adv / n, successRate: correct ? success / correct : 0,
    meanL2: l2 / n, meanLinf: linf / n, rhoAdv: rho / n, msPerImage: ms / n,
  };
}
