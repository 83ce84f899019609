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
 * activation), so `NAME` still means "what Keras' layer NAME outputs".
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
  | 'activation'
  | 'maxpool'
  | 'avgpool'
  | 'global-avgpool'
  | 'global-maxpool'
  | 'flatten'
  | 'reshape'
  | 'zeropad'
  | 'add'
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
  /** activation name: relu, linear, softmax, sigmoid, tanh, elu, selu, softplus, leakyrelu, relu6 */
  activation?: string;
  alpha?: number;
  targetShape?: number[];
  axis?: number;
  /** zero padding [[top, bottom], [left, right]] */
  pad?: [[number, number], [number, number]];
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
  'InputLayer', 'InputTransform', 'Dense', 'Conv2D', 'DepthwiseConv2D', 'Activation', 'ReLU', 'LeakyReLU',
  'Softmax', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'Flatten',
  'Reshape', 'ZeroPadding2D', 'Add', 'Concatenate', 'BatchNormalization', 'Dropout', 'SpatialDropout2D',
  'GaussianNoise', 'GaussianDropout', 'AlphaDropout',
];
export const SUPPORTED_LAYER_CLASSES: readonly string[] = SUPPORTED;

function pair(v: unknown, fallback: number): [number, number] {
  if (v == null) return [fallback, fallback];
  if (Array.isArray(v)) return [Number(v[0]), Number(v[1] ?? v[0])];
  return [Number(v), Number(v)];
}

function activationName(cfg: tf.serialization.ConfigDict): string {
  const a = cfg.activation as unknown;
  if (a == null) return 'linear';
  if (typeof a === 'string') return a.toLowerCase();
  if (typeof a === 'object' && a && 'className' in a) return String((a as { className: string }).className).toLowerCase();
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
      case 'ReLU':
        if (cfg.maxValue != null) push('activation', { activation: Number(cfg.maxValue) === 6 ? 'relu6' : 'relu' });
        else push('activation', { activation: 'relu' });
        break;
      case 'LeakyReLU':
        push('activation', { activation: 'leakyrelu', alpha: Number(cfg.alpha ?? 0.3) });
        break;
      case 'Softmax':
        push('activation', { activation: 'softmax' });
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

export function applyActivation(name: string, x: tf.Tensor, alpha = 0.3): tf.Tensor {
  switch (name) {
    case 'relu': return tf.relu(x);
    case 'relu6': return tf.relu6(x);
    case 'linear': return x;
    case 'softmax': return tf.softmax(x);
    case 'sigmoid': return tf.sigmoid(x);
    case 'tanh': return tf.tanh(x);
    case 'elu': return tf.elu(x);
    case 'selu': return tf.selu(x);
    case 'softplus': return tf.softplus(x);
    case 'leakyrelu': return tf.leakyRelu(x, alpha);
    default: throw new UnsupportedLayerError(`activation "${name}" is not supported; supported: relu, relu6, linear, softmax, sigmoid, tanh, elu, selu, softplus, leakyrelu`);
  }
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
      let y: tf.Tensor = tf.conv2d(x as tf.Tensor4D, p.kernel!() as tf.Tensor4D, p.strides!, p.padding!, 'NHWC', p.dilation!);
      const b = p.bias?.();
      return b ? tf.add(y, b) : y;
    }
    case 'depthwise-conv2d': {
      const y: tf.Tensor = tf.depthwiseConv2d(x as tf.Tensor4D, p.kernel!() as tf.Tensor4D, p.strides!, p.padding!, 'NHWC', p.dilation!);
      const b = p.bias?.();
      return b ? tf.add(y, b) : y;
    }
    case 'activation':
      return applyActivation(p.activation!, x, p.alpha);
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
      return tf.pad(x, [[0, 0], p.pad![0], p.pad![1], [0, 0]]);
    case 'add':
      return ins.length === 1 ? ins[0] : tf.addN(ins);
    case 'concat':
      return tf.concat(ins, p.axis!);
    case 'batchnorm': {
      const bn = p.batchNorm!();
      return tf.batchNorm(x, bn.mean, bn.variance, bn.beta, bn.gamma, bn.epsilon);
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
