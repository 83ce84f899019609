/**
 * A LayersModel as a flat, topologically ordered list of nodes that Glasswing executes itself.
 *
 * Why not model.predict: methods need to (a) read any intermediate activation, (b) restart the
 * network from an activation (split), and (c) replace the backward pass of single operations
 * (guided backprop's ReLU, LRP's linear layers) for the duration of one call only. Executing the
 * graph op by op with plain tfjs ops gives all three, keeps fused activations separate (so a rule
 * can replace the ReLU), and avoids tfjs' fused conv+BN kernels whose gradient fails on wasm.
 *
 * Node naming: a layer's node carries the layer's name and produces the layer's output. A layer
 * with a fused activation becomes two nodes: `NAME/preact` (the linear part) and `NAME` (the
 * activation), so `NAME` still means "what Keras' layer NAME outputs". A SeparableConv2D becomes
 * `NAME/depthwise` (a depthwise-conv2d node, no bias) followed by its 1×1 pointwise conv2d node, so
 * every method (and every relevance rule) sees two ordinary linear layers.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { UnsupportedLayerError } from './errors.js';
import type { InputTransformSpec } from './domain.js';
import { applyInputTransform } from './input-transform.js';
import { avgPoolExact } from './avg-pool.js';

export type NodeKind =
  | 'input'
  | 'transform'
  | 'dense'
  | 'conv2d'
  | 'depthwise-conv2d'
  | 'conv2d-transpose'
  | 'activation'
  | 'maxpool'
  | 'avgpool'
  | 'global-avgpool'
  | 'global-maxpool'
  | 'flatten'
  | 'reshape'
  | 'zeropad'
  | 'crop'
  | 'upsample'
  | 'permute'
  | 'add'
  | 'multiply'
  | 'concat'
  | 'batchnorm'
  | 'identity';

export type Padding = 'same' | 'valid';

export interface NodeParams {
  /** Linear layers: kernel and optional bias, read fresh on every call (training updates them). */
  kernel?: () => tf.Tensor;
  bias?: () => tf.Tensor | undefined;
  strides?: [number, number];
  padding?: Padding;
  dilation?: [number, number];
  poolSize?: [number, number];
  /** activation name: one of ACTIVATIONS (relu, relu6, leakyrelu, prelu, elu, swish, gelu, …) */
  activation?: string;
  /** leakyrelu slope for x < 0 */
  alpha?: number;
  /** relu: clip at this value (Keras ReLU max_value; 6 is written as activation relu6) */
  maxValue?: number;
  /** relu: values below this give negativeSlope·(x − threshold) (Keras ReLU threshold; ThresholdedReLU theta) */
  threshold?: number;
  /** relu: slope below the threshold (Keras ReLU negative_slope) */
  negativeSlope?: number;
  /** prelu: the learned slopes, broadcast against the input */
  slope?: () => tf.Tensor;
  /** softmax: axis (default −1) */
  targetShape?: number[];
  axis?: number;
  /** zero padding / cropping [[top, bottom], [left, right]] */
  pad?: [[number, number], [number, number]];
  /** zeropad: the constant written into the border (default 0; a graph model's PadV2 may set another) */
  padValue?: number;
  /** upsample: factors [rows, cols] and interpolation */
  size?: [number, number];
  interpolation?: 'nearest' | 'bilinear';
  /** permute: axes of the output, batch included ([0, ...Keras dims]) */
  perm?: number[];
  /** batch norm (inference form): y = (x − mean) / sqrt(variance + epsilon) · gamma + beta */
  batchNorm?: () => { mean: tf.Tensor; variance: tf.Tensor; gamma?: tf.Tensor; beta?: tf.Tensor; epsilon: number };
  transform?: InputTransformSpec;
}

export interface GraphNode {
  name: string;
  kind: NodeKind;
  /** Keras layer this node came from (both nodes of a split layer point to it). */
  layerName: string;
  layerClass: string;
  inputs: string[];
  params: NodeParams;
  /** Output shape without the batch dimension. */
  shape: number[];
}

