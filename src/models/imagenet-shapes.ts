/**
 * ImageNet-architecture-shaped classifiers with seeded weights: the layer kinds, layout and naming of
 * the Keras applications MobileNetV2, ResNet-50 and InceptionV3, as functional tf.LayersModels.
 *
 * Why: a user's first real model is a Keras-converted ImageNet network, not an MNIST CNN. These
 * builders give tests and benchmarks the same graph (asymmetric ZeroPadding2D before stride-2
 * convolutions, DepthwiseConv2D, BatchNormalization with non-trivial statistics after every
 * convolution, ReLU(max_value = 6), residual Add, projection shortcuts, parallel branches with
 * Concatenate, 'same' average pooling, a softmax Dense) without downloading weights.
 *
 * Weights are not trained, but they are not arbitrary either: convolutions are He-normal, and every
 * BatchNormalization's moving statistics are calibrated on a seeded batch of smooth random images as
 * it is reached (the statistics of its own input, perturbed: mean ± 0.1σ, variance × [0.8, 1.25],
 * rounded to 3 significant digits so every backend builds the same weights), with gamma and beta
 * drawn so the output is N(β, γ²)-like — never the identity, some units beyond 6 before each ReLU6
 * (as in pretrained MobileNetV2), and activations that neither vanish nor explode with depth. The
 * classifier Dense is scaled so the logits have a standard deviation of about 4 on that batch.
 *
 * Small test versions: MobileNetV2 `alpha` (width), `depth` (at most this many blocks per stage) and
 * `lastFilters`; ResNet-50 `width` and `blocks`; Inception `width` and `blocks`.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { OptionError } from '../core/errors.js';
import { createRng, gaussian, nextSeed, type Rng } from '../util/random.js';

type SymbolicTensor = tfl.SymbolicTensor;

export interface ImageNetShapeOptions {
  /** [height, width, channels]; default [224, 224, 3]. */
  inputShape?: [number, number, number];
  /** Default 1000. */
  numClasses?: number;
  /** Seed of every weight; default 0. */
  seed?: number;
  name?: string;
  /** End with a softmax (as the Keras applications do; Glasswing strips it for logits); default true. */
  softmax?: boolean;
  /** Number of seeded images the BatchNorm statistics are calibrated on; default 4. */
  calibrationImages?: number;
}

export interface MobileNetV2ShapeOptions extends ImageNetShapeOptions {
  /** Width multiplier (Keras `alpha`); default 1. */
  alpha?: number;
  /** At most this many inverted residual blocks per stage (Keras: 1, 2, 3, 4, 3, 3, 1); default all. */
  depth?: number;
  /** Channels of the last 1×1 convolution; default 1280 (Keras: 1280·alpha when alpha > 1). */
  lastFilters?: number;
  /**
   * Classifier head: 'gap' (Keras: GlobalAveragePooling2D, Dropout, Dense) or 'avgpool-flatten'
   * (AveragePooling2D over the whole final map, Flatten, Dropout, Dense — the layout of some converted
   * MobileNetV2 packages); default 'gap'.
   */
  head?: 'gap' | 'avgpool-flatten';
}

export interface ResNet50ShapeOptions extends ImageNetShapeOptions {
  /** Multiplier of every channel count (64·width … 2048·width); default 1. */
  width?: number;
  /** Bottleneck blocks per stage; default [3, 4, 6, 3]. */
  blocks?: [number, number, number, number];
}

export interface InceptionShapeOptions extends ImageNetShapeOptions {
  /** Multiplier of every channel count; default 1. */
  width?: number;
  /** Blocks of each kind: A (35×35 at 299²), C (17×17, 1×7/7×1 factorised), E (8×8, split 1×3/3×1); default {a: 3, c: 4, e: 2}. */
  blocks?: { a?: number; c?: number; e?: number };
  /** Head: 'gap' (Keras) or 'flatten' (Flatten of the last map, then Dense); default 'gap'. */
  head?: 'gap' | 'flatten';
}

interface Ctx { rng: Rng }

