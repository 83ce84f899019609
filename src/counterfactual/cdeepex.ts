/**
 * CDeepEx (seed 001): "why did the classifier D say y_true and not y_probe?" answered in a
 * generator's latent space.
 *
 *   z0 = e(I) (encoder) or Algorithm 2 (GAN);  I_z = G(z) + I − G(z0)  (the residual keeps I_z0 = I)
 *   z_e = argmin ‖z − z0‖²  s.t.  h(z) = llh(true) − llh(probe) = 0
 *                                 llh(true)  − llh(y') ≥ ε,  llh(probe) − llh(y') ≥ ε   ∀ y' ∉ {true, probe}
 *
 * solved by the augmented Lagrangian of Eq. 3 (multipliers λ, μ, μ̃ updated after every
 * unconstrained solve: λ ← λ + c·h, μ ← max(0, μ + c·g)), with c updated by Eq. 4:
 * c ← c·β when |h_k| > γ·|h_{k−1}| (γ = 0.24, β = 1.01, c0 = 1). Each unconstrained solve is
 * `innerSteps` steps of gradient descent (plain, or Adam with `optimizer: 'adam'`).
 * `xgems` is the same problem without the inequality constraints.
 *
 * Note on signs: seed 001 writes Δ = G(z0) − I and I_z = G(z) + Δ, which would not give I_z0 = I as
 * the text says it must; the residual is applied with the sign that does (I_z = G(z) − Δ), and the
 * difference is formed as I + (G(z) − G(z0)) so that z = z0 gives I exactly.
 *
 * Target: the probe class. With the default target 'predicted' (the class D gives), the probe
 * becomes the second most likely class, as in seed 001 §4.1.1.
 * Attribution: I_ze − I = G(z_e) − G(z0): positive = must be added to move from true to probe (red in
 * seed 001 Fig. 2), negative = must be removed (blue). Seed 001 Algorithm 1's G(z0) − G(z_e) is its negation.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod, type MethodResult, type MethodContext } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import type { Generator } from '../generative/types.js';
import { resolveGenerator, latentCode, rows, type GeneratorOption } from './latent.js';

export interface CdeepexOptions {
  /** Generator object or name under models/. Default 'mnist-vae-10d'. */
  generator: GeneratorOption;
  /** Margin ε of the inequality constraints, in log-likelihood. Default 0.1. */
  margin: number;
  /** Eq. 4 constants. */
  gamma: number;
  beta: number;
  c0: number;
  /** Multiplier updates (outer iterations). Default 150. */
  outerSteps: number;
  /** Gradient steps per unconstrained problem. Default 3 (the seed leaves it open; few steps and many multiplier updates converge faster with c0 = 1, β = 1.01). */
  innerSteps: number;
  /** Step size of the inner solver. Default 0.02. */
  learningRate: number;
  /** Inner solver: 'sgd' (plain gradient descent, the seed's; default) or 'adam' (its jitter of about learningRate in z keeps |h| from settling below ~1e-2). */
  optimizer: 'sgd' | 'adam';
  /** An image is done at the first multiplier update where |h| < tolerance and every inequality holds. Default 5e-3. */
  tolerance: number;
  /** Give up on an image (converged = false) when min |h| has not improved by 1 % in this many multiplier updates (a local minimum). 0 = never. Default 60. */
  patience: number;
  /** Record z and the class probabilities after every outer iteration. Default true. */
  recordPath: boolean;
  /** Latent code: 'auto' (encoder when there is one), 'encoder', 'optimize' (Algorithm 2). */
  inversion: 'auto' | 'encoder' | 'optimize';
  inversionSteps: number;
  /** Misclassification cost weight of Algorithm 2. Default 0.1. */
  misclassWeight: number;
  /** Seed of Algorithm 2's random start. Default 1. */
  seed: number;
  /** false gives xGEMs (equality constraint only). */
  constraints: boolean;
}

export const CDEEPEX_DEFAULTS: CdeepexOptions = {
  generator: 'mnist-vae-10d',
  margin: 0.1,
  gamma: 0.24,
  beta: 1.01,
  c0: 1,
  outerSteps: 150,
  innerSteps: 3,
  learningRate: 0.02,
  optimizer: 'sgd',
  tolerance: 5e-3,
  patience: 60,
  recordPath: true,
  inversion: 'auto',
  inversionSteps: 300,
  misclassWeight: 0.1,
  seed: 1,
  constraints: true,
};