export interface Graph {
  nodes: GraphNode[];
  byName: Map<string, GraphNode>;
  output: string;
  /**
   * Names of the source model's nodes that were resolved away or merged (a graph model's Identity,
   * a Conv2D merged with its BiasAdd, …) → the node that computes their value; for error messages.
   */
  aliases?: Map<string, string>;
}

/** Replace how one node is computed (e.g. a ReLU with a custom gradient). Return undefined to keep it. */
export type NodeOverride = (node: GraphNode, inputs: tf.Tensor[], standard: (inputs: tf.Tensor[]) => tf.Tensor) => tf.Tensor | undefined;

export interface RunOptions {
  override?: NodeOverride;
  /** Node names whose outputs to return. */
  capture?: Iterable<string>;
  /** Values to use instead of computing these nodes (split: restart from an activation). */
  substitute?: Map<string, tf.Tensor>;
  /** Stop after computing this node and return it as the output. */
  until?: string;
  /** Output node (default: the graph's output). */
  output?: string;
}

const SUPPORTED = [
  'InputLayer', 'InputTransform', 'Dense', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Conv2DTranspose',
  'Activation', 'ReLU', 'LeakyReLU', 'PReLU', 'ELU', 'ThresholdedReLU',
  'Softmax', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'Flatten',
  'Reshape', 'Permute', 'ZeroPadding2D', 'Cropping2D', 'UpSampling2D', 'Add', 'Multiply', 'Concatenate',
  'BatchNormalization', 'Dropout', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout',
];
export const SUPPORTED_LAYER_CLASSES: readonly string[] = SUPPORTED;

function pair(v: unknown, fallback: number): [number, number] {
  if (v == null) return [fallback, fallback];
  if (Array.isArray(v)) return [Number(v[0]), Number(v[1] ?? v[0])];
  return [Number(v), Number(v)];
}

/** Activation names as Glasswing writes them (Keras/tfjs spellings mapped: hardSigmoid → hard_sigmoid, silu → swish). */
const ACTIVATION_ALIASES: Record<string, string> = {
  hardsigmoid: 'hard_sigmoid', hard_sigmoid: 'hard_sigmoid', silu: 'swish', swish: 'swish', gelu_new: 'gelu_new', gelunew: 'gelu_new',
  logsoftmax: 'log_softmax', log_softmax: 'log_softmax',
};

function canonicalActivation(name: string): string {
  const lower = name.toLowerCase();
  return ACTIVATION_ALIASES[lower] ?? lower;
}

function activationName(cfg: tf.serialization.ConfigDict): string {
  const a = cfg.activation as unknown;
  if (a == null) return 'linear';
  if (typeof a === 'string') return canonicalActivation(a);
  if (typeof a === 'object' && a && 'className' in a) return canonicalActivation(String((a as { className: string }).className));
  return 'linear';
}

interface WeightVariable { name: string; originalName?: string; read(): tf.Tensor }

function weightsOf(layer: tfl.layers.Layer): WeightVariable[] {
  return layer.weights as unknown as WeightVariable[];
}

function readWeight(layer: tfl.layers.Layer, suffix: string): (() => tf.Tensor) | undefined {
  const v = weightsOf(layer).find((w) => {
    const n = w.originalName ?? w.name;
    return n.endsWith('/' + suffix) || n === suffix;
  });
  if (!v) return undefined;
  return () => v.read();
}

function batchShape(layer: tfl.layers.Layer): number[] {
  const s = layer.outputShape as unknown;
  const shape = (Array.isArray(s) && Array.isArray(s[0]) ? s[0] : s) as (number | null)[];
  return shape.slice(1).map((d) => (d == null ? -1 : d));
}

