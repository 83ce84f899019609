/**
 * Infidelity (Yeh et al. 2019): E_I[(Iᵀ·A − (f(x) − f(x − I)))²] over seeded Gaussian
 * perturbations I — how badly the attribution, read as a linear model of the score, predicts the
 * effect of random perturbations. With `normalize` (Yeh et al.'s released code) the attribution is
 * first scaled by the optimal β = E[IᵀA·Δ] / E[(IᵀA)²], so maps of any scale compare; the score is
 * then divided by E[Δ²] (0: perfect, 1: no better than a zero map). Lower is better.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMetric } from './registry.js';
import { metricRng, gaussian, scoreOutput, scoresOf } from './common.js';
import { finiteNumber, positiveInt } from '../attribution/math.js';
import { batchSizeFor } from '../engine/memory.js';
import { targetMask } from '../core/target.js';

export interface InfidelityOptions {
  /** Perturbations per image. */
  samples: number;
  /** Standard deviation of the Gaussian perturbation, as a fraction of the input range. */
  noiseStd: number;
  /** Scale the attribution optimally first and divide by E[Δ²] (scale-free). */
  normalize: boolean;
  output: 'probability' | 'logit';
  seed: number;
}

registerMetric<InfidelityOptions>({
  name: 'infidelity',
  family: 'faithfulness',
  description: 'E[(Iᵀ·A − (f(x) − f(x − I)))²] over seeded Gaussian perturbations I (Yeh et al. 2019); optimally scaled',
  higherIsBetter: false,
  reexplains: false,
  defaults: { samples: 64, noiseStd: 0.1, normalize: true, output: 'logit', seed: 0 },
  async run(ctx, o) {
    const samples = positiveInt('samples', o.samples);
    const std = finiteNumber('noiseStd', o.noiseStd, 0) * (ctx.classifier.domain.high - ctx.classifier.domain.low);
    const output = scoreOutput(o.output);
    const { classifier, x, targets } = ctx;
    const [n, h, w, c] = x.shape;
    const size = h * w * c;
    const base = await scoresOf(classifier, x, targets, output);
    const rng = metricRng(o.seed);
    const rows = n * samples;
    const dot = new Float64Array(rows);
    const delta = new Float64Array(rows);
    const bs = batchSizeFor(classifier, 'forward', 256);
    for (let s = 0; s < rows; s += bs) {
      const cnt = Math.min(bs, rows - s);
      const noise = new Float32Array(cnt * size);
      for (let k = 0; k < noise.length; k++) noise[k] = std * gaussian(rng);
      const idx = Int32Array.from({ length: cnt }, (_, r) => Math.floor((s + r) / samples));
      const ts = Array.from(idx, (i) => targets[i]);
      const [d, sc] = tf.tidy(() => {
        const ii = tf.tensor1d(idx, 'int32');
        const noiseT = tf.tensor4d(noise, [cnt, h, w, c]);
        const a = tf.gather(ctx.attribution, ii);
        const logits = classifier.logits(tf.sub(tf.gather(x, ii), noiseT));
        const v = output === 'probability' ? tf.softmax(logits) : logits;
        return [tf.sum(tf.mul(noiseT, a), [1, 2, 3]), tf.sum(tf.mul(v, targetMask(ts, classifier.numClasses)), 1)];
      });
      dot.set((await d.data()) as Float32Array, s);
      const sv = (await sc.data()) as Float32Array;
      for (let r = 0; r < cnt; r++) delta[s + r] = base[idx[r]] - sv[r];
      tf.dispose([d, sc]);
      ctx.progress?.((s + cnt) / rows);
    }
    const beta: number[] = [];
    const scores = Array.from({ length: n }, (_, i) => {
      let sdd = 0;
      let sdy = 0;
      let syy = 0;
      for (let k = i * samples; k < (i + 1) * samples; k++) {
        sdd += dot[k] * dot[k];
        sdy += dot[k] * delta[k];
        syy += delta[k] * delta[k];
      }
      const b = o.normalize ? (sdd > 0 ? sdy / sdd : 0) : 1;
      beta.push(b);
      let err = 0;
      for (let k = i * samples; k < (i + 1) * samples; k++) err += (b * dot[k] - delta[k]) ** 2;
      err /= samples;
      return o.normalize ? (syy > 0 ? err / (syy / samples) : 0) : err;
    });
    return { scores, extras: { beta } };
  },
});