export interface CdeepexResult {
  /** I_ze = I + G(z_e) − G(z0), [N, h, w, c]. */
  counterfactual: tf.Tensor4D;
  /** G(z_e) − G(z0). */
  difference: tf.Tensor4D;
  logitsAfter: tf.Tensor2D;
  trueClass: number[];
  probe: number[];
  z0: number[][];
  zE: number[][];
  distance: number[];
  /** h = llh(true) − llh(probe) at z_e. */
  equalityResidual: number[];
  /** max over y' of ε − (llh(true or probe) − llh(y')), ≤ 0 when every inequality holds. */
  inequalityResidual: number[];
  converged: boolean[];
  outerSteps: number[];
  c: number[];
  lambda: number[];
  path: number[][][];
  probsPath: number[][][];
  /** h after every outer iteration. */
  hPath: number[][];
  inversion: 'encoder' | 'optimize';
}

function check(o: CdeepexOptions): void {
  for (const k of ['gamma', 'beta', 'c0', 'learningRate'] as const) {
    if (!(o[k] > 0)) throw new OptionError(`expected ${k} > 0; got ${o[k]}`);
  }
  for (const k of ['outerSteps', 'innerSteps'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 0) throw new OptionError(`expected ${k} an integer ≥ 0; got ${o[k]}`);
  }
  if (o.optimizer !== 'sgd' && o.optimizer !== 'adam') throw new OptionError(`expected optimizer 'sgd' or 'adam'; got "${o.optimizer}"`);
}

/** True and probe class per image: probe = target, or the second most likely class when target is the predicted class. */
export function trueAndProbe(logits: number[][], targets: number[]): { trueClass: number[]; probe: number[] } {
  targets.forEach((t) => {
    if (!Number.isInteger(t) || t < 0 || t >= (logits[0]?.length ?? 0)) throw new OptionError(`expected a probe class index in 0..${(logits[0]?.length ?? 1) - 1}; got ${t}`);
  });
  const trueClass: number[] = [];
  const probe: number[] = [];
  logits.forEach((row, i) => {
    const order = row.map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    trueClass.push(order[0][1]);
    probe.push(targets[i] === order[0][1] ? order[1][1] : targets[i]);
  });
  return { trueClass, probe };
}