/** Build the node list of a LayersModel (Sequential or functional, single input and output). */
export function buildGraph(model: tfl.LayersModel): Graph {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new UnsupportedLayerError(
      `expected a model with one input and one output; got ${model.inputs.length} inputs and ${model.outputs.length} outputs`,
    );
  }
  const nodes: GraphNode[] = [];
  const inputLayerName = model.inputs[0].sourceLayer.name;
  const inputShape = model.inputs[0].shape.slice(1).map((d) => (d == null ? -1 : d));
  nodes.push({ name: 'input', kind: 'input', layerName: inputLayerName, layerClass: 'InputLayer', inputs: [], params: {}, shape: inputShape });
  const rename = new Map<string, string>([[inputLayerName, 'input']]);

  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer') continue;
    if (!SUPPORTED.includes(cls)) {
      throw new UnsupportedLayerError(
        `layer "${layer.name}" has type ${cls}, which Glasswing does not support; supported: ${SUPPORTED.join(', ')}`,
      );
    }
    const inbound = (layer as unknown as { inboundNodes: Array<{ inboundLayers: tfl.layers.Layer[] }> }).inboundNodes;
    const inputs = (inbound[0]?.inboundLayers ?? []).map((l) => rename.get(l.name) ?? l.name);
    const cfg = layer.getConfig();
    const shape = batchShape(layer);
    const base = { layerName: layer.name, layerClass: cls, shape };
    const push = (kind: NodeKind, params: NodeParams, name = layer.name, ins = inputs) =>
      nodes.push({ ...base, name, kind, params, inputs: ins });

    const withActivation = (kind: NodeKind, params: NodeParams) => {
      const act = activationName(cfg);
      if (act === 'linear') {
        push(kind, params);
      } else {
        push(kind, params, `${layer.name}/preact`);
        push('activation', { activation: act }, layer.name, [`${layer.name}/preact`]);
      }
    };

    switch (cls) {
      case 'InputTransform': {
        const t = layer as unknown as { spec(): InputTransformSpec };
        push('transform', { transform: t.spec() });
        break;
      }
      case 'Dense':
        withActivation('dense', { kernel: readWeight(layer, 'kernel'), bias: readWeight(layer, 'bias') ?? (() => undefined) });
        break;
      case 'Conv2D':
        if (cfg.dataFormat && cfg.dataFormat !== 'channelsLast') {
          throw new UnsupportedLayerError(`layer "${layer.name}": expected dataFormat channelsLast; got ${cfg.dataFormat}`);
        }
        withActivation('conv2d', {
          kernel: readWeight(layer, 'kernel'),
          bias: readWeight(layer, 'bias') ?? (() => undefined),
          strides: pair(cfg.strides, 1),
          padding: (cfg.padding as Padding) ?? 'valid',
          dilation: pair(cfg.dilationRate, 1),
        });
        break;
      case 'SeparableConv2D': {
        if (cfg.dataFormat && cfg.dataFormat !== 'channelsLast') {
          throw new UnsupportedLayerError(`layer "${layer.name}": expected dataFormat channelsLast; got ${cfg.dataFormat}`);
        }
        // depthwise part (strides, padding, dilation) then the 1×1 pointwise conv with the bias
        const dwName = `${layer.name}/depthwise`;
        const dk = readWeight(layer, 'depthwise_kernel')!;
        const k = Number(dk().shape[2]) * Number(dk().shape[3]);
        const inShape = nodes.find((n) => n.name === inputs[0])?.shape ?? [];
        const strides = pair(cfg.strides, 1);
        const padding = (cfg.padding as Padding) ?? 'valid';
        const dwShape = [shape[0], shape[1], k];
        if (inShape.length !== 3) throw new UnsupportedLayerError(`layer "${layer.name}" (SeparableConv2D): expected a rank-4 input`);
        nodes.push({ ...base, shape: dwShape, name: dwName, kind: 'depthwise-conv2d', inputs, params: {
          kernel: dk, bias: () => undefined, strides, padding, dilation: pair(cfg.dilationRate, 1),
        } });
        const pointwise = { kernel: readWeight(layer, 'pointwise_kernel'), bias: readWeight(layer, 'bias') ?? (() => undefined), strides: [1, 1] as [number, number], padding: 'valid' as Padding, dilation: [1, 1] as [number, number] };
        const act = activationName(cfg);
        if (act === 'linear') {
          push('conv2d', pointwise, layer.name, [dwName]);
        } else {
          push('conv2d', pointwise, `${layer.name}/preact`, [dwName]);
          push('activation', { activation: act }, layer.name, [`${layer.name}/preact`]);
        }
        break;
      }
      case 'Conv2DTranspose':
        if (cfg.dataFormat && cfg.dataFormat !== 'channelsLast') {
          throw new UnsupportedLayerError(`layer "${layer.name}": expected dataFormat channelsLast; got ${cfg.dataFormat}`);
        }
        withActivation('conv2d-transpose', {
          kernel: readWeight(layer, 'kernel'),
          bias: readWeight(layer, 'bias') ?? (() => undefined),
          strides: pair(cfg.strides, 1),
          padding: (cfg.padding as Padding) ?? 'valid',
          dilation: [1, 1],
        });
        break;
      case 'DepthwiseConv2D':
        withActivation('depthwise-conv2d', {
          kernel: readWeight(layer, 'depthwise_kernel'),
          bias: readWeight(layer, 'bias') ?? (() => undefined),
          strides: pair(cfg.strides, 1),
          padding: (cfg.padding as Padding) ?? 'valid',
          dilation: pair(cfg.dilationRate, 1),
        });
        break;
      case 'Activation':
        push('activation', { activation: activationName(cfg) });
        break;
      case 'ReLU': {
        // Keras ReLU(max_value, negative_slope, threshold); tfjs-layers keeps only maxValue, a config may carry all three
        const maxValue = cfg.maxValue == null ? undefined : Number(cfg.maxValue);
        const threshold = Number(cfg.threshold ?? 0);
        const negativeSlope = Number(cfg.negativeSlope ?? cfg.negative_slope ?? 0);
        if (maxValue === 6 && threshold === 0 && negativeSlope === 0) push('activation', { activation: 'relu6' });
        else if (maxValue === undefined && threshold === 0 && negativeSlope === 0) push('activation', { activation: 'relu' });
        else push('activation', { activation: 'relu', maxValue, threshold, negativeSlope });
        break;
      }
      case 'ThresholdedReLU':
        push('activation', { activation: 'thresholded-relu', threshold: Number(cfg.theta ?? 1) });
        break;
      case 'LeakyReLU':
        push('activation', { activation: 'leakyrelu', alpha: Number(cfg.alpha ?? 0.3) });
        break;
      case 'PReLU':
        push('activation', { activation: 'prelu', slope: readWeight(layer, 'alpha') });
        break;
      case 'ELU':
        push('activation', { activation: 'elu', alpha: Number(cfg.alpha ?? 1) });
        break;
      case 'Softmax':
        push('activation', { activation: 'softmax', axis: Number(cfg.axis ?? -1) });
        break;
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const poolSize = pair(cfg.poolSize, 2);
        push(cls === 'MaxPooling2D' ? 'maxpool' : 'avgpool', {
          poolSize,
          strides: cfg.strides == null ? poolSize : pair(cfg.strides, 1),
          padding: (cfg.padding as Padding) ?? 'valid',
        });
        break;
      }
      case 'GlobalAveragePooling2D':
        push('global-avgpool', {});
        break;
      case 'GlobalMaxPooling2D':
        push('global-maxpool', {});
        break;
      case 'Flatten':
        push('flatten', {});
        break;
      case 'Reshape':
        push('reshape', { targetShape: (cfg.targetShape as number[]).slice() });
        break;
      case 'ZeroPadding2D': {
        const p = cfg.padding as unknown;
        let pad: [[number, number], [number, number]];
        if (typeof p === 'number') pad = [[p, p], [p, p]];
        else if (Array.isArray(p) && typeof p[0] === 'number') pad = [[p[0], p[0]], [Number(p[1]), Number(p[1])]];
        else pad = p as [[number, number], [number, number]];
        push('zeropad', { pad });
        break;
      }
      case 'Cropping2D': {
        const c = cfg.cropping as unknown;
        let pad: [[number, number], [number, number]];
        if (typeof c === 'number') pad = [[c, c], [c, c]];
        else if (Array.isArray(c) && typeof c[0] === 'number') pad = [[c[0], c[0]], [Number(c[1]), Number(c[1])]];
        else pad = c as [[number, number], [number, number]];
        push('crop', { pad });
        break;
      }
      case 'UpSampling2D':
        push('upsample', { size: pair(cfg.size, 2), interpolation: cfg.interpolation === 'bilinear' ? 'bilinear' : 'nearest' });
        break;
      case 'Permute':
        push('permute', { perm: [0, ...(cfg.dims as number[])] });
        break;
      case 'Multiply':
        push('multiply', {});
        break;
      case 'Add':
        push('add', {});
        break;
      case 'Concatenate':
        push('concat', { axis: Number(cfg.axis ?? -1) });
        break;
      case 'BatchNormalization': {
        const axis = Number(cfg.axis ?? -1);
        if (axis !== -1 && axis !== shape.length) {
          throw new UnsupportedLayerError(`layer "${layer.name}": BatchNormalization must normalise the last axis; got axis ${axis}`);
        }
        const gamma = cfg.scale === false ? undefined : readWeight(layer, 'gamma');
        const beta = cfg.center === false ? undefined : readWeight(layer, 'beta');
        const mean = readWeight(layer, 'moving_mean')!;
        const variance = readWeight(layer, 'moving_variance')!;
        const epsilon = Number(cfg.epsilon ?? 1e-3);
        push('batchnorm', {
          batchNorm: () => ({ mean: mean(), variance: variance(), gamma: gamma?.(), beta: beta?.(), epsilon }),
        });
        break;
      }
      default: // dropout and noise layers are the identity at inference
        push('identity', {});
    }
    rename.set(layer.name, layer.name);
  }
  const outLayer = model.outputs[0].sourceLayer.name;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  return { nodes, byName, output: rename.get(outLayer) ?? outLayer };
}

