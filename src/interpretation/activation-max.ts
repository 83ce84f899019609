/**
 * Activation maximisation (seed 003 §3, Eq. 3.1; the Lucid/Lucent "feature visualisation" recipe):
 * find an input x that maximises an objective of the network, here
 *
 *   x* = argmax_x  objective(T(x)) − λ·‖x‖²/D − tv·TV(x) − blur·‖x − blur₃(x)‖²/D
 *
 * where the objective is a class's log-probability log p(c|x) (the seed's Eq. 3.1, default) or
 * logit, the mean activation of a channel of any named node (over its spatial positions), or one
 * unit of any node; T is an optional random transformation drawn afresh each step (jitter: a shift
 * by up to `jitter` pixels; a random scale from `scales`), which Lucid found necessary for
 * recognisable prototypes of large colour models; D is the number of input values, so λ, tv and blur
 * mean the same at 28² and 224². Ascent is Adam (Lucent's optimiser) in pixel space, each iterate
 * projected to the classifier's input domain when `clip` (default) is on.
 *
 * All randomness comes from `seed`: the noise start of image i from its own stream (so the result for
 * an image does not depend on which other images share the batch), the transformations from one
 * stream shared by every image. Images are optimised in batches that fit the memory budget.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { registerMethod } from '../core/registry.js';
import { batchSizeFor } from '../engine/memory.js';
import { createRng, gaussian, type Rng } from '../util/random.js';

/** What to maximise. */
export type ActivationObjective =
  /** A class: its log-probability (default, Eq. 3.1) or its logit. */
  | { class: number; score?: 'log-prob' | 'logit' }
  /** A channel of a node with a spatial output [h, w, c]: its activation averaged over positions. */
  | { layer: string; channel: number }
  /** One value of a node's output: a flat index, or [y, x, channel] for spatial nodes. */
  | { layer: string; unit: number | [number, number, number] };

export interface ActivationMaxOptions {
  /** Ascent steps. Default 256 (Lucent's default is 512; MNIST needs far fewer). */
  steps?: number;
  /** Adam step size, in input units. Default 0.05 (Lucent's). */
  learningRate?: number;
  /** λ of the ‖x‖²/D penalty (Eq. 3.1, per input value). Default 0.01. */
  lambda?: number;
  /** Weight of the anisotropic total variation Σ|∂x|+|∂y| / D. Default 0. */
  tv?: number;
  /** Weight of ‖x − blur₃(x)‖²/D (3×3 box blur of the interior): penalises high frequencies. Default 0. */
  blur?: number;
  /** Start: 'noise' (the domain mid-point plus Gaussian noise of sd 1% of the range), 'mean' (meanImage, else the mid-point), 'given' (the images passed in), or a tensor [N|1, h, w, c]. Default 'noise'. */
  start?: 'noise' | 'mean' | 'given' | tf.Tensor;
  /** Mean image [h, w, c] or [1, h, w, c] for start 'mean' (e.g. a dataset's mean). */
  meanImage?: tf.Tensor;
  /** Random shift of up to this many pixels each step (transformation robustness). Default 0. */
  jitter?: number;
  /** Random scale drawn from these factors each step, e.g. [0.95, 1, 1.05] (transformation robustness). Default [] (none). */
  scales?: number[];
  /** Project each iterate onto the classifier's input range. Default true. */
  clip?: boolean;
  /** Seed of the noise start and the transformations. Default 0. */
  seed?: number;
  /** Images optimised together, at most (fewer when the memory budget says so). Default 16. */
  batchSize?: number;
}

export interface ActivationMaxResult {
  /** The prototypes [N, h, w, c], in the input domain when clip is on. */
  prototypes: tf.Tensor4D;
  /** Per prototype, the maximised quantity (objective − penalties) at each step, under that step's transformation, before the step. */
  trace: number[][];
  /** Per prototype, the objective of the final prototype (untransformed). */
  objective: number[];
  /** Per prototype, the classifier's softmax probabilities of the final prototype. */
  probabilities: number[][];
  dispose(): void;
}