export async function contrastiveSearch(
  classifier: Classifier, gen: Generator, x: tf.Tensor4D, targets: number[], o: CdeepexOptions,
  /** Called after every multiplier update with the fraction done (images finished, or updates used). */
  progress?: (fraction: number, label?: string) => void,
): Promise<CdeepexResult> {
  check(o);
  const n = x.shape[0];
  const K = classifier.numClasses;
  const logits0 = classifier.logits(x);
  const { trueClass, probe } = trueAndProbe((await logits0.array()) as number[][], targets);
  logits0.dispose();
  const lat = await latentCode(gen, x, { method: o.inversion, steps: o.inversionSteps, seed: o.seed, misclassWeight: o.misclassWeight }, classifier, trueClass);
  const z0 = lat.z0;
  const gz0 = tf.tidy(() => gen.decode(z0));
  const mTrue = targetMask(trueClass, K);
  const mProbe = targetMask(probe, K);
  // The search runs on the images still active only: a finished image leaves the batch (its z is
  // stored), so a batch costs what its unfinished images cost, not what its slowest one costs × N.
  let idx = Array.from({ length: n }, (_, i) => i);
  const zDone: number[][] = Array.from({ length: n }, () => []);
  // Other classes: 1 where y' ∉ {true, probe}.
  const mOther = tf.tidy(() => tf.sub(tf.sub(1, mTrue), mProbe)) as tf.Tensor2D;
  type Rows = { x: tf.Tensor4D; gz0: tf.Tensor4D; z0: tf.Tensor2D; mTrue: tf.Tensor2D; mProbe: tf.Tensor2D; mOther: tf.Tensor2D };
  const all: Rows = { x, gz0, z0, mTrue, mProbe, mOther };
  // The per-image tensors the search works on; compact() shrinks them, `all` stays whole for the result.
  let cur: Rows = { x: tf.clone(x), gz0: tf.clone(gz0), z0: tf.clone(z0), mTrue: tf.clone(mTrue), mProbe: tf.clone(mProbe), mOther: tf.clone(mOther) };
  const imageOf = (z: tf.Tensor2D) => tf.add(cur.x, tf.sub(gen.decode(z), cur.gz0)) as tf.Tensor4D;
  /** h [rows], g1 [rows, K], g2 [rows, K] (g masked to other classes; g ≤ 0 ⇔ constraint holds). */
  const constraints = (llh: tf.Tensor2D) => {
    const lt = tf.sum(tf.mul(llh, cur.mTrue), 1, true);
    const lp = tf.sum(tf.mul(llh, cur.mProbe), 1, true);
    const h = tf.reshape(tf.sub(lt, lp), [-1]) as tf.Tensor1D;
    const g1 = tf.mul(tf.sub(o.margin, tf.sub(lt, llh)), cur.mOther) as tf.Tensor2D;
    const g2 = tf.mul(tf.sub(o.margin, tf.sub(lp, llh)), cur.mOther) as tf.Tensor2D;
    return { h, g1, g2 };
  };

  let z = tf.variable(z0, true);
  const lam = new Float32Array(n);
  const mu = new Float32Array(n * K);
  const muT = new Float32Array(n * K);
  const c = new Float32Array(n).fill(o.c0);
  const prevH = new Float32Array(n).fill(Infinity);
  const active = new Array<boolean>(n).fill(true);
  const converged = new Array<boolean>(n).fill(false);
  const outerDone = new Array<number>(n).fill(o.outerSteps);
  const path: number[][][] = Array.from({ length: n }, () => []);
  const probsPath: number[][][] = Array.from({ length: n }, () => []);
  const hPath: number[][] = Array.from({ length: n }, () => []);
  // Adam state
  let m1: tf.Tensor2D = tf.zerosLike(z0);
  let m2: tf.Tensor2D = tf.zerosLike(z0);
  let t = 0;

  /** One forward pass at the current z (active rows): constraints, z, and probabilities for the path. */
  const evaluate = async () => {
    const [hT, g1T, g2T, pT] = tf.tidy(() => {
      const logits = classifier.logits(imageOf(z as unknown as tf.Tensor2D));
      const r = constraints(tf.logSoftmax(logits));
      return [r.h, r.g1, r.g2, tf.softmax(logits)];
    });
    const out = {
      h: (await hT.data()) as Float32Array,
      g1: (await g1T.data()) as Float32Array,
      g2: (await g2T.data()) as Float32Array,
      probs: o.recordPath ? ((await pT.array()) as number[][]) : [],
      z: await rows(z as unknown as tf.Tensor2D),
    };
    tf.dispose([hT, g1T, g2T, pT]);
    return out;
  };

  /** Keep only the rows at positions `keep` of every per-image tensor of the search. */
  const compact = (keep: number[]) => {
    const sel = tf.tensor1d(keep, 'int32');
    const take = <T extends tf.Tensor>(a: T): T => {
      const b = tf.gather(a, sel) as T;
      a.dispose();
      return b;
    };
    cur = { x: take(cur.x), gz0: take(cur.gz0), z0: take(cur.z0), mTrue: take(cur.mTrue), mProbe: take(cur.mProbe), mOther: take(cur.mOther) };
    m1 = take(m1);
    m2 = take(m2);
    const zKeep = tf.gather(z, sel);
    z.dispose();
    z = tf.variable(zKeep, true);
    zKeep.dispose();
    sel.dispose();
    idx = keep.map((p) => idx[p]);
  };

  for (let k = 0; ; k++) {
    // Constraints at the end of the previous solve (at z0 when k = 0): record, test, update multipliers and c.
    const { h, g1, g2, probs, z: zRows } = await evaluate();
    idx.forEach((i, p) => {
      hPath[i].push(h[p]);
      zDone[i] = zRows[p];
      if (o.recordPath) {
        path[i].push(zRows[p]);
        probsPath[i].push(probs[p]);
      }
      let worst = -Infinity;
      for (let j = 0; j < K; j++) {
        if (j === trueClass[i] || j === probe[i]) continue;
        worst = Math.max(worst, g1[p * K + j], g2[p * K + j]);
      }
      if (Math.abs(h[p]) < o.tolerance && (!o.constraints || worst <= 0)) {
        active[i] = false;
        converged[i] = true;
        outerDone[i] = k;
        return;
      }
      if (k === 0) {
        prevH[i] = h[p];
        return;
      }
      if (o.patience > 0 && hPath[i].length > o.patience) {
        const hp = hPath[i];
        const recent = Math.min(...hp.slice(-o.patience).map(Math.abs));
        const before = Math.min(...hp.slice(0, -o.patience).map(Math.abs));
        if (recent > 0.99 * before) {
          active[i] = false;
          outerDone[i] = k;
          return;
        }
      }
      lam[i] += c[i] * h[p];
      if (o.constraints) {
        for (let j = 0; j < K; j++) {
          if (j === trueClass[i] || j === probe[i]) continue;
          mu[i * K + j] = Math.max(0, mu[i * K + j] + c[i] * g1[p * K + j]);
          muT[i * K + j] = Math.max(0, muT[i * K + j] + c[i] * g2[p * K + j]);
        }
      }
      // Eq. 4: grow c when |h| did not shrink by the factor γ.
      if (Math.abs(h[p]) > o.gamma * Math.abs(prevH[i])) c[i] *= o.beta;
      prevH[i] = h[p];
    });
    const finished = active.filter((a) => !a).length;
    progress?.(Math.max(finished / n, Math.min(1, k / Math.max(1, o.outerSteps))), `${o.constraints ? 'cdeepex' : 'xgems'}: ${finished}/${n} done`);
    if (k >= o.outerSteps || !active.some(Boolean)) break;
    const keep = idx.map((i, p) => (active[i] ? p : -1)).filter((p) => p >= 0);
    if (keep.length < idx.length) compact(keep);

    const rowsN = idx.length;
    const lamT = tf.tensor1d(idx.map((i) => lam[i]));
    const cT = tf.tensor1d(idx.map((i) => c[i]));
    const cCol = tf.reshape(cT, [rowsN, 1]);
    const muTT = tf.tensor2d(idx.flatMap((i) => Array.from(mu.subarray(i * K, (i + 1) * K))), [rowsN, K]);
    const muTildeT = tf.tensor2d(idx.flatMap((i) => Array.from(muT.subarray(i * K, (i + 1) * K))), [rowsN, K]);
    const lagrangian = (zz: tf.Tensor2D) => {
      const llh = tf.logSoftmax(classifier.logits(imageOf(zz)));
      const { h, g1, g2 } = constraints(llh);
      let L = tf.add(tf.sum(tf.square(tf.sub(zz, cur.z0))), tf.sum(tf.add(tf.mul(lamT, h), tf.mul(tf.div(cT, 2), tf.square(h)))));
      if (o.constraints) {
        const term = (m: tf.Tensor2D, g: tf.Tensor2D) =>
          tf.sum(tf.mul(tf.div(tf.sub(tf.square(tf.relu(tf.add(m, tf.mul(cCol, g)))), tf.square(m)), tf.mul(cCol, 2)), cur.mOther));
        L = tf.add(L, tf.add(term(muTT, g1), term(muTildeT, g2)));
      }
      return L as tf.Scalar;
    };
    for (let s = 0; s < o.innerSteps; s++) {
      t++;
      tf.tidy(() => {
        const g = tf.grad((zz: tf.Tensor) => lagrangian(zz as tf.Tensor2D))(z);
        let step: tf.Tensor;
        if (o.optimizer === 'adam') {
          const nm1 = tf.add(tf.mul(m1, 0.9), tf.mul(g, 0.1));
          const nm2 = tf.add(tf.mul(m2, 0.999), tf.mul(tf.square(g), 0.001));
          const mh = tf.div(nm1, 1 - 0.9 ** t);
          const vh = tf.div(nm2, 1 - 0.999 ** t);
          step = tf.mul(tf.div(mh, tf.add(tf.sqrt(vh), 1e-8)), o.learningRate);
          tf.dispose([m1, m2]);
          m1 = tf.keep(nm1) as tf.Tensor2D;
          m2 = tf.keep(nm2) as tf.Tensor2D;
        } else {
          step = tf.mul(g, o.learningRate);
        }
        z.assign(tf.sub(z, step));
      });
    }
    tf.dispose([lamT, cT, cCol, muTT, muTildeT]);
  }
  tf.dispose([z, m1, m2, ...Object.values(cur)]);
  cur = all;

  const counterfactual = tf.tidy(() => imageOf(tf.tensor2d(zDone)));
  const difference = tf.sub(counterfactual, x) as tf.Tensor4D;
  const logitsAfter = classifier.logits(counterfactual);
  const [hT, ineqT] = tf.tidy(() => {
    const r = constraints(tf.logSoftmax(logitsAfter));
    // −Infinity-safe: entries of true/probe are 0 after masking; use a large negative there.
    const big = tf.mul(tf.sub(1, mOther), -1e9);
    return [r.h, tf.max(tf.add(tf.maximum(r.g1, r.g2), big), 1)];
  });
  const equalityResidual = Array.from((await hT.data()) as Float32Array);
  const inequalityResidual = Array.from((await ineqT.data()) as Float32Array);
  const zE = zDone;
  const z0a = await rows(z0);
  tf.dispose([hT, ineqT, z0, gz0, mTrue, mProbe, mOther]);
  return {
    counterfactual, difference, logitsAfter, trueClass, probe, z0: z0a, zE,
    distance: zE.map((r, i) => Math.sqrt(r.reduce((s, v, j) => s + (v - z0a[i][j]) ** 2, 0))),
    equalityResidual, inequalityResidual,
    converged, outerSteps: outerDone, c: Array.from(c), lambda: Array.from(lam), path, probsPath, hPath, inversion: lat.method,
  };
}

