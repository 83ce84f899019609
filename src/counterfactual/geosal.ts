/**
 * GeoSal — geometric saliency (seed 002). A comparative explanation: "why P?" is answered by "why not
 * each other class Q?", and "why not Q?" by the nearest image x' for which y_P = y_Q.
 *
 * Closest adversarial example (seed 002's algorithm), for one prediction P and comparison Q:
 *   1. the best guess starts at x;
 *   2–3. the local linear form of y' = y_P − y_Q in the region of the guess (x·w' + b' = y', exact
 *        for a ReLU network: seed 002's find_plane with Node = [P, Q]);
 *   4. the closest point on the plane x·w' + b' = 0: x − y'/‖w'‖²·w' (eq. 4–5);
 *   5. forced back into the input box [low, high] (Classifier.domain);
 *   6. when the same plane is found 3 times in a row, the clipping has made the walk a geometric
 *      series (eq. 9, q = p + d₁/(1 − r)); its limit is taken at once. With the clipped pixels C held at
 *      their bound, the series sums to q = p − y'·w'_F/‖w'_F‖² over the free pixels F (r = ‖w'_C‖²/‖w'‖²);
 *   7. stop when p(Q) > p(P) at the guess (the sign of y' flipped), else repeat from 2.
 * Every move is lengthened by a small overshoot (default 1e-3) so a guess landing on the plane
 * crosses it instead of tying.
 *
 * Importance (seed 002): for each Q ≠ P in order of probability y_Q, down to a threshold,
 * Σ y_Q·|x − x'_Q| ('absolute', default) or Σ y_Q·(x − x'_Q) ('signed'). The two-class view
 * (seed 002 Fig. 19) is `compareTo: Q`: the map of that class alone, unweighted.
 *
 * All (image, comparison) pairs of a batch are walked together: one forward and backward pass per
 * iteration for all of them (each row's gradient is that row's y_P − y_Q).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { registerMethod, type MethodResult } from '../core/registry.js';
import { combinationGradients } from './local-linear.js';
import { batchedLogits, batchSizeFor } from '../engine/memory.js';

export interface ClosestOptions {
  /** Relative overshoot of every move (default 1e-3). */
  overshoot?: number;
  /** Iteration limit per pair (default 50). */
  maxIterations?: number;
  /** Same-plane repeats that trigger the geometric-series shortcut (default 3; 0 = never). */
  repeats?: number;
  /** Clip guesses to the classifier's input range (default true). */
  clip?: boolean;
  /** Rows (image, comparison pairs) per forward/backward pass, at most (fewer when the memory budget says so; default 64). */
  batchSize?: number;
}

export interface GeoSalOptions extends ClosestOptions {
  /** 'absolute' (default): Σ y_Q·|x − x'_Q|; 'signed': Σ y_Q·(x − x'_Q). */
  mode?: 'absolute' | 'signed';
  /** Skip comparison classes whose probability is below this (default 0: all classes). */
  threshold?: number;
  /**
   * At most this many comparison classes per image, most probable first (0: no limit). Default 9:
   * every other class of a 10-class model, the 9 most likely of an ImageNet one (DeepFool's choice).
   */
  maxComparisons?: number;
  /** Two-class view: compare with this class only, unweighted (default −1: off). */
  compareTo?: number;
  /** Weight per comparison: its probability (default, seed 002) or 1. */
  weighting?: 'probability' | 'uniform';
}

export const GEOSAL_DEFAULTS = {
  mode: 'absolute' as 'absolute' | 'signed',
  threshold: 0,
  maxComparisons: 9,
  compareTo: -1,
  weighting: 'probability' as 'probability' | 'uniform',
  overshoot: 1e-3,
  maxIterations: 50,
  repeats: 3,
  clip: true,
  batchSize: 64,
};

export interface PairResult {
  /** The closest adversarial example found (flattened). */
  point: Float32Array;
  /** Whether p(Q) > p(P) there. */
  reached: boolean;
  /** Planes visited (forward/backward passes). */
  iterations: number;
  /** Geometric-series shortcuts taken. */
  shortcuts: number;
  l2: number;
}

interface Pair { image: number; p: number; q: number }

/**
 * Seed 002's closest-adversarial-example walk for a list of (image, P, Q) pairs, batched.
 * x: the images; returns one result per pair.
 */