export const ACTIVATION_MAX_DEFAULTS = {
  steps: 256, learningRate: 0.05, lambda: 0.01, tv: 0, blur: 0, start: 'noise' as ActivationMaxOptions['start'],
  jitter: 0, scales: [] as number[], clip: true, seed: 0, batchSize: 16,
};

/** The objective's per-image value [N] for an input batch (inside a gradient tape). */
interface ObjectiveFn {
  fn: (x: tf.Tensor4D) => tf.Tensor1D;
  /** Constant tensors fn reads; the caller disposes them when done. */
  constants: tf.Tensor[];
}

function objectiveFn(classifier: Classifier, objectives: ActivationObjective[]): ObjectiveFn {
  const first = objectives[0];
  if ('class' in first) {
    for (const o of objectives) {
      if (!('class' in o)) throw new OptionError('expected every objective of one call to be of the same kind (class, channel or unit)');
      if (!Number.isInteger(o.class) || o.class < 0 || o.class >= classifier.numClasses) {
        throw new OptionError(`expected a class in 0..${classifier.numClasses - 1}; got ${o.class}`);
      }
      if (o.score !== undefined && o.score !== 'log-prob' && o.score !== 'logit') throw new OptionError(`expected score 'log-prob' or 'logit'; got ${String(o.score)}`);
    }
    const onehot = tf.tidy(() => tf.cast(tf.oneHot(objectives.map((o) => (o as { class: number }).class), classifier.numClasses), 'float32'));
    const mix = tf.tensor1d(objectives.map((o) => ((o as { score?: string }).score === 'logit' ? 1 : 0)));
    return { constants: [onehot, mix], fn: (x) => {
      const z = classifier.logits(x);
      const logit = tf.sum(tf.mul(z, onehot), 1);
      const logp = tf.sum(tf.mul(tf.logSoftmax(z), onehot), 1);
      return tf.add(tf.mul(logit, mix), tf.mul(logp, tf.sub(1, mix))) as tf.Tensor1D;
    } };
  }
  const layer = first.layer;
  for (const o of objectives) {
    if ('class' in o || o.layer !== layer) throw new OptionError('expected every objective of one call to read the same layer');
  }
  const node = classifier.node(layer);
  const shape = node.shape;
  const size = shape.reduce((a, b) => a * b, 1);
  const channels = shape[shape.length - 1];
  // One weight vector per image over the node's flattened output: the objective is their dot product.
  const weights = new Float32Array(objectives.length * size);
  objectives.forEach((o, i) => {
    if ('channel' in o) {
      if (shape.length !== 3) throw new OptionError(`expected a spatial layer [h, w, c] for a channel objective; layer "${layer}" has shape [${shape.join(', ')}]: use a unit`);
      if (!Number.isInteger(o.channel) || o.channel < 0 || o.channel >= channels) throw new OptionError(`expected a channel in 0..${channels - 1} of layer "${layer}"; got ${o.channel}`);
      const positions = size / channels;
      for (let p = 0; p < positions; p++) weights[i * size + p * channels + o.channel] = 1 / positions;
    } else {
      const u = (o as { unit: number | number[] }).unit;
      let flat: number;
      if (Array.isArray(u)) {
        if (shape.length !== 3 || u.length !== 3) throw new OptionError(`expected unit [y, x, channel] only for a spatial layer; layer "${layer}" has shape [${shape.join(', ')}]`);
        if (u.some((v, d) => !Number.isInteger(v) || v < 0 || v >= shape[d])) throw new OptionError(`expected unit [y, x, channel] within [${shape.join(', ')}]; got [${u.join(', ')}]`);
        flat = (u[0] * shape[1] + u[1]) * shape[2] + u[2];
      } else {
        if (!Number.isInteger(u) || u < 0 || u >= size) throw new OptionError(`expected a unit in 0..${size - 1} of layer "${layer}"; got ${u}`);
        flat = u;
      }
      weights[i * size + flat] = 1;
    }
  });
  const w = tf.tensor2d(weights, [objectives.length, size]);
  const split = classifier.split(layer);
  return { constants: [w], fn: (x) => {
    const a = split.head(x);
    return tf.sum(tf.mul(tf.reshape(a, [x.shape[0], size]), w), 1) as tf.Tensor1D;
  } };
}

