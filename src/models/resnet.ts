/**
 * ResNet-style networks as functional tf.LayersModels whose output is the logits (no softmax), built
 * only from layer types Classifier.fromModel executes (Conv2D, BatchNormalization, Activation,
 * ZeroPadding2D, MaxPooling2D, Add, GlobalAveragePooling2D, Dense).
 *
 * - buildResNet18: the ResNet-18 shape (He et al. 2016, torchvision layout): 7×7/2 stem conv, 3×3/2
 *   max-pool, 4 stages × 2 basic blocks of 64/128/256/512 channels, 1×1/2 projection shortcuts, GAP, Dense.
 * - buildSmallResNet: a stem conv and three stages of one basic block each (width, 2·width, 4·width;
 *   stride 2 from the second), for 28×28 inputs such as MNIST.
 *
 * Weights are seeded (He-normal convolutions, Glorot-uniform Dense). Layer names are stable:
 * `conv1`, `bn1`, `relu1`, `pool1`, `stageS_blockB_{conv1,bn1,relu1,conv2,bn2,proj,proj_bn,add,relu}`,
 * `gap`, `fc`.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { OptionError } from '../core/errors.js';
import { createRng, nextSeed, type Rng } from '../util/random.js';

export interface ResNetOptions {
  /** [height, width, channels]. */
  inputShape?: [number, number, number];
  numClasses?: number;
  /** Seed of the weight initialisers; default 0. */
  seed?: number;
  name?: string;
}

export interface SmallResNetOptions extends ResNetOptions {
  /** Channels of the first stage (doubled at each later stage); default 16. */
  width?: number;
}

type SymbolicTensor = tfl.SymbolicTensor;

function check(inputShape: [number, number, number], numClasses: number, what: string): void {
  if (inputShape.length !== 3 || inputShape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new OptionError(`${what}: expected inputShape [height, width, channels] of positive integers; got [${inputShape.join(', ')}]`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new OptionError(`${what}: expected numClasses ≥ 2; got ${numClasses}`);
  }
}

function conv(x: SymbolicTensor, name: string, filters: number, kernelSize: number, strides: number, padding: 'same' | 'valid', rng: Rng): SymbolicTensor {
  return tfl.layers.conv2d({
    name, filters, kernelSize, strides, padding, useBias: false,
    kernelInitializer: tfl.initializers.heNormal({ seed: nextSeed(rng) }),
  }).apply(x) as SymbolicTensor;
}

function bn(x: SymbolicTensor, name: string): SymbolicTensor {
  return tfl.layers.batchNormalization({ name, axis: -1, momentum: 0.9, epsilon: 1e-5 }).apply(x) as SymbolicTensor;
}

function relu(x: SymbolicTensor, name: string): SymbolicTensor {
  return tfl.layers.activation({ name, activation: 'relu' }).apply(x) as SymbolicTensor;
}

/** Basic block: conv3×3(stride)–BN–ReLU–conv3×3–BN, plus the shortcut (1×1/stride conv + BN when the shape changes), then ReLU. */
function basicBlock(x: SymbolicTensor, prefix: string, filters: number, strides: number, rng: Rng): SymbolicTensor {
  const inChannels = x.shape[x.shape.length - 1] as number;
  let y = conv(x, `${prefix}_conv1`, filters, 3, strides, 'same', rng);
  y = relu(bn(y, `${prefix}_bn1`), `${prefix}_relu1`);
  y = conv(y, `${prefix}_conv2`, filters, 3, 1, 'same', rng);
  y = bn(y, `${prefix}_bn2`);
  let shortcut = x;
  if (strides !== 1 || inChannels !== filters) {
    shortcut = bn(conv(x, `${prefix}_proj`, filters, 1, strides, 'valid', rng), `${prefix}_proj_bn`);
  }
  const sum = tfl.layers.add({ name: `${prefix}_add` }).apply([y, shortcut]) as SymbolicTensor;
  return relu(sum, `${prefix}_relu`);
}

function head(x: SymbolicTensor, numClasses: number, rng: Rng): SymbolicTensor {
  const g = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as SymbolicTensor;
  return tfl.layers.dense({
    name: 'fc', units: numClasses,
    kernelInitializer: tfl.initializers.glorotUniform({ seed: nextSeed(rng) }),
  }).apply(g) as SymbolicTensor;
}

/** ResNet-18 (basic blocks [2, 2, 2, 2]); default input 224×224×3, 1000 classes. Output: logits. */
export function buildResNet18(opts: ResNetOptions = {}): tfl.LayersModel {
  const inputShape = opts.inputShape ?? [224, 224, 3];
  const numClasses = opts.numClasses ?? 1000;
  check(inputShape, numClasses, 'buildResNet18');
  const rng = createRng(opts.seed ?? 0);
  const input = tfl.input({ shape: inputShape, name: 'input' });
  let x = tfl.layers.zeroPadding2d({ name: 'pad1', padding: 3 }).apply(input) as SymbolicTensor;
  x = conv(x, 'conv1', 64, 7, 2, 'valid', rng);
  x = relu(bn(x, 'bn1'), 'relu1');
  x = tfl.layers.zeroPadding2d({ name: 'pad2', padding: 1 }).apply(x) as SymbolicTensor;
  x = tfl.layers.maxPooling2d({ name: 'pool1', poolSize: 3, strides: 2, padding: 'valid' }).apply(x) as SymbolicTensor;
  const widths = [64, 128, 256, 512];
  widths.forEach((w, s) => {
    for (let b = 0; b < 2; b++) x = basicBlock(x, `stage${s + 1}_block${b + 1}`, w, s > 0 && b === 0 ? 2 : 1, rng);
  });
  return tfl.model({ inputs: input, outputs: head(x, numClasses, rng), name: opts.name ?? 'resnet18' });
}

/**
 * A small residual net for 28×28 inputs: conv3×3(width)–BN–ReLU, then one basic block per stage
 * at width, 2·width (stride 2), 4·width (stride 2), GAP, Dense. Output: logits.
 */
export function buildSmallResNet(opts: SmallResNetOptions = {}): tfl.LayersModel {
  const inputShape = opts.inputShape ?? [28, 28, 1];
  const numClasses = opts.numClasses ?? 10;
  const width = opts.width ?? 16;
  check(inputShape, numClasses, 'buildSmallResNet');
  if (!Number.isInteger(width) || width < 1) throw new OptionError(`buildSmallResNet: expected a positive integer width; got ${width}`);
  const rng = createRng(opts.seed ?? 0);
  const input = tfl.input({ shape: inputShape, name: 'input' });
  let x = conv(input, 'conv1', width, 3, 1, 'same', rng);
  x = relu(bn(x, 'bn1'), 'relu1');
  [width, 2 * width, 4 * width].forEach((w, s) => {
    x = basicBlock(x, `stage${s + 1}_block1`, w, s === 0 ? 1 : 2, rng);
  });
  return tfl.model({ inputs: input, outputs: head(x, numClasses, rng), name: opts.name ?? 'small-resnet' });
}
