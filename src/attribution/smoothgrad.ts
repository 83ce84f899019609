/**
 * `smoothgrad` (Smilkov et al. 2017; Captum NoiseTunnel): average a registered attribution method
 * over noisy copies x + ε, ε ~ N(0, σ²), σ = noiseLevel · (high − low) of the classifier's input range.
 * Variants: plain (mean of the maps), squared (mean of squared maps), vargrad (variance of the maps).
 * Noisy copies of the whole batch are evaluated together, at most `batchSize` images per call of the
 * base method (fewer when the memory budget says so). Sample k's noise comes from its own seed (the
 * k-th draw of the seed's generator), so the result does not depend on how samples are batched —
 * nor on the number of pool threads, which evaluate the base calls of each group (engine/pool).
 */
import * as tf from '@tensorflow/tfjs-core';
import { getMethod, registerMethod } from '../core/registry.js';
import { OptionError } from '../core/errors.js';
import { createRng, nextSeed } from '../util/random.js';
import { batchSizeFor } from '../engine/memory.js';
import { chunks, finiteNumber, oneOf, positiveInt, tileTargets } from './math.js';
import { defineChunkKernel } from '../engine/pool/kernels.js';
import { mapChunks } from '../engine/pool/map.js';
import { chunkSizeFor, planLanes } from '../engine/pool/plan.js';

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

interface NoisyShared {
  x: tf.Tensor4D;
  sigma: number;
  sampleSeeds: number[];
  targets: number[];
  method: string;
  baseOptions: Record<string, unknown>;
}

/** Rows b0..b0+bc of the noisy copies of samples s0.. (sample-major: row j·N + i is image i of sample s0 + j). */
interface NoisyRows {
  s0: number;
  b0: number;
  bc: number;
}

/**
 * The base method's maps of some noisy copies, [bc,H,W,C]. Sample k's noise is drawn from its own
 * seed over the whole batch's shape, as the caller's loop did, so the rows are the same images in
 * any thread.
 */
const noisyMaps = defineChunkKernel<NoisyShared, NoisyRows, tf.Tensor4D>('smoothgrad/maps', async (classifier, sh, { s0, b0, bc }) => {
  const { x, sigma } = sh;
  const n = x.shape[0];
  const j0 = Math.floor(b0 / n);
  const j1 = Math.floor((b0 + bc - 1) / n);
  const xs = tf.tidy(() => {
    const copies = Array.from({ length: j1 - j0 + 1 }, (_, d) => (sigma > 0 ? tf.add(x, tf.randomNormal(x.shape, 0, sigma, 'float32', sh.sampleSeeds[s0 + j0 + d])) : x));
    const noisy = copies.length === 1 ? tf.clone(copies[0]) : tf.concat(copies, 0);
    return (noisy.shape[0] === bc ? noisy : tf.slice(noisy, [b0 - j0 * n, 0, 0, 0], [bc, -1, -1, -1])) as tf.Tensor4D;
  });
  try {
    const tg = tileTargets(sh.targets, j1 - j0 + 1).slice(b0 - j0 * n, b0 - j0 * n + bc);
    const r = await getMethod(sh.method).run(classifier, xs, tg, sh.baseOptions, {});
    if (r.logitsAfter) r.logitsAfter.dispose();
    disposeExtras(r.extras);
    return r.attribution;
  } finally {
    xs.dispose();
  }
});

registerMethod<SmoothGradOptions>({
  name: 'smoothgrad',
  family: 'attribution',
  description: 'SmoothGrad: a gradient method averaged over noisy copies of the input (plain, squared, VarGrad)',
  signed: true,
  parallel: 'chunks',
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
    // With a pool, each group's base calls are spread over its threads (smaller calls, same groups:
    // the maps are reduced exactly as in one thread).
    const plan = await planLanes(classifier, samples * n, 'gradient');
    let sum = tf.zerosLike(x);
    let sumSq = tf.zerosLike(x);
    let done = 0;
    const shared: NoisyShared = { x, sigma, sampleSeeds, targets, method: options.method, baseOptions };
    try {
      for (const [s0, s] of chunks(samples, perCall)) {
        const rows = chunks(s * n, chunkSizeFor(s * n, batchSize, plan.lanes));
        const maps: tf.Tensor4D[] = [];
        try {
          await mapChunks(classifier, noisyMaps, {
            lanes: plan, shared, count: rows.length,
            payload: (i) => ({ s0, b0: rows[i][0], bc: rows[i][1] }),
            onResult: (_, m) => maps.push(m),
          });
        } catch (err) {
          tf.dispose(maps);
          throw err;
        }
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
    } catch (err) {
      tf.dispose([sum, sumSq]);
      throw err;
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