/** Every activation the executor computes (as Activation layers, fused activations or activation layers). */
export const ACTIVATIONS: readonly string[] = [
  'linear', 'relu', 'relu6', 'thresholded-relu', 'leakyrelu', 'prelu', 'elu', 'selu', 'softplus', 'softsign', 'sigmoid',
  'hard_sigmoid', 'tanh', 'swish', 'mish', 'gelu', 'gelu_new', 'softmax', 'log_softmax',
];

/**
 * Keras ReLU: x ≥ max → max; threshold ≤ x < max → x; x < threshold → negativeSlope·(x − threshold).
 * The mask is a step() (comparisons have no gradient in tfjs), so the gradient is 1 on [threshold, max),
 * negativeSlope below, 0 above.
 */
function generalRelu(x: tf.Tensor, maxValue: number | undefined, threshold: number, negativeSlope: number): tf.Tensor {
  let y: tf.Tensor;
  if (threshold === 0 && negativeSlope === 0) {
    y = tf.relu(x);
  } else {
    const below = tf.step(tf.sub(threshold, x)); // 1 where x < threshold
    y = tf.add(tf.mul(x, tf.sub(1, below)), negativeSlope === 0 ? 0 : tf.mul(tf.mul(tf.sub(x, threshold), negativeSlope), below));
  }
  if (maxValue !== undefined && Number.isFinite(maxValue)) y = tf.minimum(y, maxValue);
  return y;
}

