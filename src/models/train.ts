/**
 * Training — the "train" part of seed 002's framework (its `optimize`): minibatch gradient descent
 * with softmax cross-entropy from logits, seeded shuffling and augmentation, a learning-rate
 * schedule, validation and early stopping, and a progress bar.
 *
 * The loop is written directly on tf.variableGrads/optimizer.minimize over model.trainableWeights:
 * batches are assembled in JS from one host copy of the images (which also makes the random
 * shifts cheap), so no tf.gather or per-image slicing runs on the backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { OptionError, DataError } from '../core/errors.js';
import { createRng, type Rng } from '../util/random.js';
import { progress } from '../util/progress.js';

/** What training needs of a dataset (src/data's Dataset satisfies it). */
export interface LabelledImages {
  name?: string;
  /** [N, H, W, C] */
  images: tf.Tensor4D;
  labels: Int32Array;
  classNames?: string[];
}

export interface AugmentOptions {
  /** Random integer translation of up to ±shift pixels in each direction (zero fill); default 0. */
  shift?: number;
  /** Probability of a horizontal flip (for datasets where it is label-preserving); default 0. */
  flip?: number;
  /** Random rotation of up to ±rotate degrees about the centre (bilinear, zero fill); default 0. */
  rotate?: number;
  /** Random zoom by a factor in [1 − scale, 1 + scale]; default 0. With rotate or scale, shifts are continuous. */
  scale?: number;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  accuracy: number;
  valAccuracy?: number;
  valLoss?: number;
  learningRate: number;
  timeMs: number;
}

export interface TrainOptions {
  optimizer?: 'adam' | 'sgd';
  /** Initial learning rate; default 1e-3 (adam) or 0.05 (sgd). */
  learningRate?: number;
  /** Multiply the learning rate by this after every epoch; default 1 (constant). */
  lrDecay?: number;
  /** Or an explicit schedule: epoch (0-based) → learning rate. Overrides learningRate/lrDecay. */
  lrSchedule?: (epoch: number) => number;
  /** SGD momentum; default 0.9 (sgd only). */
  momentum?: number;
  batchSize?: number;
  epochs?: number;
  seed?: number;
  validation?: LabelledImages;
  /** Stop when the validation accuracy (training loss without validation) has not improved by minDelta for `patience` epochs. */
  earlyStop?: { patience: number; minDelta?: number };
  /** With validation: put back the weights of the best validation epoch at the end; default true when earlyStop is set. */
  restoreBest?: boolean;
  augment?: AugmentOptions;
  /** Label smoothing of the cross-entropy; default 0. */
  labelSmoothing?: number;
  onEpoch?: (stats: EpochStats) => void | Promise<void>;
  /** Label of the progress bar; default "train <model name>". */
  label?: string;
}

export interface TrainHistory {
  loss: number[];
  accuracy: number[];
  valAccuracy: number[];
  valLoss: number[];
  learningRate: number[];
  /** Wall time of the whole training in ms. */
  timeMs: number;
  epochs: number;
  stoppedEarly: boolean;
  /** Epoch (1-based) whose weights the model holds at the end. */
  bestEpoch: number;
}

/** Softmax cross-entropy from logits, mean over the batch. */
export function logitsLoss(labelsOneHot: tf.Tensor, logits: tf.Tensor, labelSmoothing = 0): tf.Scalar {
  return tf.losses.softmaxCrossEntropy(labelsOneHot, logits, undefined, labelSmoothing) as tf.Scalar;
}

/** A batch sampler over a host copy of the images, with seeded shifts/flips. */
export class BatchSource {
  readonly n: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
  private readonly data: Float32Array;

  constructor(images: tf.Tensor4D, readonly labels: Int32Array) {
    [this.n, this.h, this.w, this.c] = images.shape;
    if (labels.length !== this.n) {
      throw new DataError(`expected one label per image (${this.n}); got ${labels.length} labels`);
    }
    this.data = images.dataSync() as Float32Array;
  }