/** The random transformation of one step: a shift by up to `jitter` pixels, then a scale (both differentiable). */
function transform(x: tf.Tensor4D, jitter: number, scales: number[], fill: number, rng: Rng): tf.Tensor4D {
  const [, h, w] = x.shape;
  let y = x;
  if (jitter > 0) {
    const dy = Math.floor(rng() * (2 * jitter + 1));
    const dx = Math.floor(rng() * (2 * jitter + 1));
    const padded = tf.pad(y, [[0, 0], [jitter, jitter], [jitter, jitter], [0, 0]], fill);
    y = tf.slice(padded, [0, dy, dx, 0], [-1, h, w, -1]);
  }
  if (scales.length > 0) {
    const s = scales[Math.floor(rng() * scales.length)];
    const sh = Math.max(1, Math.round(h * s));
    const sw = Math.max(1, Math.round(w * s));
    if (sh !== h || sw !== w) {
      const r = tf.image.resizeBilinear(y, [sh, sw]);
      // Crop the centre of a larger image; pad a smaller one with the fill value.
      const top = Math.floor((sh - h) / 2);
      const left = Math.floor((sw - w) / 2);
      y = sh >= h && sw >= w
        ? tf.slice(r, [0, top, left, 0], [-1, h, w, -1])
        : tf.pad(r, [[0, 0], [Math.floor((h - sh) / 2), h - sh - Math.floor((h - sh) / 2)], [Math.floor((w - sw) / 2), w - sw - Math.floor((w - sw) / 2)], [0, 0]], fill);
    }
  }
  return y;
}

/** Penalties of Eq. 3.1 and the smoothness regularisers, per image [N]. */
export function penalties(x: tf.Tensor4D, lambda: number, tvWeight: number, blurWeight: number): tf.Tensor1D {
  const [n, h, w, c] = x.shape;
  const d = h * w * c;
  let p: tf.Tensor = tf.mul(tf.sum(tf.square(tf.reshape(x, [n, d])), 1), lambda / d);
  if (tvWeight > 0 && h > 1 && w > 1) {
    const dyv = tf.abs(tf.sub(tf.slice(x, [0, 1, 0, 0], [-1, h - 1, -1, -1]), tf.slice(x, [0, 0, 0, 0], [-1, h - 1, -1, -1])));
    const dxv = tf.abs(tf.sub(tf.slice(x, [0, 0, 1, 0], [-1, -1, w - 1, -1]), tf.slice(x, [0, 0, 0, 0], [-1, -1, w - 1, -1])));
    p = tf.add(p, tf.mul(tf.add(tf.sum(dyv, [1, 2, 3]), tf.sum(dxv, [1, 2, 3])), tvWeight / d));
  }
  if (blurWeight > 0 && h > 2 && w > 2) {
    // 3×3 box blur of the interior from shifted slices (no conv gradient kernel needed).
    let acc: tf.Tensor | undefined;
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      const s = tf.slice(x, [0, i, j, 0], [-1, h - 2, w - 2, -1]);
      acc = acc ? tf.add(acc, s) : s;
    }
    const centre = tf.slice(x, [0, 1, 1, 0], [-1, h - 2, w - 2, -1]);
    p = tf.add(p, tf.mul(tf.sum(tf.square(tf.sub(centre, tf.div(acc!, 9))), [1, 2, 3]), blurWeight / d));
  }
  return p as tf.Tensor1D;
}

