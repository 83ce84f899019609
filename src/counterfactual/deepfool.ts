/**
 * DeepFool (Moosavi-Dezfooli et al. 2016; seeds 002 and 004): the smallest perturbation that changes
 * the label, found by repeatedly linearising the classifier and stepping to the nearest linearised
 * decision boundary.
 *
 * Multi-class, L2 or L∞ (the paper's p = 2 and p = ∞, i.e. dual norms q = 2 and q = 1). At step i,
 * for each candidate class k ≠ k̂: w_k = ∇f_k − ∇f_k̂, f'_k = f_k − f_k̂; pick l = argmin |f'_k| / ‖w_k‖_q;
 * r_i = (|f'_l| + 1e-4) / ‖w_l‖₂² · w_l (L2) or (|f'_l| + 1e-4) / ‖w_l‖₁ · sign(w_l) (L∞); the total
 * r = Σ r_i and the iterate is x + (1 + overshoot)·r. Stops when the label changes or after
 * maxIterations. All images of a batch move together; finished images drop out of the batch.
 *
 * Targeted variant (a target class t other than the prediction): each step goes to the linearised
 * plane between t and the current top class until t is on top.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { registerMethod } from '../core/registry.js';
import { combinationGradients } from './local-linear.js';
import { batchedLogits, batchSizeFor } from '../engine/memory.js';

export interface DeepFoolOptions {
  /** Overshoot η: the iterate is x + (1 + η)·r. Default 0.02 (the paper's). */
  overshoot?: number;
  /** Step limit. Default 50. */
  maxIterations?: number;
  /** 'l2' (default) or 'linf'. */
  norm?: 'l2' | 'linf';
  /** Consider only the top-C classes of the original prediction (0: all). Default 10, the paper's choice on ImageNet (all classes of a 10-class model). */
  candidates?: number;
  /** Clip iterates to the classifier's input range. Default false (the paper does not clip). */
  clip?: boolean;
  /** Per image: a class to reach (targeted), or undefined/−1 for untargeted. */
  targets?: Array<number | undefined>;
  /** Images per batch, at most (fewer when the memory budget cannot hold every candidate row of them). Default 32. */
  batchSize?: number;
}

export interface DeepFoolResult {
  /** x + (1 + η)·r (clipped when asked). */
  adversarial: tf.Tensor4D;
  /** adversarial − x. */
  perturbation: tf.Tensor4D;
  /** Σ r_i without overshoot: the linearised boundary point is x + rTotal. */
  rTotal: tf.Tensor4D;
  logitsAfter: tf.Tensor2D;
  originalClass: number[];
  newClass: number[];
  iterations: number[];
  /** Whether the label changed (untargeted) or reached the target (targeted). */
  fooled: boolean[];
  /** ‖perturbation‖₂ and ‖perturbation‖∞ per image. */
  l2: number[];
  linf: number[];
  dispose(): void;
}

export const DEEPFOOL_DEFAULTS = { overshoot: 0.02, maxIterations: 50, norm: 'l2' as 'l2' | 'linf', candidates: 10, clip: false, batchSize: 32 };

function argmax(a: ArrayLike<number>, off: number, k: number): number {
  let b = 0;
  for (let j = 1; j < k; j++) if (a[off + j] > a[off + b]) b = j;
  return b;
}

/**
 * Run DeepFool on a batch.
 *
 * @example
 * const r = await deepfool(classifier, images, { overshoot: 0.02 });
 * console.log(r.newClass, r.iterations, r.l2); r.dispose();
 */