export async function closestAdversarial(classifier: Classifier, x: tf.Tensor4D, pairs: Pair[], opts: ClosestOptions = {}): Promise<PairResult[]> {
  const o = { ...GEOSAL_DEFAULTS, ...opts };
  const k = classifier.numClasses;
  for (const pr of pairs) {
    if (pr.p === pr.q) throw new OptionError(`expected a comparison class different from the prediction; got ${pr.q} for both`);
    if (pr.q < 0 || pr.q >= k || pr.p < 0 || pr.p >= k) throw new OptionError(`expected classes in 0..${k - 1}; got P=${pr.p}, Q=${pr.q}`);
  }
  const shape = x.shape.slice(1) as [number, number, number];
  const d = shape[0] * shape[1] * shape[2];
  const { low, high } = classifier.domain;
  const xs = (await x.data()) as Float32Array;
  const m = pairs.length;
  const rowsPerPass = batchSizeFor(classifier, 'gradient', o.batchSize, { shape });
  const cur = pairs.map((pr) => xs.slice(pr.image * d, (pr.image + 1) * d));
  const s0 = new Array(m).fill(0);
  const done = new Array(m).fill(false);
  const reached = new Array(m).fill(false);
  const iterations = new Array(m).fill(0);
  const shortcuts = new Array(m).fill(0);
  const prevW: Array<Float32Array | undefined> = new Array(m).fill(undefined);
  const prevB = new Array(m).fill(0);
  const same = new Array(m).fill(0);
  const clip = (v: number) => (o.clip ? Math.min(high, Math.max(low, v)) : v);

  for (let iter = 0; iter <= o.maxIterations; iter++) {
    const active: number[] = [];
    for (let r = 0; r < m; r++) if (!done[r]) active.push(r);
    if (active.length === 0) break;
    for (let b0 = 0; b0 < active.length; b0 += rowsPerPass) {
      const rows = active.slice(b0, b0 + rowsPerPass);
      const nb = rows.length;
      const pts = new Float32Array(nb * d);
      const coeff = new Float32Array(nb * k);
      rows.forEach((r, i) => {
        pts.set(cur[r], i * d);
        coeff[i * k + pairs[r].p] = 1;
        coeff[i * k + pairs[r].q] = -1;
      });
      const [gT, vT] = tf.tidy(() => {
        const { grads, values, outputs } = combinationGradients(
          (v) => classifier.logits(v), tf.tensor4d(pts, [nb, ...shape]), tf.tensor2d(coeff, [nb, k]),
        );
        outputs.dispose();
        return [grads, values];
      });
      const g = (await gT.data()) as Float32Array;
      const vals = (await vT.data()) as Float32Array;
      tf.dispose([gT, vT]);
      rows.forEach((r, i) => {
        const y = vals[i];
        if (iter === 0) s0[r] = y >= 0 ? 1 : -1;
        // 7. p(Q) > p(P) (the walk started on P's side; the other way round when it did not).
        if (y * s0[r] < 0) {
          done[r] = true;
          reached[r] = true;
          return;
        }
        if (iter === o.maxIterations) {
          done[r] = true;
          return;
        }
        const w = g.subarray(i * d, (i + 1) * d);
        const p = cur[r];
        let n2 = 0;
        let xw = 0;
        for (let j = 0; j < d; j++) {
          n2 += w[j] * w[j];
          xw += p[j] * w[j];
        }
        if (!(n2 > 0)) {
          done[r] = true; // flat region: no plane to move to
          return;
        }
        // Same plane as at the previous guess? (Same ReLU pattern ⇒ identical w' and b'.)
        const b = y - xw;
        const pw = prevW[r];
        let isSame = false;
        if (pw) {
          let diff = 0;
          let scale = 0;
          for (let j = 0; j < d; j++) {
            diff = Math.max(diff, Math.abs(w[j] - pw[j]));
            scale = Math.max(scale, Math.abs(w[j]));
          }
          isSame = diff <= 1e-5 * scale && Math.abs(b - prevB[r]) <= 1e-5 * (Math.abs(b) + 1e-3);
        }
        same[r] = isSame ? same[r] + 1 : 1;
        prevW[r] = Float32Array.from(w);
        prevB[r] = b;
        iterations[r] += 1;
        const next = new Float32Array(d);
        let moved = 0;
        if (o.clip && o.repeats > 0 && same[r] >= o.repeats) {
          // 6. Geometric-series limit: pixels held at a bound by the clipping stay there; the rest
          //    move onto the plane.
          const dir = -Math.sign(y);
          let nf = 0;
          for (let j = 0; j < d; j++) {
            const frozen = (p[j] >= high && dir * w[j] > 0) || (p[j] <= low && dir * w[j] < 0);
            if (!frozen) nf += w[j] * w[j];
          }
          if (nf > 0) {
            const c = ((1 + o.overshoot) * y) / nf;
            for (let j = 0; j < d; j++) {
              const frozen = (p[j] >= high && dir * w[j] > 0) || (p[j] <= low && dir * w[j] < 0);
              next[j] = frozen ? p[j] : clip(p[j] - c * w[j]);
              moved = Math.max(moved, Math.abs(next[j] - p[j]));
            }
            shortcuts[r] += 1;
            same[r] = 0;
          }
        }
        if (moved === 0) {
          // 4–5. Closest point on the plane, forced into the input box.
          const c = ((1 + o.overshoot) * y) / n2;
          for (let j = 0; j < d; j++) {
            next[j] = clip(p[j] - c * w[j]);
            moved = Math.max(moved, Math.abs(next[j] - p[j]));
          }
        }
        if (moved === 0) {
          done[r] = true; // the plane cannot be approached inside the box
          return;
        }
        cur[r] = next;
      });
    }
  }
  return pairs.map((pr, r) => {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const v = cur[r][j] - xs[pr.image * d + j];
      s += v * v;
    }
    return { point: cur[r], reached: reached[r], iterations: iterations[r], shortcuts: shortcuts[r], l2: Math.sqrt(s) };
  });
}