/** An activation by name, computed as tfjs-layers computes it (so logits equal model.predict). */
export function applyActivation(name: string, x: tf.Tensor, alpha = 0.3, params: NodeParams = {}): tf.Tensor {
  switch (name) {
    case 'relu':
      if (params.maxValue === undefined && !params.threshold && !params.negativeSlope) return tf.relu(x);
      return generalRelu(x, params.maxValue, params.threshold ?? 0, params.negativeSlope ?? 0);
    case 'relu6': return tf.relu6(x);
    // step() has a (zero) gradient, comparisons have none: masks are written with it
    case 'thresholded-relu': return tf.mul(x, tf.step(tf.sub(x, params.threshold ?? 1)));
    case 'linear': return x;
    case 'softmax': return tf.softmax(x, params.axis ?? -1);
    case 'log_softmax': return tf.logSoftmax(x, params.axis ?? -1);
    case 'sigmoid': return tf.sigmoid(x);
    case 'hard_sigmoid': return tf.clipByValue(tf.add(0.5, tf.mul(0.2, x)), 0, 1);
    case 'tanh': return tf.tanh(x);
    case 'elu': return (params.alpha ?? 1) === 1 ? tf.elu(x) : tf.where(tf.greater(x, 0), x, tf.mul(tf.sub(tf.exp(x), 1), params.alpha!));
    case 'selu': return tf.selu(x);
    case 'softplus': return tf.softplus(x);
    case 'softsign': return tf.div(x, tf.add(1, tf.abs(x)));
    case 'swish': return tf.mul(tf.sigmoid(x), x);
    case 'mish': return tf.mul(x, tf.tanh(tf.softplus(x)));
    case 'gelu': return tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.SQRT2)))));
    case 'gelu_new':
      return tf.mul(0.5, tf.mul(x, tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))))));
    case 'leakyrelu': return tf.leakyRelu(x, alpha);
    case 'prelu': return tf.prelu(x, params.slope!());
    default: throw new UnsupportedLayerError(`activation "${name}" is not supported; supported: ${ACTIVATIONS.join(', ')}`);
  }
}

