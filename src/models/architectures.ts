/**
 * Network builders — the "create" part of seed 002's network framework (its `Mnist_net.setup`):
 * MLPs and CNNs with ReLU, an optional input offset/scale/inversion inside the model, optional
 * biases (VisualBackProp needs a bias-free net), and seeded initialisers so the same seed gives the
 * same weights. Every builder returns an uncompiled tf.Sequential whose output is the logits (no
 * softmax); train it with trainModel (softmax cross-entropy from logits).
 *
 * Layer names are stable and match the conformance bundles (../shared/conformance/FORMAT.md):
 * `input_transform`, `conv1`, `pool1`, `conv2`, …, `flatten`, `fc1`, `fc2`, … (the last `fcK`
 * gives the logits).
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { InputTransform } from '../core/input-transform.js';
import { OptionError } from '../core/errors.js';
import { createRng, nextSeed, type Rng } from '../util/random.js';

/** x ↦ (invert ? 1 − x : x) · scale + offset, applied by the model's first layer. */
export interface TransformOptions {
  offset?: number;
  scale?: number;
  invert?: boolean;
}

interface CommonOptions {
  /** [height, width, channels]; default [28, 28, 1]. */
  inputShape?: [number, number, number];
  numClasses?: number;
  /** Give every Conv2D/Dense a bias; default true. `false` builds a bias-free net. */
  bias?: boolean;
  /** Optional input offset/scale/inversion inside the model (an InputTransform layer). */
  transform?: TransformOptions;
  /** Seed of the weight initialisers; default 0. */
  seed?: number;
  name?: string;
}

export interface MlpOptions extends CommonOptions {
  /** Hidden layer widths; default [256, 128]. */
  hidden?: number[];
}

export interface ConvSpec {
  filters: number;
  kernelSize: number;
  /** Max-pooling window (and stride) after the ReLU; `true` = 2, false/0/undefined = no pooling. */
  pool?: number | boolean;
  /** Default 'same'. */
  padding?: 'same' | 'valid';
  strides?: number;
}

export interface CnnOptions extends CommonOptions {
  convs: ConvSpec[];
  /** Hidden Dense widths after the flatten; default [128]. */
  dense?: number[];
}

function checkCommon(o: CommonOptions, what: string): { inputShape: [number, number, number]; numClasses: number; bias: boolean; seed: number } {
  const inputShape = o.inputShape ?? [28, 28, 1];
  if (inputShape.length !== 3 || inputShape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new OptionError(`${what}: expected inputShape [height, width, channels] of positive integers; got [${inputShape.join(', ')}]`);
  }
  const numClasses = o.numClasses ?? 10;
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new OptionError(`${what}: expected numClasses ≥ 2; got ${numClasses}`);
  }
  return { inputShape, numClasses, bias: o.bias ?? true, seed: o.seed ?? 0 };
}

function addTransform(layers: tfl.layers.Layer[], t: TransformOptions | undefined, inputShape: number[]): boolean {
  if (!t) return false;
  const offset = t.offset ?? 0;
  const scale = t.scale ?? 1;
  const invert = t.invert ?? false;
  if (!Number.isFinite(offset) || !Number.isFinite(scale) || scale === 0) {
    throw new OptionError(`expected a finite transform offset and a finite non-zero scale; got offset ${offset}, scale ${scale}`);
  }
  layers.push(new InputTransform({ offset, scale, invert, inputShape, name: 'input_transform' }));
  return true;
}

function dense(units: number, name: string, bias: boolean, rng: Rng, relu: boolean, inputShape?: number[]): tfl.layers.Layer {
  return tfl.layers.dense({
    units,
    name,
    activation: relu ? 'relu' : 'linear',
    useBias: bias,
    kernelInitializer: relu ? tfl.initializers.heNormal({ seed: nextSeed(rng) }) : tfl.initializers.glorotUniform({ seed: nextSeed(rng) }),
    biasInitializer: 'zeros',
    ...(inputShape ? { inputShape } : {}),
  });
}

function addHead(layers: tfl.layers.Layer[], hidden: number[], numClasses: number, bias: boolean, rng: Rng, firstIndex: number): void {
  let k = firstIndex;
  for (const units of hidden) {
    if (!Number.isInteger(units) || units <= 0) throw new OptionError(`expected positive integer layer widths; got ${units}`);
    layers.push(dense(units, `fc${k}`, bias, rng, true));
    k++;
  }
  layers.push(dense(numClasses, `fc${k}`, bias, rng, false));
}