export interface GeoSalResult {
  /** [N, H, W, C] importance map. */
  attribution: tf.Tensor4D;
  /** Per image: the comparison classes, most probable first. */
  comparisons: number[][];
  /** Per image: weight y_Q of each comparison. */
  weights: number[][];
  /** Per image: the closest adversarial example for each comparison, [M_i, H, W, C]. */
  adversarial: tf.Tensor4D[];
  reached: boolean[][];
  iterations: number[][];
  l2: number[][];
  /** Per image: the reached comparison with the smallest L2 distance (−1 if none). */
  closestClass: number[];
  closestL2: number[];
  /** [N, H, W, C]: that nearest adversarial example (x itself when none was reached). */
  closest: tf.Tensor4D;
  dispose(): void;
}

/**
 * GeoSal importance maps for a batch, explaining class `targets[i]` (default: the prediction).
 *
 * @example
 * const g = await geosal(classifier, images);              // full comparative map (seed 002 Fig. 20)
 * const two = await geosal(classifier, images, undefined, { compareTo: 9, mode: 'signed' }); // Fig. 19
 */
export async function geosal(classifier: Classifier, x: tf.Tensor4D, targets?: number[], opts: GeoSalOptions = {}): Promise<GeoSalResult> {
  const o = { ...GEOSAL_DEFAULTS, ...opts };
  if (o.mode !== 'absolute' && o.mode !== 'signed') throw new OptionError(`expected mode 'absolute' or 'signed'; got ${String(o.mode)}`);
  if (o.weighting !== 'probability' && o.weighting !== 'uniform') throw new OptionError(`expected weighting 'probability' or 'uniform'; got ${String(o.weighting)}`);
  const n = x.shape[0];
  const k = classifier.numClasses;
  const shape = x.shape.slice(1) as [number, number, number];
  const d = shape[0] * shape[1] * shape[2];
  const probT = tf.tidy(() => tf.softmax(batchedLogits(classifier, x)));
  const prob = (await probT.data()) as Float32Array;
  probT.dispose();
  const P = targets ?? Array.from({ length: n }, (_, i) => {
    let b = 0;
    for (let j = 1; j < k; j++) if (prob[i * k + j] > prob[i * k + b]) b = j;
    return b;
  });
  if (o.compareTo >= k) throw new OptionError(`expected compareTo in 0..${k - 1} (or −1 for all classes); got ${o.compareTo}`);
  const comparisons: number[][] = [];
  const weights: number[][] = [];
  for (let i = 0; i < n; i++) {
    if (o.compareTo >= 0) {
      if (o.compareTo === P[i]) throw new OptionError(`expected compareTo different from the explained class ${P[i]} of image ${i}; got ${o.compareTo}`);
      comparisons.push([o.compareTo]);
      weights.push([1]);
      continue;
    }
    let qs = Array.from({ length: k }, (_, j) => j).filter((j) => j !== P[i]).sort((a, b) => prob[i * k + b] - prob[i * k + a]);
    qs = qs.filter((q) => prob[i * k + q] >= o.threshold);
    if (o.maxComparisons > 0) qs = qs.slice(0, o.maxComparisons);
    comparisons.push(qs);
    weights.push(qs.map((q) => (o.weighting === 'probability' ? prob[i * k + q] : 1)));
  }
  const pairs: Pair[] = [];
  comparisons.forEach((qs, i) => qs.forEach((q) => pairs.push({ image: i, p: P[i], q })));
  const res = await closestAdversarial(classifier, x, pairs, o);
  const xs = (await x.data()) as Float32Array;
  const attr = new Float32Array(n * d);
  const closestData = new Float32Array(xs);
  const closestClass = new Array(n).fill(-1);
  const closestL2 = new Array(n).fill(Infinity);
  const adversarial: tf.Tensor4D[] = [];
  const reached: boolean[][] = [];
  const iterations: number[][] = [];
  const l2: number[][] = [];
  let r = 0;
  for (let i = 0; i < n; i++) {
    const qs = comparisons[i];
    const advData = new Float32Array(qs.length * d);
    reached.push([]);
    iterations.push([]);
    l2.push([]);
    qs.forEach((q, j) => {
      const pr = res[r++];
      advData.set(pr.point, j * d);
      reached[i].push(pr.reached);
      iterations[i].push(pr.iterations);
      l2[i].push(pr.l2);
      const wgt = weights[i][j];
      for (let t = 0; t < d; t++) {
        const diff = xs[i * d + t] - pr.point[t];
        attr[i * d + t] += wgt * (o.mode === 'absolute' ? Math.abs(diff) : diff);
      }
      if (pr.reached && pr.l2 < closestL2[i]) {
        closestL2[i] = pr.l2;
        closestClass[i] = q;
        closestData.set(pr.point, i * d);
      }
    });
    adversarial.push(tf.tensor4d(advData, [qs.length, ...shape]));
  }
  const attribution = tf.tensor4d(attr, x.shape);
  const closest = tf.tensor4d(closestData, x.shape);
  return {
    attribution, comparisons, weights, adversarial, reached, iterations, l2, closestClass,
    closestL2: closestL2.map((v) => (Number.isFinite(v) ? v : NaN)), closest,
    dispose: () => tf.dispose([attribution, closest, ...adversarial]),
  };
}