/**
 * Row interpolation matrix [in·s, in] of tfjs' resizeBilinear (alignCorners false, halfPixelCenters
 * false): output row d reads rows floor(d/s) and min(that + 1, in − 1) with weights 1 − f and f.
 */
function bilinearMatrix(size: number, s: number): tf.Tensor2D {
  const out = size * s;
  const a = new Float32Array(out * size);
  for (let d = 0; d < out; d++) {
    const src = (d * size) / out;
    const top = Math.floor(src);
    const bottom = Math.min(size - 1, Math.ceil(src));
    const f = src - top;
    a[d * size + top] += 1 - f;
    a[d * size + bottom] += f;
  }
  return tf.tensor2d(a, [out, size]);
}

/**
 * UpSampling2D by integer factors, written with reshape/broadcast (nearest) or two matrix products
 * (bilinear) instead of tf.image.resize*: the same values as tfjs-layers' layer, and a gradient on
 * every backend (the wasm backend has no ResizeNearestNeighborGrad / ResizeBilinearGrad kernel).
 */
export function upsample(x: tf.Tensor4D, size: [number, number], interpolation: 'nearest' | 'bilinear'): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [sh, sw] = size;
  if (interpolation === 'nearest') {
    const e = tf.reshape(x, [n, h, 1, w, 1, c]);
    return tf.reshape(tf.mul(e, tf.ones([1, 1, sh, 1, sw, 1])), [n, h * sh, w * sw, c]);
  }
  return upsampleLinear(x, bilinearMatrix(h, sh), bilinearMatrix(w, sw));
}

