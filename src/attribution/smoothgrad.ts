/**
 * `smoothgrad` (Smilkov et al. 2017; Captum NoiseTunnel): average a registered attribution method
 * over noisy copies x + ε, ε ~ N(0, σ²), σ = noiseLevel · (high − low) of the classifier's input range.
 * Variants: plain (mean of the maps), squared (mean of squared maps), vargrad (variance of the maps).
 * Noisy copies of the whole batch are evaluated together, at most `batchSize` images per call of the
 * base method (fewer when the memory budget says so). Sample k's noise comes from its own seed (the
 * k-th draw of the seed's generator), so the result does not depend on how samples are batched.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getMethod, registerMethod } from '../core/registry.js';
import { OptionError } from '../core/errors.js';
import { createRng, nextSeed } from '../util/random.js';
import { batchSizeFor } from '../engine/memory.js';
import { chunks, finiteNumber, oneOf, positiveInt, tileTargets } from './math.js';

export interface SmoothGradOptions {
  /** Base method: any registered attribution method computed from gradients (default 'gradient'). */
  method: string;
  /** Options for the base method. */
  methodOptions: Record<string, unknown>;
  /** Noise standard deviation as a fraction of the input range (high − low). */
  noiseLevel: number;
  samples: number;
  variant: 'plain' | 'squared' | 'vargrad';
  seed: number;
  /** Noisy images per call of the base method, at most. */
  batchSize: number;
}

const NOT_WRAPPABLE = new Set(['smoothgrad', 'occlusion', 'lime', 'prediction-difference']);

registerMethod<SmoothGradOptions>({
  name: 'smoothgrad',
  family: 'attribution',
  description: 'SmoothGrad: a gradient method averaged over noisy copies of the input (plain, squared, VarGrad)',
  signed: true,
  defaults: { method: 'gradient', methodOptions: {}, noiseLevel: 0.15, samples: 25, variant: 'plain', seed: 0, batchSize: 64 },
  async run(classifier, x, targets, options, context) {
    if (typeof options.method !== 'string' || NOT_WRAPPABLE.has(options.method)) {
      throw new OptionError(`expected option method to name a gradient-type attribution method; got ${JSON.stringify(options.method)}`);
    }
    const base = getMethod(options.method);
    if (base.family !== 'attribution' && base.family !== 'propagation') {
      throw new OptionError(`expected option method to name an attribution method; "${options.method}" is a ${base.family} method`);
    }
    const why = base.requires?.(classifier);
    if (why) throw new OptionError(`base method "${options.method}" cannot run on classifier "${classifier.name}": ${why}`);
    const baseOptions = { ...base.defaults, ...(options.methodOptions ?? {}) };
    const variant = oneOf('variant', options.variant, ['plain', 'squared', 'vargrad'] as const);
    const samples = positiveInt('samples', options.samples);
    const noise = finiteNumber('noiseLevel', options.noiseLevel, 0);
    const batchSize = batchSizeFor(classifier, 'gradient', positiveInt('batchSize', options.batchSize));
    const sigma = noise * (classifier.domain.high - classifier.domain.low);
    const rng = createRng(Number(options.seed) || 0);
    const sampleSeeds = Array.from({ length: samples }, () => nextSeed(rng));
    const n = x.shape[0];
    // Samples per base call: whole copies of the batch when they fit, else one copy in image chunks.
    const perCall = Math.max(1, Math.floor(batchSize / n));
    let sum = tf.zerosLike(x);
    let sumSq = tf.zerosLike(x);
    let done = 0;
    for (const [s0, s] of chunks(samples, perCall)) {
      const noisy = tf.tidy(() => {
        const copies = Array.from({ length: s }, (_, j) => (sigma > 0 ? tf.add(x, tf.randomNormal(x.shape, 0, sigma, 'float32', sampleSeeds[s0 + j])) : x));
        return copies.length === 1 ? tf.clone(copies[0]) : tf.concat(copies, 0);
      }) as tf.Tensor4D;
      const tg = tileTargets(targets, s);
      const maps: tf.Tensor4D[] = [];
      for (const [b0, bc] of chunks(s * n, batchSize)) {
        const xs = bc === s * n ? noisy : (tf.slice(noisy, [b0, 0, 0, 0], [bc, -1, -1, -1]) as tf.Tensor4D);
        const r = await base.run(classifier, xs, tg.slice(b0, b0 + bc), baseOptions, {});
        maps.push(r.attribution);
        if (r.logitsAfter) r.logitsAfter.dispose();
        disposeExtras(r.extras);
        if (xs !== noisy) xs.dispose();
      }
      noisy.dispose();
      const [ns, nq] = tf.tidy(() => {
        const all = maps.length === 1 ? maps[0] : tf.concat(maps, 0);
        const a = tf.reshape(all, [s, ...x.shape]);
        return [tf.add(sum, tf.sum(a, 0)), tf.add(sumSq, tf.sum(tf.square(a), 0))];
      });
      tf.dispose(maps);
      tf.dispose([sum, sumSq]);
      sum = ns as tf.Tensor4D;
      sumSq = nq as tf.Tensor4D;
      done += s;
      context.progress?.(done / samples, 'smoothgrad');
    }
    const attribution = tf.tidy(() => {
      const mean = tf.div(sum, samples);
      const meanSq = tf.div(sumSq, samples);
      if (variant === 'plain') return mean as tf.Tensor4D;
      if (variant === 'squared') return meanSq as tf.Tensor4D;
      return tf.relu(tf.sub(meanSq, tf.square(mean))) as tf.Tensor4D;
    });
    tf.dispose([sum, sumSq]);
    return { attribution, extras: { baseMethod: options.method, sigma } };
  },
});

function disposeExtras(extras: Record<string, unknown> | undefined): void {
  if (!extras) return;
  const visit = (v: unknown) => {
    if (v instanceof tf.Tensor) {
      if (!v.isDisposed) v.dispose();
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) Object.values(v).forEach(visit);
  };
  visit(extras);
}