/** The registered methods' view of a GeoSal run: the map, logits at the closest example, and the rest as extras. */
function geosalMethodResult(classifier: Classifier, g: Awaited<ReturnType<typeof geosal>>): MethodResult {
  return {
    attribution: g.attribution,
    logitsAfter: batchedLogits(classifier, g.closest),
    extras: {
      comparisons: g.comparisons, weights: g.weights, adversarial: g.adversarial, reached: g.reached,
      iterations: g.iterations, l2: g.l2, closestClass: g.closestClass, closestL2: g.closestL2, closest: g.closest,
    },
  };
}

/** Every extra holds one entry per image (each (image, comparison) walk is independent): explain's memory chunks and the pool's workers may split the batch. */
const GEOSAL_PER_IMAGE = ['comparisons', 'weights', 'adversarial', 'reached', 'iterations', 'l2', 'closestClass', 'closestL2', 'closest'];

registerMethod({
  name: 'geosal',
  family: 'counterfactual',
  description: 'GeoSal (seed 002): Σ y_Q·|x − x\'_Q| over the closest adversarial examples x\'_Q on the decision planes of the local linear form',
  signed: false,
  defaults: { ...GEOSAL_DEFAULTS },
  perImageExtras: GEOSAL_PER_IMAGE,
  parallel: 'images',
  async run(classifier, x, targets, options) {
    return geosalMethodResult(classifier, await geosal(classifier, x, targets, options));
  },
});

const { mode: _mode, ...SIGNED_DEFAULTS } = GEOSAL_DEFAULTS;

registerMethod({
  name: 'geosal-signed',
  family: 'counterfactual',
  description: "GeoSal's signed map Σ y_Q·(x − x'_Q): positive where the pixel would have to fall to reach another class",
  signed: true,
  defaults: { ...SIGNED_DEFAULTS },
  perImageExtras: GEOSAL_PER_IMAGE,
  parallel: 'images',
  async run(classifier, x, targets, options) {
    return geosalMethodResult(classifier, await geosal(classifier, x, targets, { ...options, mode: 'signed' }));
  },
});