  /** Images and labels at `idx`, optionally shifted/flipped with rng. */
  batch(idx: ArrayLike<number>, numClasses: number, augment?: AugmentOptions, rng?: Rng): { x: tf.Tensor4D; y: tf.Tensor2D; labels: Int32Array } {
    const { h, w, c } = this;
    const size = h * w * c;
    const out = new Float32Array(idx.length * size);
    const labels = new Int32Array(idx.length);
    const shift = augment?.shift ?? 0;
    const flipP = augment?.flip ?? 0;
    const rot = ((augment?.rotate ?? 0) * Math.PI) / 180;
    const zoom = augment?.scale ?? 0;
    for (let b = 0; b < idx.length; b++) {
      const i = idx[b];
      labels[b] = this.labels[i];
      const src = i * size;
      const dst = b * size;
      if (rng && (rot > 0 || zoom > 0)) {
        const angle = (2 * rng() - 1) * rot;
        const factor = 1 + (2 * rng() - 1) * zoom;
        const ty = (2 * rng() - 1) * shift;
        const tx = (2 * rng() - 1) * shift;
        const flip = flipP > 0 && rng() < flipP;
        this.warp(src, out, dst, angle, factor, tx, ty, flip);
        continue;
      }
      const dy = shift > 0 && rng ? Math.floor(rng() * (2 * shift + 1)) - shift : 0;
      const dx = shift > 0 && rng ? Math.floor(rng() * (2 * shift + 1)) - shift : 0;
      const flip = flipP > 0 && rng ? rng() < flipP : false;
      if (dy === 0 && dx === 0 && !flip) {
        out.set(this.data.subarray(src, src + size), dst);
        continue;
      }
      for (let y = 0; y < h; y++) {
        const sy = y - dy;
        if (sy < 0 || sy >= h) continue;
        for (let x = 0; x < w; x++) {
          let sx = x - dx;
          if (flip) sx = w - 1 - sx;
          if (sx < 0 || sx >= w) continue;
          const o = dst + (y * w + x) * c;
          const s = src + (sy * w + sx) * c;
          for (let k = 0; k < c; k++) out[o + k] = this.data[s + k];
        }
      }
    }
    const x = tf.tensor4d(out, [idx.length, h, w, c]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses) as tf.Tensor2D);
    return { x, y, labels };
  }

  /** out[dst…] = image at src rotated by `angle`, zoomed by `factor`, moved by (tx, ty), bilinear. */
  private warp(src: number, out: Float32Array, dst: number, angle: number, factor: number, tx: number, ty: number, flip: boolean): void {
    const { h, w, c, data } = this;
    const cy = (h - 1) / 2;
    const cx = (w - 1) / 2;
    const cos = Math.cos(angle) / factor;
    const sin = Math.sin(angle) / factor;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        // inverse map: output pixel → source coordinates
        const u = (flip ? w - 1 - x : x) - cx - tx;
        const v = y - cy - ty;
        const sx = cos * u + sin * v + cx;
        const sy = -sin * u + cos * v + cy;
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) continue;
        const fx = sx - x0;
        const fy = sy - y0;
        const o = dst + (y * w + x) * c;
        for (let k = 0; k < c; k++) {
          let acc = 0;
          if (y0 >= 0 && x0 >= 0) acc += (1 - fy) * (1 - fx) * data[src + (y0 * w + x0) * c + k];
          if (y0 >= 0 && x0 + 1 < w) acc += (1 - fy) * fx * data[src + (y0 * w + x0 + 1) * c + k];
          if (y0 + 1 < h && x0 >= 0) acc += fy * (1 - fx) * data[src + ((y0 + 1) * w + x0) * c + k];
          if (y0 + 1 < h && x0 + 1 < w) acc += fy * fx * data[src + ((y0 + 1) * w + x0 + 1) * c + k];
          out[o + k] = acc;
        }
      }
    }
  }
}

