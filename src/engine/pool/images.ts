/**
 * The batch split: a method whose result for an image does not depend on the other images runs on
 * sub-batches, one per chunk, across the pool's threads, and the parts are concatenated (for
 * single-pass methods: gradient, saliency, gradient × input, guided backprop, deconvnet, Grad-CAM,
 * guided Grad-CAM, the LRP family, DeepLIFT, …). Each chunk also computes its images' logits and
 * resolves their targets where it runs, so the forward pass that picks the targets is split too.
 *
 * Which methods: MethodDefinition.parallel === 'images'; else the table below (gradient-family
 * methods whose files predate the pool; they do their own internal batching and have no per-image
 * extras to declare, or only `raw`); else attribution/propagation methods that declare
 * perImageExtras (they already promise per-image independence to explain's memory chunking).
 * Counterfactual and robustness methods declare it themselves when they can be split.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../core/classifier.js';
import { TargetError } from '../../core/errors.js';
import { disposeExplanation } from '../../core/explanation.js';
import { getMethod, flatLogitsInBatches, mergeImageParts, runMethod, type MethodContext, type MethodDefinition, type MethodResult } from '../../core/registry.js';
import { resolveTargets, type TargetSpec } from '../../core/target.js';
import { defineChunkKernel } from './kernels.js';
import { mapChunks } from './map.js';
import { chunkSizeFor, planLanes } from './plan.js';
import { holdsFunction } from './wire.js';

/** Gradient-family methods split by images, with their per-image extras. */
const IMAGE_SPLIT: Record<string, string[]> = {
  gradient: [],
  'gradient-x-input': [],
  saliency: [],
  sensitivity: [],
  'guided-backprop': [],
  deconvnet: [],
  'grad-cam': ['raw'],
  'guided-grad-cam': ['raw'],
};

/** The per-image extras when the method is split by images, else undefined (see the module comment). */
export function imageSplit(def: MethodDefinition<any>): readonly string[] | undefined {
  if (def.parallel === 'chunks') return undefined;
  if (def.parallel === 'images') return def.perImageExtras ?? [];
  if (IMAGE_SPLIT[def.name]) return IMAGE_SPLIT[def.name];
  if (def.perImageExtras && (def.family === 'attribution' || def.family === 'propagation')) return def.perImageExtras;
  return undefined;
}

interface ImageShared {
  method: string;
  options: Record<string, unknown>;
}

interface ImagePayload {
  x: tf.Tensor4D;
  /** The sub-batch's targets: one spec, or one per image. */
  target: TargetSpec;
}

interface ImageResult extends MethodResult {
  logits: Float32Array;
  targets: number[];
}

const imageKernel = defineChunkKernel<ImageShared, ImagePayload, ImageResult>('explain/images', async (classifier, shared, payload) => {
  const def = getMethod(shared.method);
  const n = payload.x.shape[0];
  const logits = await flatLogitsInBatches(classifier, payload.x);
  const targets = resolveTargets(payload.target, logits, n, classifier.numClasses, classifier.classNames);
  const r = await runMethod(def, classifier, payload.x, targets, shared.options, {});
  return { ...r, logits, targets };
});

/**
 * Explain across the pool when the plan gives more than one lane; undefined when the call stays in
 * the calling thread (explain then takes its usual path).
 */
export async function explainAcrossWorkers(
  def: MethodDefinition<any>,
  perImageExtras: readonly string[],
  classifier: Classifier,
  x: tf.Tensor4D,
  spec: TargetSpec,
  options: Record<string, unknown>,
  context: MethodContext,
): Promise<{ result: MethodResult; logitsFlat: Float32Array; targets: number[]; timeMs: number } | undefined> {
  const n = x.shape[0];
  // options holding a function (a callback) cannot be sent to another thread
  if (n < 2 || holdsFunction(options)) return undefined;
  const plan = await planLanes(classifier, n, def.memory === 'forward' ? 'forward' : 'gradient');
  if (plan.lanes <= 1) return undefined;
  if (Array.isArray(spec) && spec.length !== n) throw new TargetError(`expected ${n} targets, one per image; got ${spec.length}`);
  const size = chunkSizeFor(n, n, plan.lanes);
  const count = Math.ceil(n / size);
  const k = classifier.numClasses;
  const logitsFlat = new Float32Array(n * k);
  const targets: number[] = new Array(n);
  const parts: MethodResult[] = [];
  const start = performance.now();
  const slices: tf.Tensor4D[] = [];
  try {
    await mapChunks(classifier, imageKernel, {
      lanes: plan.lanes,
      shared: { method: def.name, options },
      count,
      payload: (i) => {
        const s = i * size;
        const c = Math.min(size, n - s);
        const xs = tf.slice(x, s, c);
        slices.push(xs);
        return { x: xs, target: Array.isArray(spec) ? spec.slice(s, s + c) : spec };
      },
      onResult: (i, r) => {
        logitsFlat.set(r.logits, i * size * k);
        r.targets.forEach((t, j) => (targets[i * size + j] = t));
        parts.push({ attribution: r.attribution, extras: r.extras, logitsAfter: r.logitsAfter });
      },
      progress: context.progress ? (f) => context.progress!(f, def.name) : undefined,
    });
  } catch (err) {
    for (const p of parts) {
      disposeExplanation({ attribution: p.attribution, extras: p.extras ?? {} });
      p.logitsAfter?.dispose();
    }
    throw err;
  } finally {
    tf.dispose(slices);
  }
  const result = mergeImageParts(perImageExtras, parts);
  await result.attribution.data();
  return { result, logitsFlat, targets, timeMs: performance.now() - start };
}
