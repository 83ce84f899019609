/**
 * Shared by max-sensitivity and avg-sensitivity (Yeh et al. 2019): the method is run again on
 * `samples` seeded copies of each image with uniform noise in an L∞ ball of radius r (clipped to the
 * input domain), in chunks of images (the method batches inside each chunk). Per copy: the relative
 * change ‖A(x') − A(x)‖ / ‖A(x)‖ and the local Lipschitz quotient ‖A(x') − A(x)‖ / ‖x' − x‖
 * (Alvarez-Melis & Jaakkola 2018).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MetricContext } from './registry.js';
import { explainInChunks, metricRng, rowNorms } from './common.js';
import { finiteNumber, positiveInt } from '../attribution/math.js';
import { batchSizeFor } from '../engine/memory.js';

export interface SensitivityOptions {
  /** Noisy copies per image. */
  samples: number;
  /** Radius of the uniform L∞ noise, as a fraction of the input range. */
  radius: number;
  /** Images per call of the method (null: what the memory budget allows for gradients, at most 32). */
  explainBatch: number | null;
  seed: number;
}

export const SENSITIVITY_DEFAULTS: SensitivityOptions = { samples: 10, radius: 0.02, explainBatch: null, seed: 0 };

export async function sensitivities(ctx: MetricContext, o: SensitivityOptions): Promise<{ relative: number[][]; lipschitz: number[][] }> {
  const samples = positiveInt('samples', o.samples);
  const { low, high } = ctx.classifier.domain;
  const r = finiteNumber('radius', o.radius, 0) * (high - low);
  const [n, h, w, c] = ctx.x.shape;
  const rows = n * samples;
  const rng = metricRng(o.seed);
  const noise = new Float32Array(rows * h * w * c);
  for (let k = 0; k < noise.length; k++) noise[k] = (2 * rng() - 1) * r;
  const idx = tf.tensor1d(Int32Array.from({ length: rows }, (_, k) => Math.floor(k / samples)), 'int32');
  const base = tf.gather(ctx.x, idx);
  const xp = tf.tidy(() => tf.clipByValue(tf.add(base, tf.tensor4d(noise, [rows, h, w, c])), low, high) as tf.Tensor4D);
  const batch = o.explainBatch == null ? batchSizeFor(ctx.classifier, 'gradient', 32) : positiveInt('explainBatch', o.explainBatch);
  const targets = Array.from({ length: rows }, (_, k) => ctx.targets[Math.floor(k / samples)]);
  let ap: tf.Tensor4D | undefined;
  try {
    ap = await explainInChunks(ctx.explain as never, ctx.classifier, xp, targets, batch);
    const a0 = tf.gather(ctx.attribution, idx);
    const diff = tf.sub(ap, a0);
    const dx = tf.sub(xp, base);
    const [dn, an, xn] = await Promise.all([rowNorms(diff), rowNorms(a0), rowNorms(dx)]);
    tf.dispose([a0, diff, dx]);
    const relative: number[][] = [];
    const lipschitz: number[][] = [];
    for (let i = 0; i < n; i++) {
      relative.push([]);
      lipschitz.push([]);
      for (let s = 0; s < samples; s++) {
        const k = i * samples + s;
        relative[i].push(an[k] > 0 ? dn[k] / an[k] : dn[k] > 0 ? Infinity : 0);
        lipschitz[i].push(xn[k] > 0 ? dn[k] / xn[k] : 0);
      }
    }
    return { relative, lipschitz };
  } finally {
    tf.dispose([idx, base, xp]);
    ap?.dispose();
  }
}