/** Accuracy and mean loss of a model's logits on a labelled set, in batches (inference mode). */
export async function modelAccuracy(model: tfl.LayersModel, ds: LabelledImages, batchSize = 256): Promise<{ accuracy: number; loss: number }> {
  const n = ds.images.shape[0];
  if (n === 0) return { accuracy: NaN, loss: NaN };
  const numClasses = outputUnits(model);
  let correct = 0;
  let lossSum = 0;
  for (let i = 0; i < n; i += batchSize) {
    const m = Math.min(batchSize, n - i);
    const lab = ds.labels.subarray(i, i + m);
    const [pred, loss] = tf.tidy(() => {
      const logits = model.predict(tf.slice(ds.images, i, m)) as tf.Tensor2D;
      const y = tf.oneHot(tf.tensor1d(lab, 'int32'), numClasses);
      return [tf.argMax(logits, 1), tf.mul(logitsLoss(y, logits), m)];
    });
    const p = (await pred.data()) as Int32Array;
    lossSum += (await loss.data())[0];
    tf.dispose([pred, loss]);
    for (let k = 0; k < m; k++) if (p[k] === lab[k]) correct++;
  }
  return { accuracy: correct / n, loss: lossSum / n };
}

function outputUnits(model: tfl.LayersModel): number {
  const shape = model.outputs[0].shape;
  const units = shape[shape.length - 1];
  if (shape.length !== 2 || units == null) {
    throw new OptionError(`expected a model with a [batch, classes] output; got output shape [${shape.join(', ')}]`);
  }
  return units;
}