async function run(classifier: Classifier, x: tf.Tensor4D, targets: number[], options: CdeepexOptions, method: string, context: MethodContext): Promise<MethodResult> {
  const gen = await resolveGenerator(options.generator, classifier, method);
  const r = await contrastiveSearch(classifier, gen, x, targets, options, context.progress);
  return {
    attribution: r.difference,
    logitsAfter: r.logitsAfter,
    extras: {
      counterfactual: r.counterfactual, trueClass: r.trueClass, probe: r.probe, z0: r.z0, zE: r.zE, distance: r.distance,
      equalityResidual: r.equalityResidual, inequalityResidual: r.inequalityResidual, converged: r.converged,
      outerSteps: r.outerSteps, c: r.c, lambda: r.lambda, path: r.path, probsPath: r.probsPath, hPath: r.hPath, inversion: r.inversion, generator: gen.name,
    },
  };
}

/**
 * Every image searches on its own (an encoder-less generator's inversion too: its random start and
 * its stopping are per image): explain's memory chunks and the pool's workers may split the batch.
 */
const CDEEPEX_PER_IMAGE = ['counterfactual', 'trueClass', 'probe', 'z0', 'zE', 'distance', 'equalityResidual', 'inequalityResidual', 'converged', 'outerSteps', 'c', 'lambda', 'path', 'probsPath', 'hPath'];

registerMethod<CdeepexOptions>({
  name: 'cdeepex',
  family: 'counterfactual',
  description: 'contrastive explanation "why true and not probe?": closest latent point where both are equally likely and above all others (seed 001)',
  signed: true,
  defaults: CDEEPEX_DEFAULTS,
  perImageExtras: CDEEPEX_PER_IMAGE,
  parallel: 'images',
  run: (c, x, t, o, ctx) => run(c, x, t, o, 'cdeepex', ctx),
});

registerMethod<CdeepexOptions>({
  name: 'xgems',
  family: 'counterfactual',
  description: 'xGEMs: closest latent point where true and probe are equally likely, without CDeepEx\'s inequality constraints',
  signed: true,
  defaults: { ...CDEEPEX_DEFAULTS, constraints: false },
  perImageExtras: CDEEPEX_PER_IMAGE,
  parallel: 'images',
  run: (c, x, t, o, ctx) => run(c, x, t, o, 'xgems', ctx),
});
