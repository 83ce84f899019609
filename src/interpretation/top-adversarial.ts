/**
 * Top real vs top adversarial images of a neuron (seed 004, Figs. 2–4; Dong et al.): for a unit or
 * channel, the dataset images that activate it most beside the adversarial images that activate it
 * most. Seed 004 finds that a neuron's real top images share a meaning (a bird's head) while its
 * adversarial top images share nothing visible — even those the attack pushed towards the neuron's
 * own class: the representation of an adversarial image does not align with what the neuron detects.
 *
 * The adversarial set is made as seed 004 makes it, batch by batch while the dataset streams: for
 * each image, targeted attacks towards its `perImage` least likely classes (iterative FGSM without
 * random start, i.e. PGD with randomStart off, ε = 0.3 and 10 steps by default; or one FGSM step),
 * reusing the attacks of src/robustness. Only the k best of each set are kept per unit (with their
 * images for the adversarial set, which exists nowhere else), so memory is bounded by the batch and k.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { batchSizeFor } from '../engine/memory.js';
import { fgsm } from '../robustness/fgsm.js';
import { pgd } from '../robustness/pgd.js';
import { imageSource, readBatch, readIndices, topCount, type ImageSet } from './image-source.js';
import { receptiveField, receptiveWindow, type ReceptiveField } from './receptive-field.js';
import {
  TopKeeper, fieldPatches, positionOf, resolveUnit, scoreBatch, singleUnit,
  type TopActivation, type TopActivationsResult, type UnitSpec,
} from './top-activations.js';

export interface AdversarialAttackOptions {
  /** 'pgd' (iterative FGSM, seed 004's form; default) or 'fgsm' (one step). */
  attack?: 'pgd' | 'fgsm';
  /** L∞ radius in input units. Default 0.3 (MNIST's convention for [0, 1] images). */
  epsilon?: number;
  /** PGD steps. Default 10. */
  steps?: number;
  /** PGD step size. Default 0.05. */
  stepSize?: number;
  /** Targeted attacks per image, towards its least likely classes (seed 004 uses 10). Default 1. */
  perImage?: number;
}

export interface TopRealVsAdversarialOptions extends AdversarialAttackOptions {
  layer: string;
  /** One channel or unit, or several units of `layer` (one pass over the data for all). */
  channel?: number;
  unit?: number | [number, number, number];
  units?: UnitSpec[];
  /** Images kept per set (real and adversarial). Default 9 (unless percent is given). */
  k?: number;
  /** Or the top p % of each set (seed 004: 1 %). */
  percent?: number;
  /** Images per batch, at most. Default 64. */
  batchSize?: number;
  progress?: (fraction: number) => void;
}

export interface TopAdversarialActivation extends TopActivation {
  /** The class the attack aimed at (one of the source image's least likely classes). */
  target: number;
}

export interface TopRealVsAdversarialResult {
  /** The unit, as given. */
  unit: UnitSpec;
  real: TopActivationsResult;
  /** Top adversarial images: `index` and `label` are the source image's; `prediction` is the classifier's on the adversarial image. */
  adversarial: Omit<TopActivationsResult, 'top'> & { top: TopAdversarialActivation[] };
  /** Fraction of the adversarial set the classifier assigns to its attack's target. */
  attackSuccess: number;
  dispose(): void;
}

export const ADVERSARIAL_DEFAULTS = { attack: 'pgd' as 'pgd' | 'fgsm', epsilon: 0.3, steps: 10, stepSize: 0.05, perImage: 1 };