function setLearningRate(opt: tf.Optimizer, lr: number): void {
  const o = opt as unknown as { setLearningRate?: (v: number) => void; learningRate: number };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

/**
 * Train `model` in place on `train` and return the per-epoch history. The model's output must be
 * logits (a final softmax layer is not supported: build models with the builders here).
 */
export async function trainModel(model: tfl.LayersModel, train: LabelledImages, opts: TrainOptions = {}): Promise<TrainHistory> {
  const optimizerName = opts.optimizer ?? 'adam';
  if (optimizerName !== 'adam' && optimizerName !== 'sgd') throw new OptionError(`expected optimizer "adam" or "sgd"; got "${String(optimizerName)}"`);
  const lr0 = opts.learningRate ?? (optimizerName === 'adam' ? 1e-3 : 0.05);
  const batchSize = opts.batchSize ?? 64;
  const epochs = opts.epochs ?? 5;
  if (!(lr0 > 0)) throw new OptionError(`expected learningRate > 0; got ${lr0}`);
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new OptionError(`expected a positive integer batchSize; got ${batchSize}`);
  if (!Number.isInteger(epochs) || epochs <= 0) throw new OptionError(`expected a positive integer number of epochs; got ${epochs}`);
  const [, mh, mw, mc] = model.inputs[0].shape;
  const [n, h, w, c] = train.images.shape;
  if ((mh != null && mh !== h) || (mw != null && mw !== w) || (mc != null && mc !== c)) {
    throw new DataError(`expected training images of [${mh}, ${mw}, ${mc}] for model "${model.name}"; got [${h}, ${w}, ${c}]`);
  }
  if (n === 0) throw new DataError('expected a non-empty training set; got 0 images');
  const numClasses = outputUnits(model);
  for (const l of train.labels) {
    if (!(l >= 0 && l < numClasses)) throw new DataError(`expected labels in 0..${numClasses - 1}; got ${l}`);
  }
  const lastLayer = model.layers[model.layers.length - 1];
  const lastAct = (lastLayer.getConfig().activation as string | undefined) ?? '';
  if (lastAct === 'softmax' || lastLayer.getClassName() === 'Softmax') {
    throw new OptionError(`expected a model whose output is logits; model "${model.name}" ends in a softmax`);
  }

  const schedule = opts.lrSchedule ?? ((e: number) => lr0 * Math.pow(opts.lrDecay ?? 1, e));
  const optimizer: tf.Optimizer = optimizerName === 'adam' ? tf.train.adam(schedule(0)) : tf.train.momentum(schedule(0), opts.momentum ?? 0.9);
  const vars = model.trainableWeights.map((v) => (v as unknown as { read(): tf.Variable }).read());
  const rng = createRng(opts.seed ?? 0);
  const source = new BatchSource(train.images, train.labels);
  const steps = Math.ceil(n / batchSize);
  const bar = progress(opts.label ?? `train ${model.name}`, epochs * steps);
  const history: TrainHistory = { loss: [], accuracy: [], valAccuracy: [], valLoss: [], learningRate: [], timeMs: 0, epochs: 0, stoppedEarly: false, bestEpoch: 0 };
  const restoreBest = opts.validation != null && (opts.restoreBest ?? opts.earlyStop != null);
  let best = -Infinity;
  let bestWeights: tf.Tensor[] | undefined;
  let sinceBest = 0;
  const start = Date.now();
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const t0 = Date.now();
      const lr = schedule(epoch);
      setLearningRate(optimizer, lr);
      const order = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      let lossSum = 0;
      let correct = 0;
      for (let s = 0; s < steps; s++) {
        const idx = order.slice(s * batchSize, Math.min(n, (s + 1) * batchSize));
        const { x, y, labels } = source.batch(idx, numClasses, opts.augment, rng);
        let logits: tf.Tensor | undefined;
        const loss = optimizer.minimize(() => {
          const out = model.apply(x, { training: true }) as tf.Tensor;
          logits = tf.keep(out);
          return logitsLoss(y, out, opts.labelSmoothing ?? 0);
        }, true, vars) as tf.Scalar;
        const pred = tf.argMax(logits!, 1);
        const p = (await pred.data()) as Int32Array;
        const l = (await loss.data())[0];
        tf.dispose([x, y, loss, pred, logits!]);
        if (!Number.isFinite(l)) throw new DataError(`training diverged: loss became ${l} at epoch ${epoch + 1}, step ${s + 1} (lower the learning rate)`);
        lossSum += l * idx.length;
        for (let k = 0; k < labels.length; k++) if (p[k] === labels[k]) correct++;
        bar.update(epoch * steps + s + 1, `ep ${epoch + 1}/${epochs} loss ${(lossSum / Math.min(n, (s + 1) * batchSize)).toFixed(4)}`);
      }
      const stats: EpochStats = { epoch: epoch + 1, loss: lossSum / n, accuracy: correct / n, learningRate: lr, timeMs: 0 };
      if (opts.validation) {
        const v = await modelAccuracy(model, opts.validation);
        stats.valAccuracy = v.accuracy;
        stats.valLoss = v.loss;
      }
      stats.timeMs = Date.now() - t0;
      history.loss.push(stats.loss);
      history.accuracy.push(stats.accuracy);
      if (stats.valAccuracy != null) history.valAccuracy.push(stats.valAccuracy);
      if (stats.valLoss != null) history.valLoss.push(stats.valLoss);
      history.learningRate.push(lr);
      history.epochs = epoch + 1;
      if (opts.onEpoch) await opts.onEpoch(stats);
      const score = stats.valAccuracy ?? -stats.loss;
      if (score > best + (opts.earlyStop?.minDelta ?? 0)) {
        best = score;
        sinceBest = 0;
        history.bestEpoch = epoch + 1;
        if (restoreBest) {
          tf.dispose(bestWeights ?? []);
          bestWeights = model.getWeights().map((t) => tf.clone(t));
        }
      } else {
        sinceBest++;
        if (opts.earlyStop && sinceBest >= opts.earlyStop.patience) {
          history.stoppedEarly = epoch + 1 < epochs;
          break;
        }
      }
    }
    if (!restoreBest) history.bestEpoch = history.epochs;
    if (restoreBest && bestWeights) model.setWeights(bestWeights);
  } finally {
    tf.dispose(bestWeights ?? []);
    optimizer.dispose();
    // tfjs' MomentumOptimizer.dispose forgets SGD's learning-rate scalar.
    const c = (optimizer as unknown as { c?: tf.Tensor }).c;
    if (c && !c.isDisposed) c.dispose();
  }
  history.timeMs = Date.now() - start;
  bar.done(`loss ${history.loss[history.loss.length - 1]?.toFixed(4)} acc ${(history.accuracy[history.accuracy.length - 1] * 100).toFixed(2)}%`);
  return history;
}
