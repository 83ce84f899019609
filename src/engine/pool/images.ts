/**
 * The batch split: a method whose result for an image does not depend on the other images runs on
 * sub-batches, one per chunk, across the pool's threads, and the parts are concatenated (for
 * single-pass methods: gradient, saliency, gradient × input, guided backprop, deconvnet, Grad-CAM,
 * guided Grad-CAM, the LRP family, DeepLIFT, …). Each chunk also computes its images' logits and
 * resolves their targets where it runs, so the forward pass that picks the targets is split too.
 *
 * Which methods: MethodDefinition.parallel === 'images' (with perImageExtras and perImageOptions),
 * else the table below. Only deterministic methods, or seeded ones whose draws do not depend on an
 * image's place in the batch: gradient-shap, kernel-shap and shapley-sampling draw over the whole
 * batch and would change with the split (found by the Captum-parity test), and feature-permutation
 * permutes features across the batch's images, so they stay whole.
 * Options holding one entry per image (a baseline tensor [N,H,W,C]) are sliced with the batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../core/classifier.js';
import { TargetError } from '../../core/errors.js';
import { disposeExplanation } from '../../core/explanation.js';
import { getMethod, flatLogitsInBatches, mergeImageParts, runMethod, type MethodContext, type MethodDefinition, type MethodResult } from '../../core/registry.js';
import { resolveTargets, type TargetSpec } from '../../core/target.js';
import { defineChunkKernel } from './kernels.js';
import { mapChunks } from './map.js';
import { chunkSizeFor, forwardMacs, planLanes } from './plan.js';
import { holdsFunction } from './wire.js';
import { decodeGenerators, shipGeneratorOptions, withoutGenerators } from './ship-generator.js';

/**
 * Methods split by images whose definitions declare no perImageExtras (so `explain` does not chunk
 * them by the memory budget on its own), with the extras and options to split. Methods that do
 * declare them say `parallel: 'images'` in their own registration.
 */
const IMAGE_SPLIT: Record<string, { extras?: string[]; batchOptions?: string[] }> = {
  gradient: {},
  'gradient-x-input': {},
  saliency: {},
  sensitivity: {},
  'guided-backprop': {},
  deconvnet: {},
  'grad-cam': { extras: ['raw'] },
  'guided-grad-cam': { extras: ['raw'] },
  deeplift: { extras: ['completenessError', 'scoreDifference'], batchOptions: ['baseline'] },
  'visual-backprop': { extras: ['conservationError', 'relevanceSum'] },
};

/**
 * Forward + gradient passes one image costs at least, for the per-image counterfactual and
 * robustness methods (from their options; lower bounds: images that finish early cost less than the
 * step limits say), so the lane plan sees that e.g. 4 MNIST images of DeepFool are ~100 gradients'
 * work, not 4. Methods not listed cost one pass per image.
 */
const IMAGE_PASSES: Record<string, (o: Record<string, any>) => number> = {
  deepfool: (o) => 2 * (o.candidates > 0 ? o.candidates : 10),
  geosal: (o) => 2 * (o.maxComparisons ?? 9),
  'geosal-signed': (o) => 2 * (o.maxComparisons ?? 9),
  fgsm: () => 3, // the prediction, one or two gradients, the logits after
  pgd: (o) => Math.max(1, o.steps ?? 40),
  lse: (o) => Math.max(1, Math.min(o.maxSteps ?? 500, 5)),
  lae: (o) => Math.max(1, Math.min(o.maxSteps ?? 500, 5)),
  cdeepex: (o) => Math.max(1, Math.min(o.outerSteps ?? 150, 10) * (o.innerSteps ?? 3)),
  xgems: (o) => Math.max(1, Math.min(o.outerSteps ?? 150, 10) * (o.innerSteps ?? 3)),
  // path integrals over a layer: one gradient per step
  'layer-integrated-gradients': (o) => Math.max(1, o.steps ?? 50),
  'layer-conductance': (o) => Math.max(1, o.steps ?? 50),
  'neuron-integrated-gradients': (o) => Math.max(1, o.steps ?? 50),
};

export interface ImageSplit {
  /** Extras with one entry per image (concatenated). */
  extras: readonly string[];
  /** Options with one entry per image (a tensor [N,…] or an array of N), sliced with the batch. */
  batchOptions: readonly string[];
}

/** How the method is split by images, or undefined when it is not (see the module comment). */
export function imageSplit(def: MethodDefinition<any>): ImageSplit | undefined {
  if (def.parallel === 'images') return { extras: def.perImageExtras ?? [], batchOptions: def.perImageOptions ?? [] };
  if (def.parallel === 'chunks') return undefined;
  const t = IMAGE_SPLIT[def.name];
  return t ? { extras: t.extras ?? [], batchOptions: t.batchOptions ?? [] } : undefined;
}