function checkCommon(opts: ImageNetShapeOptions, what: string, minSize: number): { inputShape: [number, number, number]; numClasses: number } {
  const inputShape = opts.inputShape ?? [224, 224, 3];
  const numClasses = opts.numClasses ?? 1000;
  if (inputShape.length !== 3 || inputShape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new OptionError(`${what}: expected inputShape [height, width, channels] of positive integers; got [${inputShape.join(', ')}]`);
  }
  if (inputShape[0] < minSize || inputShape[1] < minSize) {
    throw new OptionError(`${what}: expected an input of at least ${minSize}×${minSize}; got ${inputShape[0]}×${inputShape[1]}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new OptionError(`${what}: expected numClasses ≥ 2; got ${numClasses}`);
  const n = opts.calibrationImages ?? 2;
  if (!Number.isInteger(n) || n < 1) throw new OptionError(`${what}: expected calibrationImages ≥ 1; got ${n}`);
  return { inputShape, numClasses };
}

function positive(v: number, name: string, what: string): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new OptionError(`${what}: expected ${name} > 0; got ${v}`);
  return v;
}

/** Keras' _make_divisible: round to a multiple of `divisor`, never below 90 % of v. */
function makeDivisible(v: number, divisor = 8): number {
  let r = Math.max(divisor, Math.floor(v + divisor / 2) - (Math.floor(v + divisor / 2) % divisor));
  if (r < 0.9 * v) r += divisor;
  return r;
}

const apply = (layer: tfl.layers.Layer, x: SymbolicTensor | SymbolicTensor[]) => layer.apply(x) as SymbolicTensor;

function conv(ctx: Ctx, x: SymbolicTensor, name: string, filters: number, kernelSize: number | [number, number], strides: number, padding: 'same' | 'valid', useBias: boolean): SymbolicTensor {
  return apply(tfl.layers.conv2d({
    name, filters, kernelSize, strides, padding, useBias,
    kernelInitializer: tfl.initializers.heNormal({ seed: nextSeed(ctx.rng) }),
    biasInitializer: useBias ? tfl.initializers.randomNormal({ mean: 0, stddev: 0.05, seed: nextSeed(ctx.rng) }) : undefined,
  }), x);
}

function bn(x: SymbolicTensor, name: string, epsilon: number, scale = true): SymbolicTensor {
  return apply(tfl.layers.batchNormalization({ name, axis: -1, momentum: 0.99, epsilon, scale }), x);
}

function relu6(x: SymbolicTensor, name: string): SymbolicTensor {
  return apply(tfl.layers.reLU({ name, maxValue: 6 }), x);
}

function relu(x: SymbolicTensor, name: string): SymbolicTensor {
  return apply(tfl.layers.activation({ name, activation: 'relu' }), x);
}

function classifierHead(ctx: Ctx, x: SymbolicTensor, numClasses: number, softmax: boolean): SymbolicTensor {
  return apply(tfl.layers.dense({
    name: 'predictions', units: numClasses, activation: softmax ? 'softmax' : 'linear',
    kernelInitializer: tfl.initializers.glorotUniform({ seed: nextSeed(ctx.rng) }),
    biasInitializer: tfl.initializers.randomNormal({ mean: 0, stddev: 0.1, seed: nextSeed(ctx.rng) }),
  }), x);
}

// ---- MobileNetV2 -------------------------------------------------------------------------------

/** (expansion t, output channels c, repeats n, first stride s) of Keras' MobileNetV2. */
const MOBILENET_V2_STAGES: Array<[number, number, number, number]> = [
  [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
];

/** Keras' correct_pad for a 3×3 stride-2 'valid' convolution: ((0, 1), (0, 1)) on even sizes, ((1, 1), (1, 1)) on odd. */
function correctPad(x: SymbolicTensor): [[number, number], [number, number]] {
  const h = x.shape[1] as number;
  const w = x.shape[2] as number;
  return [[h % 2 === 0 ? 0 : 1, 1], [w % 2 === 0 ? 0 : 1, 1]];
}

function invertedResidual(ctx: Ctx, inputs: SymbolicTensor, expansion: number, stride: number, filters: number, blockId: number): SymbolicTensor {
  const inChannels = inputs.shape[3] as number;
  let x = inputs;
  let prefix = `block_${blockId}_`;
  if (blockId) {
    x = conv(ctx, x, `${prefix}expand`, expansion * inChannels, 1, 1, 'same', false);
    x = relu6(bn(x, `${prefix}expand_BN`, 1e-3), `${prefix}expand_relu`);
  } else {
    prefix = 'expanded_conv_';
  }
  if (stride === 2) x = apply(tfl.layers.zeroPadding2d({ name: `${prefix}pad`, padding: correctPad(x) }), x);
  x = apply(tfl.layers.depthwiseConv2d({
    name: `${prefix}depthwise`, kernelSize: 3, strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false,
    depthwiseInitializer: tfl.initializers.heNormal({ seed: nextSeed(ctx.rng) }),
  }), x);
  x = relu6(bn(x, `${prefix}depthwise_BN`, 1e-3), `${prefix}depthwise_relu`);
  x = conv(ctx, x, `${prefix}project`, filters, 1, 1, 'same', false);
  x = bn(x, `${prefix}project_BN`, 1e-3);
  if (inChannels === filters && stride === 1) return apply(tfl.layers.add({ name: `${prefix}add` }), [inputs, x]);
  return x;
}

/**
 * MobileNetV2 (Keras applications layout and names): ZeroPadding2D((0,1),(0,1)) + Conv2D 3×3/2
 * 'valid', BN(ε 1e-3), ReLU(6); 17 inverted residual blocks (1×1 expand–BN–ReLU6, [ZeroPadding2D +]
 * DepthwiseConv2D 3×3 stride 1 'same' / 2 'valid', BN, ReLU6, 1×1 project, BN, residual Add when
 * shapes match); Conv2D 1×1 → 1280, BN, ReLU6; GlobalAveragePooling2D, Dropout, Dense softmax.
 */
export function buildMobileNetV2Shaped(opts: MobileNetV2ShapeOptions = {}): tfl.LayersModel {
  const what = 'buildMobileNetV2Shaped';
  const { inputShape, numClasses } = checkCommon(opts, what, 32);
  const alpha = positive(opts.alpha ?? 1, 'alpha', what);
  const depth = opts.depth ?? Infinity;
  if (!(depth >= 1)) throw new OptionError(`${what}: expected depth ≥ 1; got ${depth}`);
  const lastFilters = opts.lastFilters ?? (alpha > 1 ? makeDivisible(1280 * alpha) : 1280);
  if (!Number.isInteger(lastFilters) || lastFilters < 1) throw new OptionError(`${what}: expected a positive integer lastFilters; got ${lastFilters}`);
  const ctx: Ctx = { rng: createRng(opts.seed ?? 0) };
  const input = tfl.input({ shape: inputShape, name: 'input_1' });
  let x = apply(tfl.layers.zeroPadding2d({ name: 'Conv1_pad', padding: correctPad(input) }), input);
  x = conv(ctx, x, 'Conv1', makeDivisible(32 * alpha), 3, 2, 'valid', false);
  x = relu6(bn(x, 'bn_Conv1', 1e-3), 'Conv1_relu');
  let blockId = 0;
  for (const [t, c, n, s] of MOBILENET_V2_STAGES) {
    const filters = makeDivisible(c * alpha);
    for (let i = 0; i < Math.min(n, depth); i++) {
      x = invertedResidual(ctx, x, t, i === 0 ? s : 1, filters, blockId++);
    }
  }
  x = conv(ctx, x, 'Conv_1', lastFilters, 1, 1, 'valid', false);
  x = relu6(bn(x, 'Conv_1_bn', 1e-3), 'out_relu');
  if ((opts.head ?? 'gap') === 'gap') {
    x = apply(tfl.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }), x);
  } else {
    x = apply(tfl.layers.averagePooling2d({ name: 'average_pooling2d', poolSize: [x.shape[1] as number, x.shape[2] as number], padding: 'valid' }), x);
    x = apply(tfl.layers.flatten({ name: 'flatten' }), x);
  }
  x = apply(tfl.layers.dropout({ name: 'dropout', rate: 0.2 }), x);
  const out = classifierHead(ctx, x, numClasses, opts.softmax ?? true);
  const model = tfl.model({ inputs: input, outputs: out, name: opts.name ?? 'mobilenetv2-shaped' });
  calibrate(model, ctx.rng, opts.calibrationImages ?? 4);
  return model;
}

// ---- ResNet-50 ---------------------------------------------------------------------------------

/** Keras ResNet50 block1: 1×1/stride, 3×3 'same', 1×1 (×4), each conv with bias + BN(ε 1.001e-5); projection shortcut; Add; ReLU. */
function bottleneck(ctx: Ctx, x: SymbolicTensor, filters: number, stride: number, convShortcut: boolean, name: string): SymbolicTensor {
  const eps = 1.001e-5;
  let shortcut = x;
  if (convShortcut) {
    shortcut = bn(conv(ctx, x, `${name}_0_conv`, 4 * filters, 1, stride, 'valid', true), `${name}_0_bn`, eps);
  }
  let y = conv(ctx, x, `${name}_1_conv`, filters, 1, stride, 'valid', true);
  y = relu(bn(y, `${name}_1_bn`, eps), `${name}_1_relu`);
  y = conv(ctx, y, `${name}_2_conv`, filters, 3, 1, 'same', true);
  y = relu(bn(y, `${name}_2_bn`, eps), `${name}_2_relu`);
  y = conv(ctx, y, `${name}_3_conv`, 4 * filters, 1, 1, 'valid', true);
  y = bn(y, `${name}_3_bn`, eps);
  const sum = apply(tfl.layers.add({ name: `${name}_add` }), [shortcut, y]);
  return relu(sum, `${name}_out`);
}

/**
 * ResNet-50 (Keras applications layout and names): ZeroPadding2D(3) + Conv2D 7×7/2 'valid', BN, ReLU,
 * ZeroPadding2D(1) + MaxPooling2D 3×3/2; four stages of bottleneck blocks (1×1/stride, 3×3, 1×1 ×4,
 * projection shortcut in each stage's first block, Add, ReLU) of 64/128/256/512 (×4 out) channels;
 * GlobalAveragePooling2D, Dense softmax.
 */
export function buildResNet50Shaped(opts: ResNet50ShapeOptions = {}): tfl.LayersModel {
  const what = 'buildResNet50Shaped';
  const { inputShape, numClasses } = checkCommon(opts, what, 32);
  const width = positive(opts.width ?? 1, 'width', what);
  const blocks = opts.blocks ?? [3, 4, 6, 3];
  if (blocks.length !== 4 || blocks.some((b) => !Number.isInteger(b) || b < 1)) {
    throw new OptionError(`${what}: expected blocks as four positive integers; got [${blocks.join(', ')}]`);
  }
  const ctx: Ctx = { rng: createRng(opts.seed ?? 0) };
  const ch = (c: number) => Math.max(1, Math.round(c * width));
  const input = tfl.input({ shape: inputShape, name: 'input_1' });
  let x = apply(tfl.layers.zeroPadding2d({ name: 'conv1_pad', padding: 3 }), input);
  x = conv(ctx, x, 'conv1_conv', ch(64), 7, 2, 'valid', true);
  x = relu(bn(x, 'conv1_bn', 1.001e-5), 'conv1_relu');
  x = apply(tfl.layers.zeroPadding2d({ name: 'pool1_pad', padding: 1 }), x);
  x = apply(tfl.layers.maxPooling2d({ name: 'pool1_pool', poolSize: 3, strides: 2, padding: 'valid' }), x);
  [64, 128, 256, 512].forEach((f, s) => {
    for (let b = 0; b < blocks[s]; b++) {
      x = bottleneck(ctx, x, ch(f), b === 0 && s > 0 ? 2 : 1, b === 0, `conv${s + 2}_block${b + 1}`);
    }
  });
  x = apply(tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }), x);
  const out = classifierHead(ctx, x, numClasses, opts.softmax ?? true);
  const model = tfl.model({ inputs: input, outputs: out, name: opts.name ?? 'resnet50-shaped' });
  calibrate(model, ctx.rng, opts.calibrationImages ?? 4);
  return model;
}

// ---- Inception -----------------------------------------------------------------------------------

/** Keras InceptionV3's conv2d_bn: Conv2D without bias, BN without scale (ε 1e-3), ReLU. */
function convBn(ctx: Ctx, x: SymbolicTensor, name: string, filters: number, k: number | [number, number], strides = 1, padding: 'same' | 'valid' = 'same'): SymbolicTensor {
  const y = conv(ctx, x, `${name}_conv`, filters, k, strides, padding, false);
  return relu(bn(y, `${name}_bn`, 1e-3, false), name);
}

const concat = (xs: SymbolicTensor[], name: string) => apply(tfl.layers.concatenate({ name, axis: -1 }), xs);
const avgPool3 = (x: SymbolicTensor, name: string) => apply(tfl.layers.averagePooling2d({ name, poolSize: 3, strides: 1, padding: 'same' }), x);
const maxPool3 = (x: SymbolicTensor, name: string, padding: 'same' | 'valid' = 'valid') =>
  apply(tfl.layers.maxPooling2d({ name, poolSize: 3, strides: 2, padding }), x);

/**
 * InceptionV3-like (Keras layout, reduced to its block kinds): stem of 3×3 convolutions (stride 2
 * 'valid') and 3×3/2 max pools; A blocks (1×1 | 1×1→5×5 | 1×1→3×3→3×3 | AveragePooling2D 3×3/1
 * 'same'→1×1, Concatenate); reduction B (3×3/2 | 1×1→3×3→3×3/2 | max pool 3×3/2); C blocks
 * (factorised 1×7/7×1 branches); reduction D; E blocks (branches split into parallel 1×3 and 3×1,
 * nested Concatenate); GlobalAveragePooling2D (or Flatten), Dense softmax. Every convolution is
 * Conv2D (no bias) + BN without gamma + ReLU. Input at least 75×75.
 */
export function buildInceptionShaped(opts: InceptionShapeOptions = {}): tfl.LayersModel {
  const what = 'buildInceptionShaped';
  const { inputShape, numClasses } = checkCommon(opts, what, 75);
  const width = positive(opts.width ?? 1, 'width', what);
  const nA = opts.blocks?.a ?? 3;
  const nC = opts.blocks?.c ?? 4;
  const nE = opts.blocks?.e ?? 2;
  for (const [k, v] of [['a', nA], ['c', nC], ['e', nE]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new OptionError(`${what}: expected blocks.${k} to be an integer ≥ 0; got ${v}`);
  }
  const ctx: Ctx = { rng: createRng(opts.seed ?? 0) };
  const ch = (c: number) => Math.max(1, Math.round(c * width));
  const input = tfl.input({ shape: inputShape, name: 'input_1' });
  let x = convBn(ctx, input, 'stem1', ch(32), 3, 2, 'valid');
  x = convBn(ctx, x, 'stem2', ch(32), 3, 1, 'valid');
  x = convBn(ctx, x, 'stem3', ch(64), 3);
  x = maxPool3(x, 'stem_pool1');
  x = convBn(ctx, x, 'stem4', ch(80), 1, 1, 'valid');
  x = convBn(ctx, x, 'stem5', ch(192), 3, 1, 'valid');
  x = maxPool3(x, 'stem_pool2');
  let m = 0;
  for (let i = 0; i < nA; i++, m++) {
    const p = `mixed${m}`;
    const b1 = convBn(ctx, x, `${p}_1x1`, ch(64), 1);
    const b5 = convBn(ctx, convBn(ctx, x, `${p}_5x5a`, ch(48), 1), `${p}_5x5b`, ch(64), 5);
    let b3 = convBn(ctx, x, `${p}_3x3a`, ch(64), 1);
    b3 = convBn(ctx, convBn(ctx, b3, `${p}_3x3b`, ch(96), 3), `${p}_3x3c`, ch(96), 3);
    const bp = convBn(ctx, avgPool3(x, `${p}_avgpool`), `${p}_pool`, ch(i === 0 ? 32 : 64), 1);
    x = concat([b1, b5, b3, bp], p);
  }
  {
    const p = `mixed${m++}`;
    const b3 = convBn(ctx, x, `${p}_3x3`, ch(384), 3, 2, 'valid');
    let bd = convBn(ctx, x, `${p}_dbl_a`, ch(64), 1);
    bd = convBn(ctx, convBn(ctx, bd, `${p}_dbl_b`, ch(96), 3), `${p}_dbl_c`, ch(96), 3, 2, 'valid');
    x = concat([b3, bd, maxPool3(x, `${p}_maxpool`)], p);
  }
  for (let i = 0; i < nC; i++, m++) {
    const p = `mixed${m}`;
    const mid = ch(i === 0 ? 128 : 160);
    const b1 = convBn(ctx, x, `${p}_1x1`, ch(192), 1);
    let b7 = convBn(ctx, x, `${p}_7x7a`, mid, 1);
    b7 = convBn(ctx, convBn(ctx, b7, `${p}_7x7b`, mid, [1, 7]), `${p}_7x7c`, ch(192), [7, 1]);
    let bd = convBn(ctx, x, `${p}_dbl_a`, mid, 1);
    bd = convBn(ctx, convBn(ctx, bd, `${p}_dbl_b`, mid, [7, 1]), `${p}_dbl_c`, ch(192), [1, 7]);
    const bp = convBn(ctx, avgPool3(x, `${p}_avgpool`), `${p}_pool`, ch(192), 1);
    x = concat([b1, b7, bd, bp], p);
  }
  {
    const p = `mixed${m++}`;
    const b3 = convBn(ctx, convBn(ctx, x, `${p}_3x3a`, ch(192), 1), `${p}_3x3b`, ch(320), 3, 2, 'valid');
    let b7 = convBn(ctx, x, `${p}_7x7a`, ch(192), 1);
    b7 = convBn(ctx, convBn(ctx, b7, `${p}_7x7b`, ch(192), [1, 7]), `${p}_7x7c`, ch(192), [7, 1]);
    b7 = convBn(ctx, b7, `${p}_7x7d`, ch(192), 3, 2, 'valid');
    x = concat([b3, b7, maxPool3(x, `${p}_maxpool`)], p);
  }
  for (let i = 0; i < nE; i++, m++) {
    const p = `mixed${m}`;
    const b1 = convBn(ctx, x, `${p}_1x1`, ch(320), 1);
    const b3 = convBn(ctx, x, `${p}_3x3`, ch(384), 1);
    const b3s = concat([convBn(ctx, b3, `${p}_3x3_1x3`, ch(384), [1, 3]), convBn(ctx, b3, `${p}_3x3_3x1`, ch(384), [3, 1])], `${p}_3x3_cat`);
    let bd = convBn(ctx, x, `${p}_dbl_a`, ch(448), 1);
    bd = convBn(ctx, bd, `${p}_dbl_b`, ch(384), 3);
    const bds = concat([convBn(ctx, bd, `${p}_dbl_1x3`, ch(384), [1, 3]), convBn(ctx, bd, `${p}_dbl_3x1`, ch(384), [3, 1])], `${p}_dbl_cat`);
    const bp = convBn(ctx, avgPool3(x, `${p}_avgpool`), `${p}_pool`, ch(192), 1);
    x = concat([b1, b3s, bds, bp], p);
  }
  x = (opts.head ?? 'gap') === 'gap'
    ? apply(tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }), x)
    : apply(tfl.layers.flatten({ name: 'flatten' }), x);
  const out = classifierHead(ctx, x, numClasses, opts.softmax ?? true);
  const model = tfl.model({ inputs: input, outputs: out, name: opts.name ?? 'inception-shaped' });
  calibrate(model, ctx.rng, opts.calibrationImages ?? 4);
  return model;
}

// ---- calibration -----------------------------------------------------------------------------

/** 3 significant digits, as float32: the same statistics whichever backend computed them. */
function round3(v: number): number {
  if (v === 0 || !Number.isFinite(v)) return 0;
  const e = Math.floor(Math.log10(Math.abs(v))) - 2;
  return Math.fround(Math.round(v / 10 ** e) * 10 ** e);
}

/**
 * Seeded images in [0, 1] from smooth to rough: 7×7 uniform noise scaled up bilinearly plus pixel
 * noise whose amplitude grows from 0.05 (photo-like) to 1 (near uniform noise) over the batch, so the
 * statistics cover both kinds of input a test or a benchmark may feed.
 */
function calibrationBatch(shape: [number, number, number], n: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const coarse = tf.randomUniform([n, 7, 7, shape[2]], 0, 1, 'float32', seed) as tf.Tensor4D;
    const smooth = tf.image.resizeBilinear(coarse, [shape[0], shape[1]], true);
    const amp = tf.tensor(Array.from({ length: n }, (_, i) => (n === 1 ? 0.05 : 0.05 * 20 ** (i / (n - 1)))), [n, 1, 1, 1]);
    const fine = tf.mul(tf.randomUniform([n, ...shape], -1, 1, 'float32', seed + 1), amp);
    return tf.clipByValue(tf.add(smooth, fine), 0, 1) as tf.Tensor4D;
  });
}

interface InboundNode { inputTensors: SymbolicTensor[] }

/**
 * One forward pass over a seeded batch, layer by layer: each BatchNormalization gets statistics of
 * its own input (perturbed) and random gamma/beta before it is applied, so every later layer sees
 * normalised activations. Finally the classifier Dense is rescaled so the logits have std ≈ 4.
 * Which BNs feed a ReLU6 get a wider gamma (up to 3) and a positive beta, so some units saturate.
 */
function calibrate(model: tfl.LayersModel, rng: Rng, images: number): void {
  const shape = model.inputs[0].shape.slice(1) as [number, number, number];
  const consumers = new Map<string, string[]>();
  for (const layer of model.layers) {
    for (const node of (layer as unknown as { inboundNodes: InboundNode[] }).inboundNodes) {
      for (const t of node.inputTensors) consumers.set(t.sourceLayer.name, [...(consumers.get(t.sourceLayer.name) ?? []), layer.getClassName() + ':' + layer.name]);
    }
  }
  const feedsRelu6 = (name: string) => (consumers.get(name) ?? []).some((c) => c.startsWith('ReLU:'));
  const feedsAdd = (name: string) => (consumers.get(name) ?? []).some((c) => c.startsWith('Add:'));
  const values = new Map<number, tf.Tensor>();
  const x = calibrationBatch(shape, images, nextSeed(rng) % 100000);
  values.set(model.inputs[0].id, x);
  try {
    for (const layer of model.layers) {
      if (layer.getClassName() === 'InputLayer') continue;
      const inbound = (layer as unknown as { inboundNodes: InboundNode[] }).inboundNodes[0];
      const ins = inbound.inputTensors.map((t) => values.get(t.id)!);
      if (layer.getClassName() === 'BatchNormalization') setBatchNorm(layer, ins[0], rng, feedsRelu6(layer.name), feedsAdd(layer.name));
      if (layer.name === 'predictions') scaleDense(layer, ins[0]);
      const out = tf.tidy(() => layer.apply(ins.length === 1 ? ins[0] : ins) as tf.Tensor);
      values.set(layer.output instanceof Array ? (layer.output as SymbolicTensor[])[0].id : (layer.output as SymbolicTensor).id, out);
    }
  } finally {
    tf.dispose([...values.values()]);
  }
}

function setBatchNorm(layer: tfl.layers.Layer, input: tf.Tensor, rng: Rng, beforeRelu6: boolean, beforeAdd: boolean): void {
  const { mean, variance } = tf.tidy(() => tf.moments(input, [0, 1, 2]));
  const mu = mean.dataSync();
  const va = variance.dataSync();
  tf.dispose([mean, variance]);
  const c = mu.length;
  // a floor at a quarter of the median variance: on small maps (few samples per channel) a channel's
  // batch variance can be near 0, and dividing by it would blow up any other input
  const floor = 0.25 * [...va].sort((a, b) => a - b)[Math.floor(c / 2)] + 1e-6;
  const gamma = new Float32Array(c);
  const beta = new Float32Array(c);
  const mm = new Float32Array(c);
  const mv = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const sd = Math.sqrt(Math.max(va[i], floor));
    mm[i] = round3(mu[i] + 0.1 * sd * gaussian(rng));
    mv[i] = round3(Math.max(va[i], floor) * (0.8 + 0.45 * rng()));
    if (beforeRelu6) {
      gamma[i] = round3(1 + 2 * rng());
      beta[i] = round3(0.5 + 1.5 * rng());
    } else if (beforeAdd) {
      // the last BN of a residual branch: small, as in trained residual nets, so the sum stays O(1)
      gamma[i] = round3(0.2 + 0.4 * rng());
      beta[i] = round3(0.2 * gaussian(rng));
    } else {
      gamma[i] = round3(0.6 + 0.8 * rng());
      beta[i] = round3(0.3 * gaussian(rng) + 0.2);
    }
  }
  const byName: Record<string, Float32Array> = { gamma, beta, moving_mean: mm, moving_variance: mv };
  const fresh = layer.weights.map((w) => {
    const key = Object.keys(byName).find((k) => (w.originalName ?? w.name).endsWith(k))!;
    return tf.tensor(byName[key], w.shape as number[]);
  });
  layer.setWeights(fresh);
  tf.dispose(fresh);
}

function scaleDense(layer: tfl.layers.Layer, input: tf.Tensor): void {
  const [k, b] = layer.getWeights();
  const scaled = tf.tidy(() => {
    const z = tf.matMul(input as tf.Tensor2D, k as tf.Tensor2D);
    const sd = Math.sqrt(tf.moments(z).variance.dataSync()[0]) || 1;
    return tf.mul(k, 4 / sd);
  });
  layer.setWeights([scaled, b]);
  scaled.dispose();
}
