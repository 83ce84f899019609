/**
 * `contrast` (seed 001 §4.1): makes any single-class attribution method answer "why true and not
 * probe?". With A_t and A_p the method's maps for the true and the probe class, for every probe
 * weight w = 0.005, 0.010, …, 2 the map M_w = w·A_p − A_t is imposed on the input,
 *   x_w = clip(x + strength · M_w / max|M_w|),
 * and kept when it lowers p(true) and raises p(probe). The explanation is the average of the kept
 * (max-normalised) maps; zero when none is kept.
 *
 * Target: the probe class; with the default 'predicted', the second most likely class.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getMethod, registerMethod } from '../core/registry.js';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { trueAndProbe } from './cdeepex.js';
import { batchedLogits, batchSizeFor } from '../engine/memory.js';
import { defineChunkKernel } from '../engine/pool/kernels.js';
import { mapChunks } from '../engine/pool/map.js';
import { chunkSizeFor, planLanes } from '../engine/pool/plan.js';

export interface ContrastOptions {
  /** A registered single-class method (gradient, gradient-x-input, lime, grad-cam, lrp-…). Default 'gradient'. */
  method: string;
  /** Options for that method. */
  methodOptions: Record<string, unknown>;
  weightStart: number;
  weightEnd: number;
  weightStep: number;
  /** Size of the imposed change, as a fraction of the input range, at the map's strongest pixel. Default 0.5. */
  strength: number;
  /** Forward-pass batch size of the sweep, at most (fewer when the memory budget says so). Default 200. */
  batchSize: number;
}

export const CONTRAST_DEFAULTS: ContrastOptions = {
  method: 'gradient',
  methodOptions: {},
  weightStart: 0.005,
  weightEnd: 2,
  weightStep: 0.005,
  strength: 0.5,
  batchSize: 200,
};

interface SweepShared {
  x: tf.Tensor4D;
  /** The wrapped method's maps for the true and the probe class, [N,H,W,C]. */
  at: tf.Tensor4D;
  ap: tf.Tensor4D;
  trueClass: number[];
  probe: number[];
  /** Probabilities of the unchanged inputs, per image. */
  p0: number[][];
  weights: number[];
  span: number;
}

/** Image i, probe weights b0..b0+count. */
interface SweepChunk {
  i: number;
  b0: number;
  count: number;
}

/**
 * For image i and a run of probe weights: which weights' imposed maps lower p(true) and raise
 * p(probe), and the sum of those (max-normalised) maps, [1,H,W,C].
 */
const sweepChunk = defineChunkKernel<SweepShared, SweepChunk, { keep: boolean[]; partial: tf.Tensor }>('contrast/sweep', async (classifier, sh, { i, b0, count }) => {
  const ws = sh.weights.slice(b0, b0 + count);
  const at = tf.slice(sh.at, i, 1);
  const ap = tf.slice(sh.ap, i, 1);
  const xi = tf.slice(sh.x, i, 1);
  const wT = tf.tensor4d(ws, [ws.length, 1, 1, 1]);
  try {
    const normed = tf.tidy(() => {
      const m = tf.sub(tf.mul(wT, ap), at);
      const mx = tf.max(tf.abs(m), [1, 2, 3], true);
      return tf.div(m, tf.maximum(mx, 1e-12));
    });
    const probs = tf.tidy(() => tf.softmax(classifier.logits(tf.clipByValue(tf.add(xi, tf.mul(normed, sh.span)), classifier.domain.low, classifier.domain.high))));
    const pa = (await probs.array()) as number[][];
    probs.dispose();
    const t = sh.trueClass[i];
    const p = sh.probe[i];
    const keep = pa.map((q) => q[t] < sh.p0[i][t] && q[p] > sh.p0[i][p]);
    const keepT = tf.tensor4d(keep.map((k) => (k ? 1 : 0)), [ws.length, 1, 1, 1]);
    const partial = tf.tidy(() => tf.sum(tf.mul(normed, keepT), 0, true));
    tf.dispose([normed, keepT]);
    return { keep, partial };
  } finally {
    tf.dispose([at, ap, xi, wT]);
  }
});