/** Whether an option value holds one entry per image of a batch of n (n > 1). */
function perImage(v: unknown, n: number): boolean {
  return n > 1 && ((v instanceof tf.Tensor && v.rank >= 1 && v.shape[0] === n) || (Array.isArray(v) && v.length === n));
}

/** The per-image options of images s..s+c, sliced (tensor slices are pushed to `made`). */
function batchOptionsFor(options: Record<string, unknown>, keys: readonly string[], n: number, s: number, c: number, made: tf.Tensor[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const v = options[key];
    if (!perImage(v, n)) continue;
    if (v instanceof tf.Tensor) {
      const part = tf.slice(v, s, c);
      made.push(part);
      out[key] = part;
    } else out[key] = (v as unknown[]).slice(s, s + c);
  }
  return out;
}

interface ImageShared {
  method: string;
  options: Record<string, unknown>;
}

interface ImagePayload {
  x: tf.Tensor4D;
  /** Per-image options sliced to the sub-batch, over the shared options. */
  batchOptions: Record<string, unknown>;
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
  // generators in the options arrive as keys (plus the model the first time): ship-generator.ts
  const r = await runMethod(def, classifier, payload.x, targets, { ...decodeGenerators(shared.options), ...payload.batchOptions }, {});
  return { ...r, logits, targets };
});

/**
 * Explain across the pool when the plan gives more than one lane; undefined when the call stays in
 * the calling thread (explain then takes its usual path).
 */
export async function explainAcrossWorkers(
  def: MethodDefinition<any>,
  split: ImageSplit,
  classifier: Classifier,
  x: tf.Tensor4D,
  spec: TargetSpec,
  options: Record<string, unknown>,
  context: MethodContext,
): Promise<{ result: MethodResult; logitsFlat: Float32Array; targets: number[]; timeMs: number } | undefined> {
  const n = x.shape[0];
  // options holding a function (a callback) cannot be sent to another thread (generators are shipped: ship-generator.ts)
  if (n < 2 || holdsFunction(withoutGenerators(options))) return undefined;
  const passes = IMAGE_PASSES[def.name]?.(options) ?? 1;
  const plan = await planLanes(classifier, n, passes > 1 ? { macs: forwardMacs(classifier) * 3 * passes } : def.memory === 'forward' ? 'forward' : 'gradient');
  if (plan.lanes <= 1) return undefined;
  if (Array.isArray(spec) && spec.length !== n) throw new TargetError(`expected ${n} targets, one per image; got ${spec.length}`);
  // Iterative per-image methods (passes > 1) run one sub-batch per lane: their many small steps cost
  // per call, not per image, on small images, so halving the sub-batch would nearly double the work.
  const size = passes > 1 ? Math.ceil(n / plan.lanes) : chunkSizeFor(n, n, plan.lanes);
  const count = Math.ceil(n / size);
  const k = classifier.numClasses;
  const start = performance.now();
  const dispatch = async (shippedOptions: Record<string, unknown>) => {
    const logitsFlat = new Float32Array(n * k);
    const targets: number[] = new Array(n);
    const parts: MethodResult[] = [];
    const slices: tf.Tensor[] = [];
    // per-image options go with their chunk; the shared copy does not carry them
    const sharedOptions = { ...shippedOptions };
    for (const key of split.batchOptions) if (perImage(options[key], n)) delete sharedOptions[key];
    try {
      await mapChunks(classifier, imageKernel, {
        lanes: plan,
        shared: { method: def.name, options: sharedOptions },
        count,
        payload: (i) => {
          const s = i * size;
          const c = Math.min(size, n - s);
          const xs = tf.slice(x, s, c);
          slices.push(xs);
          return { x: xs, batchOptions: batchOptionsFor(options, split.batchOptions, n, s, c, slices), target: Array.isArray(spec) ? spec.slice(s, s + c) : spec };
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
    return { logitsFlat, targets, parts };
  };
  // Generator objects (the latent methods' decoders) go by key, once per worker; one that cannot be
  // shipped (a user's own decode function) keeps the call in the calling thread.
  const shipped = await shipGeneratorOptions(options, classifier, def.name, dispatch);
  if (!shipped) return undefined;
  const { logitsFlat, targets, parts } = shipped;
  const result = mergeImageParts(split.extras, parts);
  await result.attribution.data();
  return { result, logitsFlat, targets, timeMs: performance.now() - start };
}
