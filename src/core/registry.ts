/**
 * The method registry: stable names → functions (classifier, input batch, targets, options) →
 * attribution. `explain` wraps every method the same way (input validation, target resolution,
 * timing, provenance), so the CLI, report, benchmarks and tests reach all methods alike.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from './classifier.js';
import { disposeExplanation, type Explanation } from './explanation.js';
import { OptionError, UnknownMethodError } from './errors.js';
import { resolveTargets, type TargetSpec } from './target.js';
import { assertFits, batchSizeFor, withMemoryBudget, type MemoryKind } from '../engine/memory.js';
import { guardBackend } from '../engine/recovery.js';
import { withWorkers } from '../engine/pool/settings.js';
import { explainAcrossWorkers, imageSplit } from '../engine/pool/images.js';

export type MethodFamily = 'attribution' | 'propagation' | 'counterfactual' | 'interpretation' | 'robustness';

/** What a method computes; `explain` turns it into an Explanation. */
export interface MethodResult {
  attribution: tf.Tensor4D;
  extras?: Record<string, unknown>;
  logitsAfter?: tf.Tensor2D;
}

export interface MethodContext {
  /** Report progress of long work as a fraction in [0, 1]. */
  progress?: (fraction: number, label?: string) => void;
}

export interface MethodDefinition<O extends object = Record<string, unknown>> {
  name: string;
  family: MethodFamily;
  /** One line for `glasswing methods`. */
  description: string;
  /** Whether the attribution is signed (diverging colour map) or a magnitude. */
  signed: boolean;
  /** Default options; the user's options are merged over them. */
  defaults: O;
  /**
   * What one sample costs the method at least: 'gradient' (default: logits and input gradient),
   * 'forward' (logits only) or 'none' (no classifier evaluation per sample worth checking).
   * `explain` fails with MemoryBudgetError before any work when not even one sample fits.
   */
  memory?: MemoryKind | 'none';
  /**
   * Set when the method treats each image on its own (its result for an image does not depend on the
   * other images of the batch): `explain` then runs it on chunks of images that fit the memory
   * budget. Lists the extras that hold one entry per image (arrays or tensors, concatenated across
   * chunks); other extras are taken from the first chunk.
   */
  perImageExtras?: string[];
  /**
   * How a worker pool (docs/parallel.md) splits this method's work. 'images': its result for an image
   * does not depend on the other images, so `explain` runs sub-batches on the pool's threads and
   * concatenates them (per-image extras as in perImageExtras). Only for deterministic methods, or
   * seeded ones whose draws do not depend on the image's place in the batch. 'chunks': the method
   * splits its own sampling loop with mapChunks (engine/pool/map.ts); `explain` leaves the batch
   * whole. Unset: the table in engine/pool/images.ts (gradient family, Grad-CAM, DeepLIFT), else the
   * method runs in the calling thread.
   */
  parallel?: 'images' | 'chunks';
  /**
   * With parallel 'images': options that hold one entry per image (a tensor [N,…] or an array of N,
   * e.g. a baseline per image), sliced with the batch.
   */
  perImageOptions?: string[];
  /** Return why the method cannot run on this classifier, or undefined when it can. */
  requires?: (classifier: Classifier) => string | undefined;
  run(classifier: Classifier, x: tf.Tensor4D, targets: number[], options: O, context: MethodContext): MethodResult | Promise<MethodResult>;
}

const methods = new Map<string, MethodDefinition<any>>();

export function registerMethod<O extends object>(def: MethodDefinition<O>): void {
  if (methods.has(def.name)) throw new Error(`method "${def.name}" is already registered`);
  methods.set(def.name, def);
}

export function getMethod(name: string): MethodDefinition<any> {
  const m = methods.get(name);
  if (!m) {
    throw new UnknownMethodError(`expected one of the registered methods (${[...methods.keys()].sort().join(', ')}); got "${name}"`);
  }
  return m;
}