/**
 * Multi-layer perceptron: [transform] → flatten → fc1 … fcK (ReLU) → logits.
 * Defaults (784-256-128-10, bias) are the conformance `mnist_mlp`.
 */
export function buildMlp(opts: MlpOptions = {}): tfl.Sequential {
  const { inputShape, numClasses, bias, seed } = checkCommon(opts, 'buildMlp');
  const rng = createRng(seed);
  const layers: tfl.layers.Layer[] = [];
  const hasT = addTransform(layers, opts.transform, inputShape);
  layers.push(tfl.layers.flatten({ name: 'flatten', ...(hasT ? {} : { inputShape }) }));
  addHead(layers, opts.hidden ?? [256, 128], numClasses, bias, rng, 1);
  return tfl.sequential({ layers, name: opts.name ?? 'mlp' });
}

/**
 * Convolutional net: [transform] → (convK with ReLU → [poolK]) … → flatten → fc… (ReLU) → logits.
 * ReLU is fused into each Conv2D and applied before the pooling (identical to pool-then-ReLU, since
 * max and ReLU commute; and the pooled values are ≥ 0, which keeps wasm's MaxPoolGrad exact).
 */
export function buildCnn(opts: CnnOptions): tfl.Sequential {
  const { inputShape, numClasses, bias, seed } = checkCommon(opts, 'buildCnn');
  if (!opts.convs || opts.convs.length === 0) throw new OptionError('buildCnn: expected at least one conv layer in convs; got none');
  const rng = createRng(seed);
  const layers: tfl.layers.Layer[] = [];
  const hasT = addTransform(layers, opts.transform, inputShape);
  opts.convs.forEach((c, i) => {
    if (!Number.isInteger(c.filters) || c.filters <= 0 || !Number.isInteger(c.kernelSize) || c.kernelSize <= 0) {
      throw new OptionError(`buildCnn: expected conv ${i + 1} with positive integer filters and kernelSize; got ${JSON.stringify(c)}`);
    }
    layers.push(tfl.layers.conv2d({
      filters: c.filters,
      kernelSize: c.kernelSize,
      strides: c.strides ?? 1,
      padding: c.padding ?? 'same',
      activation: 'relu',
      useBias: bias,
      kernelInitializer: tfl.initializers.heNormal({ seed: nextSeed(rng) }),
      biasInitializer: 'zeros',
      name: `conv${i + 1}`,
      ...(i === 0 && !hasT ? { inputShape } : {}),
    }));
    const pool = c.pool === true ? 2 : c.pool === false || c.pool == null ? 0 : c.pool;
    if (pool > 1) layers.push(tfl.layers.maxPooling2d({ poolSize: pool, strides: pool, name: `pool${i + 1}` }));
  });
  layers.push(tfl.layers.flatten({ name: 'flatten' }));
  addHead(layers, opts.dense ?? [128], numClasses, bias, rng, 1);
  return tfl.sequential({ layers, name: opts.name ?? 'cnn' });
}

/**
 * Seed 001's MNIST classifier ("two sets of Conv/MaxPool/ReLU layers followed by two fully connected
 * layers", 5×5 kernels, first fully connected layer 3380×50 on 64×64 inputs): conv 10 → pool →
 * conv 20 → pool (valid padding) → fc 50 → fc 10. On 64×64 inputs the flatten has 20·13·13 = 3380
 * units, as in the paper; on the default 28×28 it has 20·4·4 = 320.
 */
export function buildSeed001Cnn(opts: Omit<CnnOptions, 'convs' | 'dense'> = {}): tfl.Sequential {
  return buildCnn({
    ...opts,
    convs: [
      { filters: 10, kernelSize: 5, pool: 2, padding: 'valid' },
      { filters: 20, kernelSize: 5, pool: 2, padding: 'valid' },
    ],
    dense: [50],
    name: opts.name ?? 'seed001_cnn',
  });
}

/** The conformance `mnist_cnn` shape (FORMAT.md §2.1): conv 32 → pool → conv 64 → pool → fc 128 → fc 10. */
export function buildConformanceCnn(opts: Omit<CnnOptions, 'convs' | 'dense'> = {}): tfl.Sequential {
  return buildCnn({
    ...opts,
    convs: [
      { filters: 32, kernelSize: 5, pool: 2 },
      { filters: 64, kernelSize: 5, pool: 2 },
    ],
    dense: [128],
    name: opts.name ?? 'mnist_cnn',
  });
}

/** Number of trainable parameters. */
export function countParams(model: tfl.LayersModel): number {
  return model.trainableWeights.reduce((s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1), 0);
}