/** Targeted adversarial images of a batch towards each image's t-th least likely class, t < perImage. */
export async function leastLikelyAttacks(classifier: Classifier, x: tf.Tensor4D, o: typeof ADVERSARIAL_DEFAULTS): Promise<Array<{ images: tf.Tensor4D; targets: number[] }>> {
  const lg = classifier.logits(x);
  const rows = (await lg.array()) as number[][];
  lg.dispose();
  const order = rows.map((r) => r.map((v, j) => [v, j] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((p) => p[1]));
  const out: Array<{ images: tf.Tensor4D; targets: number[] }> = [];
  try {
    for (let t = 0; t < o.perImage; t++) {
      const targets = order.map((ord) => ord[t]);
      const images = o.attack === 'fgsm'
        ? fgsm(classifier, x, targets, { epsilon: o.epsilon, targeted: true })
        : await pgd(classifier, x, targets, { epsilon: o.epsilon, steps: o.steps, stepSize: o.stepSize, targeted: true, randomStart: false });
      out.push({ images, targets });
    }
    return out;
  } catch (e) {
    tf.dispose(out.map((a) => a.images));
    throw e;
  }
}

/**
 * Top real and top adversarial images of one or several units, side by side.
 *
 * @example
 * const [r] = await topRealVsAdversarial(cnn, test, { layer: 'conv2', channel: 7, k: 6 });
 * console.log(r.real.top.map((t) => t.label), r.adversarial.top.map((t) => `${t.label}→${t.target}`));
 * r.dispose();
 */
export async function topRealVsAdversarial(classifier: Classifier, data: ImageSet, opts: TopRealVsAdversarialOptions): Promise<TopRealVsAdversarialResult[]> {
  const o = { ...ADVERSARIAL_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as typeof ADVERSARIAL_DEFAULTS & TopRealVsAdversarialOptions;
  if (o.attack !== 'pgd' && o.attack !== 'fgsm') throw new OptionError(`expected attack 'pgd' or 'fgsm'; got ${String(o.attack)}`);
  if (!(o.epsilon >= 0)) throw new OptionError(`expected epsilon ≥ 0; got ${o.epsilon}`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new OptionError(`expected steps a positive integer; got ${o.steps}`);
  if (!(o.stepSize > 0)) throw new OptionError(`expected stepSize > 0; got ${o.stepSize}`);
  if (!Number.isInteger(o.perImage) || o.perImage < 1 || o.perImage >= classifier.numClasses) {
    throw new OptionError(`expected perImage an integer in 1..${classifier.numClasses - 1}; got ${o.perImage}`);
  }
  const specs: UnitSpec[] = opts.units ?? [singleUnit(opts)];
  if (opts.units && (opts.channel !== undefined || opts.unit !== undefined)) throw new OptionError('expected units, or one channel or unit; got both');
  if (specs.length === 0) throw new OptionError('expected at least one unit; got none');
  const src = imageSource(data);
  const n = src.size;
  if (n === 0) throw new OptionError('expected a dataset with at least one image; got none');
  const kReal = Math.min(topCount(n, opts.k, opts.percent, 9), n);
  const kAdv = Math.min(topCount(n * o.perImage, opts.k, opts.percent, 9), n * o.perImage);
  const shape = classifier.node(opts.layer).shape;
  const units = specs.map((u) => resolveUnit(classifier, opts.layer, u));
  const rf: ReceptiveField = receptiveField(classifier, opts.layer);
  const [h, w, c] = classifier.inputShape;
  const bs = batchSizeFor(classifier, 'gradient', opts.batchSize ?? 64);
  type Real = { index: number; score: number; pos: number; prediction: number };
  type Adv = Real & { target: number; image: tf.Tensor4D };
  const real = units.map(() => new TopKeeper<Real>(kReal));
  const adv = units.map(() => new TopKeeper<Adv>(kAdv, (e) => e.image.dispose()));
  let hits = 0;
  try {
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const xb = await readBatch(src, s, m, [h, w, c]);
      try {
        const r = await scoreBatch(classifier, xb, opts.layer, units);
        units.forEach((_, u) => {
          for (let i = 0; i < m; i++) real[u].add({ index: s + i, score: r.scores[u][i], pos: r.positions[u][i], prediction: r.predictions[i] });
        });
        const attacks = await leastLikelyAttacks(classifier, xb, o);
        try {
          for (const a of attacks) {
            const ra = await scoreBatch(classifier, a.images, opts.layer, units);
            for (let i = 0; i < m; i++) if (ra.predictions[i] === a.targets[i]) hits++;
            units.forEach((_, u) => {
              for (let i = 0; i < m; i++) {
                const score = ra.scores[u][i];
                // Only entries that will be kept get their own copy of the image.
                if (!adv[u].wants(score)) continue;
                adv[u].add({ index: s + i, score, pos: ra.positions[u][i], prediction: ra.predictions[i], target: a.targets[i], image: tf.slice(a.images, i, 1) });
              }
            });
          }
        } finally {
          tf.dispose(attacks.map((a) => a.images));
        }
      } finally {
        xb.dispose();
      }
      opts.progress?.((s + m) / n);
    }
  } catch (e) {
    for (const k of adv) tf.dispose(k.best.map((b) => b.image));
    throw e;
  }
  const results: TopRealVsAdversarialResult[] = [];
  const entry = (u: number, b: Real): TopActivation => {
    const position = positionOf(shape, units[u], b.pos);
    const window = position ? receptiveWindow(rf, position[0], position[1], [h, w, c]) : { top: 0, left: 0, height: h, width: w };
    return { index: b.index, label: src.labels[b.index], prediction: b.prediction, score: b.score, position, window };
  };
  try {
    for (let u = 0; u < units.length; u++) {
      const rTop = real[u].best.map((b) => entry(u, b));
      const rImages = await readIndices(src, rTop.map((t) => t.index), [h, w, c]);
      const rPatches = fieldPatches(classifier, rf, rImages, rTop);
      const aBest = adv[u].best;
      const aTop: TopAdversarialActivation[] = aBest.map((b) => ({ ...entry(u, b), target: b.target }));
      const aImages = aBest.length ? (tf.concat(aBest.map((b) => b.image), 0) as tf.Tensor4D) : (tf.zeros([0, h, w, c]) as tf.Tensor4D);
      tf.dispose(aBest.map((b) => b.image));
      aBest.length = 0;
      const aPatches = fieldPatches(classifier, rf, aImages, aTop);
      results.push({
        unit: specs[u],
        real: { top: rTop, receptiveField: rf, images: rImages, patches: rPatches, scanned: n, dispose: () => tf.dispose([rImages, rPatches]) },
        adversarial: { top: aTop, receptiveField: rf, images: aImages, patches: aPatches, scanned: n * o.perImage, dispose: () => tf.dispose([aImages, aPatches]) },
        attackSuccess: hits / (n * o.perImage),
        dispose: () => tf.dispose([rImages, rPatches, aImages, aPatches]),
      });
    }
    return results;
  } catch (e) {
    for (const r of results) r.dispose();
    for (const k of adv) tf.dispose(k.best.map((b) => b.image));
    throw e;
  }
}
