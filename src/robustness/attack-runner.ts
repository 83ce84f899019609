/**
 * Batched attack runner: runs an attack over a labelled set and reports clean and adversarial
 * accuracy, the success rate (originally correct images whose label the attack changed), the mean
 * perturbation norms and ρ_adv = mean ‖r‖₂ / ‖x‖₂ (the DeepFool paper's robustness measure).
 *
 * The ready-made attacks (`attacks.fgsm/pgd/deepfool`) treat each image on its own, so each batch's
 * images are split over the worker pool (docs/parallel.md): a worker runs the same attack with the
 * same options on its sub-batch (kernel 'attack/images'), and the report equals the 1-thread one.
 * An attack function of your own is a closure, which cannot be sent to another thread: it runs in
 * the calling thread.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { progress } from '../util/progress.js';
import { deepfool, type DeepFoolOptions } from '../counterfactual/deepfool.js';
import { fgsm, type FgsmOptions } from './fgsm.js';
import { pgd, type PgdOptions } from './pgd.js';
import { guardBackend } from '../engine/recovery.js';
import { defineChunkKernel } from '../engine/pool/kernels.js';
import { mapChunks } from '../engine/pool/map.js';
import { forwardMacs, planLanes } from '../engine/pool/plan.js';
import { withWorkers } from '../engine/pool/settings.js';

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
  /** Threads for this run (the calling thread + pool workers); default: setWorkers / GLASSWING_WORKERS / the cores. */
  workers?: number;
  /** Show a progress bar (default true for more than one batch). */
  showProgress?: boolean;
}

type ShippedAttack = { attack: 'fgsm'; options: FgsmOptions } | { attack: 'pgd'; options: PgdOptions } | { attack: 'deepfool'; options: DeepFoolOptions };

/** The ready-made attacks by name: what a pool worker runs for an AttackFn made by `attacks`. */
async function runShipped(classifier: Classifier, x: tf.Tensor4D, labels: number[], a: ShippedAttack): Promise<tf.Tensor4D> {
  if (a.attack === 'fgsm') return fgsm(classifier, x, labels, a.options);
  if (a.attack === 'pgd') return pgd(classifier, x, labels, a.options);
  const r = await deepfool(classifier, x, a.options);
  tf.dispose([r.perturbation, r.rTotal, r.logitsAfter]);
  return r.adversarial;
}

/** AttackFns made by `attacks`, with the name and options a worker needs to run them again. */
const shippable = new WeakMap<AttackFn, ShippedAttack>();
function tagged(a: ShippedAttack): AttackFn {
  const fn: AttackFn = (c, x, y) => runShipped(c, x, y, a);
  shippable.set(fn, a);
  return fn;
}

/** Ready-made attack functions (each image on its own: runAttack splits their batches over the worker pool). */
export const attacks = {
  fgsm: (opts: FgsmOptions = {}): AttackFn => tagged({ attack: 'fgsm', options: opts }),
  pgd: (opts: PgdOptions = {}): AttackFn => tagged({ attack: 'pgd', options: opts }),
  /** DeepFool moves away from the prediction (labels are not used). */
  deepfool: (opts: DeepFoolOptions = {}): AttackFn => tagged({ attack: 'deepfool', options: opts }),
};

const attackKernel = defineChunkKernel<ShippedAttack, { x: tf.Tensor4D; labels: number[] }, tf.Tensor4D>(
  'attack/images',
  (classifier, a, p) => runShipped(classifier, p.x, p.labels, a),
);

/** Forward + gradient passes per image of a ready-made attack, for the lane plan (lower bounds). */
function passes(a: ShippedAttack): number {
  if (a.attack === 'fgsm') return 2;
  if (a.attack === 'pgd') return Math.max(1, (a.options as PgdOptions).steps ?? 40);
  return 2 * ((a.options as DeepFoolOptions).candidates || 10);
}

/** One batch's adversarial images: split over the pool for the ready-made attacks, else the attack in this thread. */
async function attackBatch(classifier: Classifier, x: tf.Tensor4D, y: number[], attack: AttackFn): Promise<tf.Tensor4D> {
  const a = shippable.get(attack);
  const n = x.shape[0];
  if (!a || n < 2) return attack(classifier, x, y);
  const plan = await planLanes(classifier, n, { macs: forwardMacs(classifier) * 3 * passes(a) });
  if (plan.lanes <= 1) return attack(classifier, x, y);
  // one sub-batch per lane: an attack's steps cost per call more than per image on small images
  const size = Math.ceil(n / plan.lanes);
  const parts: tf.Tensor4D[] = [];
  const slices: tf.Tensor4D[] = [];
  try {
    await mapChunks(classifier, attackKernel, {
      lanes: plan.lanes,
      shared: a,
      count: Math.ceil(n / size),
      payload: (i) => {
        const xs = tf.slice(x, i * size, Math.min(size, n - i * size));
        slices.push(xs);
        return { x: xs, labels: y.slice(i * size, i * size + xs.shape[0]) };
      },
      onResult: (_i, r) => parts.push(r),
    });
    return tf.concat(parts, 0) as tf.Tensor4D;
  } finally {
    tf.dispose(slices);
    tf.dispose(parts);
  }
}

/**
 * Run an attack over images with labels, in batches.
 *
 * @example
 * const rep = await runAttack(classifier, ds.images, Array.from(ds.labels), attacks.fgsm({ epsilon: 0.3 }), { name: 'fgsm 0.3' });
 */
export async function runAttack(classifier: Classifier, images: tf.Tensor4D, labels: ArrayLike<number>, attack: AttackFn, opts: RunAttackOptions = {}): Promise<AttackReport> {
  // A wasm abort inside the run re-creates the backend and fails this run only (BackendResetError).
  return withWorkers(opts.workers, () => guardBackend(`attack ${opts.name ?? ''}`.trim(), [classifier], () => runAttackGuarded(classifier, images, labels, attack, opts)));
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
    const xa = await attackBatch(classifier, x, y, attack);
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