/** y = A_h · x · A_wᵀ per image and channel; with the transposed matrices it is the adjoint map. */
function upsampleLinear(x: tf.Tensor4D, ah: tf.Tensor2D, aw: tf.Tensor2D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const oh = ah.shape[0];
  const ow = aw.shape[0];
  const rows = tf.reshape(tf.matMul(ah, tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [h, n * w * c])), [oh, n, w, c]);
  const cols = tf.matMul(aw, tf.reshape(tf.transpose(rows, [2, 1, 0, 3]), [w, n * oh * c]));
  return tf.transpose(tf.reshape(cols, [ow, n, oh, c]), [1, 2, 0, 3]) as tf.Tensor4D;
}

/** The adjoint of upsample(·, size, 'bilinear') from an output-shaped g back to [n, h, w, c]. */
export function upsampleBilinearTranspose(g: tf.Tensor4D, inShape: number[], size: [number, number]): tf.Tensor4D {
  return upsampleLinear(g, tf.transpose(bilinearMatrix(inShape[1], size[0])), tf.transpose(bilinearMatrix(inShape[2], size[1])));
}

/**
 * Kernel with (d − 1) zeros between its taps: a dilated convolution as a plain one (same values, same
 * 'same'-padding geometry, and a gradient, which tfjs lacks for dilation > 1).
 */
export function dilateKernel(w: tf.Tensor4D, dh: number, dw: number): tf.Tensor4D {
  if (dh === 1 && dw === 1) return w;
  const [kh, kw, i, o] = w.shape;
  const e = tf.reshape(w, [kh, 1, kw, 1, i, o]);
  const p = tf.pad(e, [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]]);
  const r = tf.reshape(p, [kh * dh, kw * dw, i, o]) as tf.Tensor4D;
  return tf.slice(r, [0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, i, o]);
}

/** The standard (inference) computation of one node. */
export function standardOp(node: GraphNode, ins: tf.Tensor[]): tf.Tensor {
  const p = node.params;
  const x = ins[0];
  switch (node.kind) {
    case 'input':
    case 'identity':
      return x;
    case 'transform':
      return applyInputTransform(x, p.transform!);
    case 'dense': {
      const k = p.kernel!() as tf.Tensor2D;
      const flat = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, x.shape[x.rank - 1]]) as tf.Tensor2D;
      let y: tf.Tensor = tf.matMul(flat, k);
      const b = p.bias?.();
      if (b) y = tf.add(y, b);
      return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), k.shape[1]]);
    }
    case 'conv2d': {
      // dilation as zeros in the kernel: tfjs has no gradient for dilated Conv2D/DepthwiseConv2D
      const k = dilateKernel(p.kernel!() as tf.Tensor4D, p.dilation![0], p.dilation![1]);
      const y: tf.Tensor = tf.conv2d(x as tf.Tensor4D, k, p.strides!, p.padding!);
      const b = p.bias?.();
      return b ? tf.add(y, b) : y;
    }
    case 'depthwise-conv2d': {
      const k = dilateKernel(p.kernel!() as tf.Tensor4D, p.dilation![0], p.dilation![1]);
      const y: tf.Tensor = tf.depthwiseConv2d(x as tf.Tensor4D, k, p.strides!, p.padding!);
      const b = p.bias?.();
      return b ? tf.add(y, b) : y;
    }
    case 'conv2d-transpose': {
      const k = p.kernel!() as tf.Tensor4D;
      const outShape: [number, number, number, number] = [x.shape[0], node.shape[0], node.shape[1], k.shape[2]];
      const y: tf.Tensor = tf.conv2dTranspose(x as tf.Tensor4D, k, outShape, p.strides!, p.padding!);
      const b = p.bias?.();
      return b ? tf.add(y, b) : y;
    }
    case 'activation':
      return applyActivation(p.activation!, x, p.alpha, p);
    case 'maxpool':
      return tf.maxPool(x as tf.Tensor4D, p.poolSize!, p.strides!, p.padding!);
    case 'avgpool': // true gradient at 'same'-padded borders (stock AvgPoolGrad divides by kh·kw): see avg-pool.ts
      return avgPoolExact(x as tf.Tensor4D, p.poolSize!, p.strides!, p.padding!);
    case 'global-avgpool':
      return tf.mean(x, [1, 2]);
    case 'global-maxpool':
      return tf.max(x, [1, 2]);
    case 'flatten':
      return tf.reshape(x, [x.shape[0], -1]);
    case 'reshape':
      return tf.reshape(x, [x.shape[0], ...p.targetShape!]);
    case 'zeropad':
      return tf.pad(x, [[0, 0], p.pad![0], p.pad![1], [0, 0]], p.padValue ?? 0);
    case 'crop': {
      const [[t, b], [l, r]] = p.pad!;
      return tf.slice(x, [0, t, l, 0], [x.shape[0], x.shape[1]! - t - b, x.shape[2]! - l - r, x.shape[3]!]);
    }
    case 'upsample':
      return upsample(x as tf.Tensor4D, p.size!, p.interpolation ?? 'nearest');
    case 'permute':
      return tf.transpose(x, p.perm!);
    case 'add':
      return ins.length === 1 ? ins[0] : tf.addN(ins);
    case 'multiply':
      return ins.reduce((a, b) => tf.mul(a, b));
    case 'concat':
      return tf.concat(ins, p.axis!);
    case 'batchnorm': {
      const bn = p.batchNorm!();
      // a BN without gamma (Keras scale=False, InceptionV3) gets ones: tfjs saves the scale input for
      // the gradient and crashes on an undefined one (×1 is exact, so the values are unchanged)
      return tf.batchNorm(x, bn.mean, bn.variance, bn.beta, bn.gamma ?? tf.onesLike(bn.mean), bn.epsilon);
    }
  }
}