export async function deepfool(classifier: Classifier, x: tf.Tensor4D, opts: DeepFoolOptions = {}): Promise<DeepFoolResult> {
  const o = { ...DEEPFOOL_DEFAULTS, ...opts };
  if (!(o.overshoot >= 0)) throw new OptionError(`expected overshoot ≥ 0; got ${o.overshoot}`);
  if (!(o.maxIterations >= 1)) throw new OptionError(`expected maxIterations ≥ 1; got ${o.maxIterations}`);
  if (o.norm !== 'l2' && o.norm !== 'linf') throw new OptionError(`expected norm 'l2' or 'linf'; got ${String(o.norm)}`);
  const n = x.shape[0];
  const k = classifier.numClasses;
  const d = x.shape[1] * x.shape[2] * x.shape[3];
  const { low, high } = classifier.domain;
  const x0 = (await x.data()) as Float32Array;
  const logits0T = batchedLogits(classifier, x);
  const logits0 = (await logits0T.data()) as Float32Array;
  logits0T.dispose();
  const orig = Array.from({ length: n }, (_, i) => argmax(logits0, i * k, k));
  const tgt = Array.from({ length: n }, (_, i) => {
    const t = opts.targets?.[i];
    if (t == null || t < 0 || t === orig[i]) return -1;
    if (!Number.isInteger(t) || t >= k) throw new OptionError(`expected target classes in 0..${k - 1}; got ${t}`);
    return t;
  });
  // Candidate classes per image: the top-C of the original logits, plus the target.
  const cand: number[][] = Array.from({ length: n }, (_, i) => {
    const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => logits0[i * k + b] - logits0[i * k + a]);
    const c = o.candidates > 0 ? order.slice(0, Math.max(2, o.candidates)) : order;
    if (tgt[i] >= 0 && !c.includes(tgt[i])) c.push(tgt[i]);
    return c;
  });
  const rTot = new Float32Array(n * d);
  const current = new Float32Array(x0);
  const iterations = new Array(n).fill(0);
  const fooled = new Array(n).fill(false);
  const newClass = orig.slice();
  const done = new Array(n).fill(false);
  const scale = 1 + o.overshoot;
  // One gradient row per (image, candidate): rows per pass from the memory budget, images per batch so
  // their rows fit (an image with more candidates than that is split over several passes).
  const rowsFit = batchSizeFor(classifier, 'gradient', undefined, { shape: x.shape.slice(1) });
  const maxCand = Math.max(...cand.map((c) => c.length));
  const imagesPerBatch = Math.max(1, Math.min(o.batchSize, Math.floor(rowsFit / maxCand)));

  const place = (i: number) => {
    for (let j = 0; j < d; j++) {
      let v = x0[i * d + j] + scale * rTot[i * d + j];
      if (o.clip) v = Math.min(high, Math.max(low, v));
      current[i * d + j] = v;
    }
  };

  for (let iter = 0; iter <= o.maxIterations; iter++) {
    const active = [];
    for (let i = 0; i < n; i++) if (!done[i]) active.push(i);
    if (active.length === 0) break;
    for (let b0 = 0; b0 < active.length; b0 += imagesPerBatch) {
      const batch = active.slice(b0, b0 + imagesPerBatch);
      // Rows: each image once per candidate class; row coefficients pick that class's logit.
      const rowImg: number[] = [];
      const rowCls: number[] = [];
      for (const i of batch) for (const c of cand[i]) {
        rowImg.push(i);
        rowCls.push(c);
      }
      const m = rowImg.length;
      const g = new Float32Array(m * d);
      const out = new Float32Array(m * k);
      for (let r0 = 0; r0 < m; r0 += rowsFit) {
        const mc = Math.min(rowsFit, m - r0);
        const pts = new Float32Array(mc * d);
        for (let r = 0; r < mc; r++) pts.set(current.subarray(rowImg[r0 + r] * d, (rowImg[r0 + r] + 1) * d), r * d);
        const coeff = new Float32Array(mc * k);
        for (let r = 0; r < mc; r++) coeff[r * k + rowCls[r0 + r]] = 1;
        const [gT, outT] = tf.tidy(() => {
          const { grads, values, outputs } = combinationGradients((v) => classifier.logits(v), tf.tensor4d(pts, [mc, ...x.shape.slice(1)] as [number, number, number, number]), tf.tensor2d(coeff, [mc, k]));
          values.dispose();
          return [grads, outputs];
        });
        g.set((await gT.data()) as Float32Array, r0 * d);
        out.set((await outT.data()) as Float32Array, r0 * k);
        tf.dispose([gT, outT]);
      }
      let r = 0;
      for (const i of batch) {
        const nc = cand[i].length;
        const rowOf = new Map(cand[i].map((c, j) => [c, r + j]));
        const lo = r * k;
        const top = argmax(out, lo, k);
        r += nc;
        const reached = tgt[i] >= 0 ? top === tgt[i] : top !== orig[i];
        if (reached || iter === o.maxIterations) {
          done[i] = true;
          fooled[i] = reached;
          newClass[i] = top;
          continue;
        }
        // Source class: the original (untargeted) or the current top (targeted).
        const src = tgt[i] >= 0 ? top : orig[i];
        const others = tgt[i] >= 0 ? [tgt[i]] : cand[i].filter((c) => c !== src);
        const sRow = rowOf.get(src);
        if (sRow === undefined) {
          // Targeted run whose current top class is not a candidate: treat as failure to stay cheap.
          done[i] = true;
          newClass[i] = top;
          continue;
        }
        let best = -1;
        let bestDist = Infinity;
        let bestF = 0;
        let bestNorm = 0;
        for (const c of others) {
          const cr = rowOf.get(c)!;
          const fk = out[lo + c] - out[lo + src];
          let n2 = 0;
          let n1 = 0;
          for (let j = 0; j < d; j++) {
            const w = g[cr * d + j] - g[sRow * d + j];
            n2 += w * w;
            n1 += Math.abs(w);
          }
          const dist = Math.abs(fk) / (o.norm === 'l2' ? Math.sqrt(n2) : n1);
          if (dist < bestDist) {
            bestDist = dist;
            best = cr;
            bestF = fk;
            bestNorm = o.norm === 'l2' ? n2 : n1;
          }
        }
        if (best < 0 || !(bestNorm > 0) || !Number.isFinite(bestDist)) {
          done[i] = true;
          newClass[i] = top;
          continue;
        }
        const coef = (Math.abs(bestF) + 1e-4) / bestNorm;
        for (let j = 0; j < d; j++) {
          const w = g[best * d + j] - g[sRow * d + j];
          rTot[i * d + j] += o.norm === 'l2' ? coef * w : coef * Math.sign(w);
        }
        iterations[i] += 1;
        place(i);
      }
    }
  }
  const shape = x.shape;
  const adversarial = tf.tensor4d(current, shape);
  const perturbation = tf.sub(adversarial, x) as tf.Tensor4D;
  const rTotal = tf.tensor4d(rTot, shape);
  const logitsAfter = batchedLogits(classifier, adversarial);
  const p = (await perturbation.data()) as Float32Array;
  const l2: number[] = [];
  const linf: number[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    let m = 0;
    for (let j = 0; j < d; j++) {
      const v = p[i * d + j];
      s += v * v;
      m = Math.max(m, Math.abs(v));
    }
    l2.push(Math.sqrt(s));
    linf.push(m);
  }
  return {
    adversarial, perturbation, rTotal, logitsAfter, originalClass: orig, newClass, iterations, fooled, l2, linf,
    dispose: () => tf.dispose([adversarial, perturbation, rTotal, logitsAfter]),
  };
}

registerMethod({
  name: 'deepfool',
  family: 'counterfactual',
  description: 'DeepFool: smallest (linearised) perturbation that changes the label; attribution = the perturbation',
  signed: true,
  defaults: { ...DEEPFOOL_DEFAULTS },
  // each image iterates on its own: explain's memory chunks and the pool's workers split the batch
  perImageExtras: ['adversarial', 'originalClass', 'newClass', 'iterations', 'fooled', 'l2', 'linf'],
  parallel: 'images',
  async run(classifier, x, targets, options) {
    // Target = the prediction → untargeted; another class → targeted DeepFool towards it.
    const r = await deepfool(classifier, x, { ...options, targets });
    tf.dispose([r.rTotal]);
    return {
      attribution: r.perturbation,
      logitsAfter: r.logitsAfter,
      extras: {
        adversarial: r.adversarial, originalClass: r.originalClass, newClass: r.newClass, iterations: r.iterations,
        fooled: r.fooled, l2: r.l2, linf: r.linf,
      },
    };
  },
});