export function listMethods(): MethodDefinition<any>[] {
  return [...methods.values()].sort((a, b) => a.family.localeCompare(b.family) || a.name.localeCompare(b.name));
}

/** Whether `method` can run on this classifier. */
export function methodSupports(name: string, classifier: Classifier): boolean {
  return getMethod(name).requires?.(classifier) === undefined;
}

export interface ExplainOptions {
  target?: TargetSpec;
  /** Method options, merged over the method's defaults. */
  options?: Record<string, unknown>;
  context?: MethodContext;
  /** Skip the input range check (e.g. for adversarial inputs slightly outside). Default false. */
  skipRangeCheck?: boolean;
  /**
   * Memory budget of this call, in bytes or as a size such as '512MB' (default: the global budget,
   * see setMemoryBudget). Internal batches are sized to fit it.
   */
  memoryBudget?: number | string;
  /**
   * Threads that compute this call: the calling thread plus workers − 1 pool workers (default:
   * setWorkers, else GLASSWING_WORKERS, else the number of cores). 1 runs in the calling thread only.
   * Small work stays in the calling thread whatever this says (see docs/parallel.md).
   */
  workers?: number;
}

/**
 * Join results computed on consecutive sub-batches of images: attribution and logitsAfter
 * concatenated, `perImage` extras concatenated (tensors along axis 0, arrays flattened one level),
 * other extras taken from the first part. Takes ownership of the parts.
 */
export function mergeImageParts(perImageExtras: readonly string[], parts: MethodResult[]): MethodResult {
  if (parts.length === 1) return parts[0];
  try {
    const perImage = new Set(perImageExtras);
    const extras: Record<string, unknown> = {};
    for (const key of Object.keys(parts[0].extras ?? {})) {
      const values = parts.map((p) => p.extras?.[key]);
      if (!perImage.has(key)) extras[key] = values[0];
      else if (values.every((v) => v instanceof tf.Tensor)) extras[key] = tf.concat(values as tf.Tensor[], 0);
      else if (values.every(Array.isArray)) extras[key] = (values as unknown[][]).flat(1);
      else extras[key] = values[0];
    }
    return {
      attribution: tf.concat(parts.map((p) => p.attribution), 0),
      logitsAfter: parts.every((p) => p.logitsAfter) ? tf.concat(parts.map((p) => p.logitsAfter!), 0) : undefined,
      extras,
    };
  } finally {
    // Everything the parts returned is copied into the merged result (or was the first part's and kept).
    parts.forEach((p, i) => {
      p.attribution.dispose();
      p.logitsAfter?.dispose();
      for (const [key, v] of Object.entries(p.extras ?? {})) {
        const kept = i === 0 && !perImageExtras.includes(key);
        if (!kept && v instanceof tf.Tensor) v.dispose();
      }
    });
  }
}

/** Run a method, in chunks of images that fit the memory budget when it declares perImageExtras. */
export async function runMethod(def: MethodDefinition<any>, classifier: Classifier, x: tf.Tensor4D, targets: number[], options: object, context: MethodContext): Promise<MethodResult> {
  const n = x.shape[0];
  const bs = def.perImageExtras && def.memory !== 'none' ? batchSizeFor(classifier, def.memory ?? 'gradient', n) : n;
  if (bs >= n) return def.run(classifier, x, targets, options, context);
  const parts: MethodResult[] = [];
  try {
    for (let s = 0; s < n; s += bs) {
      const c = Math.min(bs, n - s);
      const xs = tf.slice(x, s, c);
      try {
        parts.push(await def.run(classifier, xs, targets.slice(s, s + c), options, {
          progress: context.progress ? (f, label) => context.progress!((s + f * c) / n, label) : undefined,
        }));
      } finally {
        xs.dispose();
      }
    }
  } catch (err) {
    for (const p of parts) {
      disposeExplanation({ attribution: p.attribution, extras: p.extras ?? {} });
      p.logitsAfter?.dispose();
    }
    throw err;
  }
  return mergeImageParts(def.perImageExtras!, parts);
}