/**
 * Execute the graph. Intermediate tensors are not disposed here: call inside tf.tidy (all methods do),
 * or dispose the returned captures yourself.
 */
export function runGraph(graph: Graph, x: tf.Tensor, opts: RunOptions = {}): { output: tf.Tensor; captured: Map<string, tf.Tensor> } {
  const values = new Map<string, tf.Tensor>();
  const capture = new Set(opts.capture ?? []);
  const captured = new Map<string, tf.Tensor>();
  const stop = opts.until ?? opts.output ?? graph.output;
  // With substitutes, compute only what the output still needs (a split tail skips the head).
  const needed = opts.substitute ? neededNodes(graph, stop, opts.substitute, capture) : undefined;
  for (const node of graph.nodes) {
    if (needed && !needed.has(node.name)) continue;
    let y: tf.Tensor;
    const sub = opts.substitute?.get(node.name);
    if (sub) {
      y = sub;
    } else if (node.kind === 'input') {
      y = x;
    } else {
      const ins = node.inputs.map((n) => {
        const v = values.get(n);
        if (!v) throw new Error(`internal: node "${node.name}" needs "${n}" which was not computed`);
        return v;
      });
      y = (opts.override?.(node, ins, (i) => standardOp(node, i))) ?? standardOp(node, ins);
    }
    values.set(node.name, y);
    if (capture.has(node.name)) captured.set(node.name, y);
    if (node.name === stop) return { output: y, captured };
  }
  throw new Error(`internal: output node "${stop}" not reached`);
}

function neededNodes(graph: Graph, out: string, substitute: Map<string, tf.Tensor>, capture: Set<string>): Set<string> {
  const seen = new Set<string>();
  const stack = [out, ...capture];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    if (!substitute.has(n)) stack.push(...(graph.byName.get(n)?.inputs ?? []));
  }
  return seen;
}

/** Names of the nodes that `name` depends on (transitively), including itself. */
export function ancestors(graph: Graph, name: string): Set<string> {
  const seen = new Set<string>();
  const stack = [name];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...(graph.byName.get(n)?.inputs ?? []));
  }
  return seen;
}