export function checkOptions(o: typeof ACTIVATION_MAX_DEFAULTS & ActivationMaxOptions, h: number, w: number): void {
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new OptionError(`expected steps a positive integer; got ${o.steps}`);
  if (!(o.learningRate > 0)) throw new OptionError(`expected learningRate > 0; got ${o.learningRate}`);
  for (const k of ['lambda', 'tv', 'blur'] as const) if (!(o[k] >= 0)) throw new OptionError(`expected ${k} ≥ 0; got ${o[k]}`);
  if (!Number.isInteger(o.jitter) || o.jitter < 0 || o.jitter >= Math.min(h, w)) throw new OptionError(`expected jitter an integer in 0..${Math.min(h, w) - 1}; got ${o.jitter}`);
  if (!Array.isArray(o.scales) || o.scales.some((s) => !(s > 0))) throw new OptionError(`expected scales a list of positive factors; got ${String(o.scales)}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new OptionError(`expected batchSize a positive integer; got ${o.batchSize}`);
  if (!Number.isFinite(o.seed)) throw new OptionError(`expected a finite seed; got ${o.seed}`);
}

/** The start images [N, h, w, c] (a new tensor). */
export function startImages(classifier: Classifier, n: number, o: typeof ACTIVATION_MAX_DEFAULTS & ActivationMaxOptions, given?: tf.Tensor4D): tf.Tensor4D {
  const [h, w, c] = classifier.inputShape;
  const { low, high } = classifier.domain;
  const mid = (low + high) / 2;
  const fromTensor = (t: tf.Tensor, what: string): tf.Tensor4D => {
    const t4 = t.rank === 3 ? tf.expandDims(t, 0) : t;
    if (t4.rank !== 4 || t4.shape[1] !== h || t4.shape[2] !== w || t4.shape[3] !== c || (t4.shape[0] !== 1 && t4.shape[0] !== n)) {
      throw new OptionError(`expected ${what} of shape [${h}, ${w}, ${c}] or [1|${n}, ${h}, ${w}, ${c}]; got [${t.shape.join(', ')}]`);
    }
    const out = tf.tidy(() => tf.cast(tf.broadcastTo(t4, [n, h, w, c]), 'float32') as tf.Tensor4D);
    if (t4 !== t) t4.dispose();
    return out;
  };
  if (o.start instanceof tf.Tensor) return fromTensor(o.start, 'a start tensor');
  if (o.start === 'given') {
    if (!given) throw new OptionError("expected images to start from with start 'given'; got none");
    return given.clone();
  }
  if (o.start === 'mean') return o.meanImage ? fromTensor(o.meanImage, 'meanImage') : tf.fill([n, h, w, c], mid) as tf.Tensor4D;
  if (o.start !== 'noise') throw new OptionError(`expected start 'noise', 'mean', 'given' or a tensor; got ${String(o.start)}`);
  const d = h * w * c;
  const vals = new Float32Array(n * d);
  const sd = 0.01 * (high - low);
  for (let i = 0; i < n; i++) {
    // Image i's own stream: its start does not depend on the batch it is in.
    const rng = createRng((o.seed * 1000003 + i * 7919 + 1) >>> 0);
    for (let j = 0; j < d; j++) vals[i * d + j] = mid + sd * gaussian(rng);
  }
  return tf.tensor4d(vals, [n, h, w, c]);
}

/** Where the ascent moves: pixels (activation-max), or a generator's code (seed 003 Eq. 3.3). */
export interface AscentSpace {
  /** Parameters [N, …] → images [N, h, w, c] (identity in pixel space). Differentiable. */
  render(p: tf.Tensor): tf.Tensor4D;
  /** Per-image penalty [N] subtracted from the objective, from the parameters and their image. */
  penalty(p: tf.Tensor, x: tf.Tensor4D): tf.Tensor1D;
  /** Range each parameter iterate is projected onto, if any. */
  clip?: [number, number];
}

/** Shared ascent options (a subset of ActivationMaxOptions, already merged with defaults). */
export interface AscentOptions {
  steps: number; learningRate: number; jitter: number; scales: number[]; seed: number; batchSize: number;
}

export interface AscentResult {
  /** Final parameters [N, …] (the prototypes themselves in pixel space). */
  params: tf.Tensor;
  /** Their images [N, h, w, c]. */
  prototypes: tf.Tensor4D;
  trace: number[][];
  objective: number[];
  probabilities: number[][];
}

/**
 * Adam ascent of objective(T(render(p))) − penalty(p, render(p)) from `start` [N, …], in batches that
 * fit the memory budget; each batch replays the same seeded transformation stream, so an image's
 * result does not depend on the batch it shares.
 */
export async function ascend(classifier: Classifier, objectives: ActivationObjective[], o: AscentOptions, start: tf.Tensor, space: AscentSpace,
  progress?: (fraction: number, label?: string) => void): Promise<AscentResult> {
  const n = objectives.length;
  const mid = (classifier.domain.low + classifier.domain.high) / 2;
  const bs = batchSizeFor(classifier, 'gradient', o.batchSize);
  const params: tf.Tensor[] = [];
  const images: tf.Tensor4D[] = [];
  const trace: number[][] = [];
  const objective: number[] = [];
  const probabilities: number[][] = [];
  const b1 = 0.9;
  const b2 = 0.999;
  const eps = 1e-8;
  try {
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const objFn = objectiveFn(classifier, objectives.slice(s, s + m));
      const rng = createRng((o.seed * 2654435761 + 17) >>> 0);
      let p = tf.slice(start, s, m);
      let mom = tf.zerosLike(p);
      let vel = tf.zerosLike(p);
      const tr: number[][] = Array.from({ length: m }, () => []);
      try {
        for (let step = 1; step <= o.steps; step++) {
          // f returns one value per image; its gradient is that of their sum (dy = ones), each image's own.
          const { value: val, grad } = tf.tidy(() => tf.valueAndGrad((pi: tf.Tensor) => {
            const x = space.render(pi);
            const xt = transform(x, o.jitter, o.scales, mid, rng);
            // The penalties act on the prototype itself, not its transformed view.
            return tf.sub(objFn.fn(xt), space.penalty(pi, x));
          })(p));
          const vals = (await val.data()) as Float32Array;
          for (let i = 0; i < m; i++) tr[i].push(vals[i]);
          val.dispose();
          const [np, nm, nv] = tf.tidy(() => {
            const nm2 = tf.add(tf.mul(mom, b1), tf.mul(grad, 1 - b1));
            const nv2 = tf.add(tf.mul(vel, b2), tf.mul(tf.square(grad), 1 - b2));
            const mh = tf.div(nm2, 1 - b1 ** step);
            const vh = tf.div(nv2, 1 - b2 ** step);
            let p2: tf.Tensor = tf.add(p, tf.mul(tf.div(mh, tf.add(tf.sqrt(vh), eps)), o.learningRate));
            if (space.clip) p2 = tf.clipByValue(p2, space.clip[0], space.clip[1]);
            return [p2, nm2, nv2];
          });
          grad.dispose();
          tf.dispose([p, mom, vel]);
          p = np;
          mom = nm;
          vel = nv;
          progress?.((s + (m * step) / o.steps) / n, 'activation-max');
        }
        const [x, finalObj, probs] = tf.tidy(() => {
          const rendered = space.render(p);
          // An identity render returns p itself: the prototypes get their own tensor handle.
          const xi = rendered === p ? tf.clone(rendered) : rendered;
          return [xi, objFn.fn(xi), classifier.probabilities(xi)];
        });
        objective.push(...((await finalObj.data()) as Float32Array));
        probabilities.push(...((await probs.array()) as number[][]));
        tf.dispose([finalObj, probs]);
        trace.push(...tr);
        params.push(p);
        images.push(x as tf.Tensor4D);
      } catch (e) {
        p.dispose();
        throw e;
      } finally {
        tf.dispose([mom, vel]);
        tf.dispose(objFn.constants);
      }
    }
    const join = <T extends tf.Tensor>(parts: T[]): T => (parts.length === 1 ? parts[0] : (tf.concat(parts, 0) as T));
    const pOut = join(params);
    const xOut = join(images);
    if (params.length > 1) tf.dispose([...params, ...images]);
    return { params: pOut, prototypes: xOut, trace, objective, probabilities };
  } catch (e) {
    tf.dispose([...params, ...images]);
    throw e;
  }
}

/**
 * Maximise one objective per prototype. `objectives` gives the prototypes (one each, all of the same
 * kind and layer); `given` holds the start images for start 'given'.
 *
 * @example
 * const r = await activationMax(classifier, [{ class: 3 }], { steps: 100 });
 * console.log(r.probabilities[0][3], r.trace[0].at(-1)); r.dispose();
 */
export async function activationMax(classifier: Classifier, objectives: ActivationObjective[], opts: ActivationMaxOptions = {}, given?: tf.Tensor4D,
  progress?: (fraction: number, label?: string) => void): Promise<ActivationMaxResult> {
  const o = { ...ACTIVATION_MAX_DEFAULTS, ...opts };
  const [h, w] = classifier.inputShape;
  checkOptions(o, h, w);
  const n = objectives.length;
  if (n === 0) throw new OptionError('expected at least one objective; got none');
  if (given && given.shape[0] !== n) throw new OptionError(`expected one start image per objective (${n}); got ${given.shape[0]}`);
  const { low, high } = classifier.domain;
  const start = startImages(classifier, n, o, given);
  try {
    const r = await ascend(classifier, objectives, o, start, {
      render: (p) => p as tf.Tensor4D,
      penalty: (_p, x) => penalties(x, o.lambda, o.tv, o.blur),
      clip: o.clip ? [low, high] : undefined,
    }, progress);
    // In pixel space the parameters are the prototypes: render is the identity, so one of the two is a copy.
    r.params.dispose();
    const prototypes = r.prototypes;
    return { prototypes, trace: r.trace, objective: r.objective, probabilities: r.probabilities, dispose: () => prototypes.dispose() };
  } finally {
    start.dispose();
  }
}

/** How a registered method's options name its objective. */
export interface ObjectiveOptions {
  /** Class objective score, when no layer is given. Default 'log-prob'. */
  score?: 'log-prob' | 'logit';
  /** A node to read instead of the class: with channel or unit. */
  layer?: string;
  channel?: number;
  unit?: number | [number, number, number];
}

export interface ActivationMaxMethodOptions extends ActivationMaxOptions, ObjectiveOptions {}

/** The registered methods' objectives: the target class of each image, or the same layer's channel/unit for every image. */
export function methodObjectives(targets: number[], o: ObjectiveOptions): ActivationObjective[] {
  const { score, layer, channel, unit } = o;
  if (layer === undefined) {
    if (channel !== undefined || unit !== undefined) throw new OptionError('expected option layer with channel or unit; got none');
    return targets.map((t) => ({ class: t, score }));
  }
  if ((channel === undefined) === (unit === undefined)) throw new OptionError(`expected exactly one of channel or unit with layer "${layer}"`);
  return targets.map(() => (channel !== undefined ? { layer, channel } : { layer, unit: unit! }));
}

registerMethod<ActivationMaxMethodOptions>({
  name: 'activation-max',
  family: 'interpretation',
  description: 'activation maximisation: a prototype input maximising log p(c|x) − λ‖x‖² (seed 003 Eq. 3.1), or a channel/unit of any layer; jitter/scale robustness, TV and blur regularisers',
  signed: false,
  defaults: { ...ACTIVATION_MAX_DEFAULTS, score: 'log-prob', layer: undefined, channel: undefined, unit: undefined, meanImage: undefined },
  memory: 'gradient',
  requires: (c) => (c.graph ? undefined : 'activation-max needs a layered model (it reads nodes and splits the network)'),
  async run(classifier, x, targets, options, context) {
    const { score, layer, channel, unit, ...rest } = options;
    const objectives = methodObjectives(targets, { score, layer, channel, unit });
    const r = await activationMax(classifier, objectives, rest, x, context.progress);
    return { attribution: r.prototypes, extras: { trace: r.trace, objective: r.objective, probabilities: r.probabilities } };
  },
});