/** Logits of x as a flat Float32Array, in batches that fit the memory budget. */
export async function flatLogitsInBatches(classifier: Classifier, x: tf.Tensor4D): Promise<Float32Array> {
  const n = x.shape[0];
  const k = classifier.numClasses;
  const bs = batchSizeFor(classifier, 'forward');
  const out = new Float32Array(n * k);
  for (let s = 0; s < n; s += bs) {
    const c = Math.min(bs, n - s);
    const t = tf.tidy(() => classifier.logits(c === n ? x : tf.slice(x, [s, 0, 0, 0], [c, -1, -1, -1])));
    out.set((await t.data()) as Float32Array, s * k);
    t.dispose();
  }
  return out;
}

/**
 * Run a registered method on a batch.
 *
 * @example
 * const e = await explain('gradient', classifier, images, { target: 'predicted' });
 * console.log(e.attribution.shape, e.timeMs); e.dispose();
 */
export async function explain(name: string, classifier: Classifier, x: tf.Tensor4D, opts: ExplainOptions = {}): Promise<Explanation> {
  return withWorkers(opts.workers, () =>
    withMemoryBudget(opts.memoryBudget, () => guardBackend(`method "${name}"`, [classifier], () => explainGuarded(name, classifier, x, opts))));
}

async function explainGuarded(name: string, classifier: Classifier, x: tf.Tensor4D, opts: ExplainOptions): Promise<Explanation> {
  const def = getMethod(name);
  const why = def.requires?.(classifier);
  if (why) throw new OptionError(`method "${name}" cannot run on classifier "${classifier.name}": ${why}`);
  classifier.validateInput(x, { checkRange: !opts.skipRangeCheck });
  const options = { ...def.defaults, ...(opts.options ?? {}) };
  for (const key of Object.keys(opts.options ?? {})) {
    if (!(key in def.defaults)) {
      throw new OptionError(`method "${name}" has options ${Object.keys(def.defaults).join(', ') || '(none)'}; got unknown option "${key}"`);
    }
  }
  // Not even one sample fits: fail before any work (the footprint is measured on one sample once).
  if (def.memory !== 'none') assertFits(classifier, def.memory ?? 'gradient');
  const n = x.shape[0];
  const k = classifier.numClasses;
  const spec = opts.target ?? 'predicted';
  // Across the pool's threads: each sub-batch's logits and targets are computed where it is explained.
  const perImage = imageSplit(def);
  const across = perImage ? await explainAcrossWorkers(def, perImage, classifier, x, spec, options, opts.context ?? {}) : undefined;
  let logitsFlat: Float32Array;
  let targets: number[];
  let result: MethodResult;
  let timeMs: number;
  if (across) {
    ({ logitsFlat, targets, result, timeMs } = across);
  } else {
    logitsFlat = await flatLogitsInBatches(classifier, x);
    targets = resolveTargets(spec, logitsFlat, n, k, classifier.classNames);
    const start = performance.now();
    result = await runMethod(def, classifier, x, targets, options, opts.context ?? {});
    // Reading one value waits for the backend so the time covers the computation, not just its dispatch.
    await result.attribution.data();
    timeMs = performance.now() - start;
  }
  const logits = Array.from({ length: n }, (_, i) => Array.from(logitsFlat.slice(i * k, (i + 1) * k)));

  let logitsAfter: number[][] | undefined;
  if (result.logitsAfter) {
    logitsAfter = (await result.logitsAfter.array()) as number[][];
    result.logitsAfter.dispose();
  }
  const explanation: Explanation = {
    method: name,
    attribution: result.attribution,
    options,
    target: targets,
    logits,
    logitsAfter,
    timeMs,
    extras: result.extras ?? {},
    dispose() {
      disposeExplanation(this);
    },
  };
  return explanation;
}