export function sweepWeights(o: Pick<ContrastOptions, 'weightStart' | 'weightEnd' | 'weightStep'>): number[] {
  if (!(o.weightStep > 0) || !(o.weightEnd >= o.weightStart)) {
    throw new OptionError(`expected weightStep > 0 and weightEnd ≥ weightStart; got ${o.weightStart}..${o.weightEnd} step ${o.weightStep}`);
  }
  const n = Math.floor((o.weightEnd - o.weightStart) / o.weightStep + 1e-9) + 1;
  return Array.from({ length: n }, (_, i) => Number((o.weightStart + i * o.weightStep).toFixed(10)));
}

registerMethod<ContrastOptions>({
  name: 'contrast',
  memory: 'forward',
  parallel: 'chunks',
  family: 'counterfactual',
  description: 'contrastive sweep of any attribution method: average of w·A_probe − A_true maps that lower p(true) and raise p(probe) (seed 001 §4.1)',
  signed: true,
  defaults: CONTRAST_DEFAULTS,
  async run(classifier: Classifier, x, targets, o, context) {
    if (o.method === 'contrast') throw new OptionError('method "contrast" cannot wrap itself');
    const inner = getMethod(o.method);
    const innerOpts = { ...inner.defaults, ...o.methodOptions };
    const why = inner.requires?.(classifier);
    if (why) throw new OptionError(`method "contrast": wrapped method "${o.method}" cannot run on classifier "${classifier.name}": ${why}`);
    const weights = sweepWeights(o);
    const n = x.shape[0];
    const logits0 = batchedLogits(classifier, x);
    const sweepBatch = batchSizeFor(classifier, 'forward', o.batchSize);
    const probs0 = tf.softmax(logits0);
    const p0 = (await probs0.array()) as number[][];
    probs0.dispose();
    const { trueClass, probe } = trueAndProbe((await logits0.array()) as number[][], targets);
    logits0.dispose();
    const rt = await inner.run(classifier, x, trueClass, innerOpts, context);
    const rp = await inner.run(classifier, x, probe, innerOpts, context);
    const disposeExtras = (r: typeof rt) => {
      r.logitsAfter?.dispose();
      const visit = (v: unknown) => {
        if (v instanceof tf.Tensor) v.dispose();
        else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) Object.values(v).forEach(visit);
      };
      visit(r.extras);
    };
    disposeExtras(rt);
    disposeExtras(rp);
    const span = (classifier.domain.high - classifier.domain.low) * o.strength;
    const plan = await planLanes(classifier, n * weights.length, 'forward');
    const sb = chunkSizeFor(n * weights.length, sweepBatch, plan.lanes);
    const sweepChunks: SweepChunk[] = [];
    for (let i = 0; i < n; i++) for (let b = 0; b < weights.length; b += sb) sweepChunks.push({ i, b0: b, count: Math.min(sb, weights.length - b) });
    const sums: tf.Tensor[] = [];
    const keptWeights: number[][] = Array.from({ length: n }, () => []);
    try {
      await mapChunks(classifier, sweepChunk, {
        lanes: plan,
        shared: { x, at: rt.attribution, ap: rp.attribution, trueClass, probe, p0, weights, span },
        count: sweepChunks.length,
        payload: (k) => sweepChunks[k],
        onResult: (k, r) => {
          const { i, b0 } = sweepChunks[k];
          r.keep.forEach((kp, j) => kp && keptWeights[i].push(weights[b0 + j]));
          if (!sums[i]) sums[i] = tf.zerosLike(r.partial);
          const next = tf.add(sums[i], r.partial);
          tf.dispose([sums[i], r.partial]);
          sums[i] = next;
        },
        progress: context.progress ? (f) => context.progress!(f, 'contrast sweep') : undefined,
      });
    } catch (err) {
      tf.dispose([...sums, rt.attribution, rp.attribution]);
      throw err;
    }
    const maps = sums.map((sum, i) => tf.tidy(() => tf.squeeze(tf.div(sum, Math.max(keptWeights[i].length, 1)), [0]) as tf.Tensor3D));
    tf.dispose(sums);
    const kept = keptWeights.map((k) => k.length);
    tf.dispose([rt.attribution, rp.attribution]);
    const attribution = tf.stack(maps) as tf.Tensor4D;
    tf.dispose(maps);
    return { attribution, extras: { method: o.method, trueClass, probe, kept, keptWeights, weights: weights.length } };
  },
});
