/**
 * TF.js graph models (tfjs-converter's `"format": "graph-model"` model.json: a list of TensorFlow ops
 * plus a weights manifest) translated into Glasswing's own node graph (core/graph.ts).
 *
 * Why translate instead of running tfjs-converter's executor: every method needs to read and replace
 * single operations (guided backprop's ReLU, LRP's linear layers, Grad-CAM's split point), and the
 * converter's fused ops (_FusedConv2D with Relu6, FusedDepthwiseConv2dNative) have no usable gradient
 * on the wasm backend. After translation a graph model is the same `Graph` a LayersModel becomes, so
 * gradients, Grad-CAM, LRP, guided backprop, splitting and activations work unchanged.
 *
 * Translation:
 * - A fused op `N` (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul) with an activation
 *   becomes `N/preact` (convolution or matmul, its BiasAdd included as the node's bias) and `N` (the
 *   activation) — the same naming as a Keras layer with a fused activation, so `N` still means what
 *   the TF node outputs. Without an activation it is one node `N`.
 * - EXPLICIT padding becomes a zero-padding node `N/pad` before a 'valid' convolution.
 * - A standalone BiasAdd after a bias-free conv/matmul with no other consumer is folded into it (the
 *   merged node takes the BiasAdd's name); otherwise it is an element-wise affine node.
 * - Add/AddV2/Sub/Mul/RealDiv with a constant operand (input normalisation, folded BatchNorm
 *   scales) become element-wise affine nodes of kind 'batchnorm' (mean 0, variance 1, ε 0, gamma =
 *   scale, beta = offset): BatchNorm is exactly a per-channel affine map, so LRP's BatchNorm folding
 *   and rules apply to them as to any BatchNorm. Between two tensors Add/AddV2/AddN are 'add', Sub
 *   is 'add' of a negated input, and Mul 'multiply'.
 * - Mean over the spatial axes is 'global-avgpool' (plus a reshape when keep_dims); Squeeze,
 *   ExpandDims and Reshape are 'reshape'; Pad/PadV2 on the spatial axes 'zeropad' (PadV2's constant as padValue);
 *   Maximum/Minimum/ClipByValue by scalars are ReLU nodes (see clip below);
 *   Identity, StopGradient, NoOp and casts to float are resolved away (their names refer to their
 *   input; a model taking uint8 pixels gets them as floats of the same values).
 * - Weights are decoded with their quantisation (uint8/uint16 affine, float16) into float32 tensors.
 *
 * Nothing here touches the file system: `readGraphModelSource` (below) reads folders with a dynamic
 * import of node:fs, so this module also runs in the browser bundle.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ModelLoadError, UnsupportedLayerError } from '../core/errors.js';
import { standardOp, type Graph, type GraphNode, type NodeKind, type NodeParams, type Padding } from '../core/graph.js';

/** One TensorFlow NodeDef as tfjs-converter writes it to model.json. */
export interface TfNodeDef {
  name: string;
  op: string;
  input?: string[];
  device?: string;
  attr?: Record<string, TfAttr>;
}

/** A NodeDef attribute: strings are base64, integers are decimal strings. */
export interface TfAttr {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  shape?: { dim?: Array<{ size: string | number }>; unknownRank?: boolean };
  list?: { s?: string[]; i?: Array<string | number>; f?: number[]; type?: string[] };
  tensor?: unknown;
}

export interface GraphModelWeightGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

/** The parsed model.json of a graph model. */
export interface GraphModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: { node: TfNodeDef[]; library?: unknown; versions?: unknown };
  weightsManifest: GraphModelWeightGroup[];
  signature?: { inputs?: Record<string, { name?: string }>; outputs?: Record<string, { name?: string }> };
  userDefinedMetadata?: Record<string, unknown>;
}

/**
 * Where a graph model comes from: a folder (or its model.json) on disk, an http(s)/file URL of the
 * model.json, or the files already in memory. In memory, `weights` is either every shard
 * concatenated in manifest order, one buffer per path in manifest order, or a map from the path
 * written in the manifest (e.g. "group1-shard1of2.bin") to its bytes — what a page gets from a
 * dropped folder.
 */
export type GraphModelSource =
  | string
  | {
    modelJson: GraphModelJson | string;
    weights: ArrayBuffer | Uint8Array | Array<ArrayBuffer | Uint8Array> | Map<string, ArrayBuffer | Uint8Array> | Record<string, ArrayBuffer | Uint8Array>;
  };

export interface TranslateOptions {
  /** [height, width, channels] when the Placeholder leaves height or width unknown (-1). */
  inputShape?: [number, number, number];
  /** Name of the output node when the graph has several sinks and no single signature output. */
  output?: string;
  /** Used in error messages (a folder or URL). */
  where?: string;
}

export interface TranslatedGraphModel {
  graph: Graph;
  /** Every weight tensor the graph's nodes read (the caller owns them: Classifier.dispose frees them). */
  weights: tf.Tensor[];
  /** The TF names of the model's input Placeholder and of its output node. */
  inputName: string;
  outputName: string;
}

/** TF ops the translator understands. */
export const GRAPH_MODEL_OPS: readonly string[] = [
  'Placeholder', 'PlaceholderWithDefault', 'Const', 'Identity', 'StopGradient', 'NoOp', 'Snapshot', 'Cast',
  '_FusedConv2D', 'FusedDepthwiseConv2dNative', 'Conv2D', 'DepthwiseConv2dNative', 'DepthwiseConv2d', 'BiasAdd',
  'Add', 'AddV2', 'AddN', 'Sub', 'Mul', 'RealDiv',
  'Relu', 'Relu6', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Prelu', 'Softplus', 'Softmax', 'Maximum', 'Minimum', 'ClipByValue',
  'AvgPool', 'MaxPool', 'Mean', 'Max', 'Squeeze', 'ExpandDims', 'Reshape', 'ConcatV2', 'Concat',
  '_FusedMatMul', 'MatMul', 'Pad', 'PadV2', 'FusedBatchNorm', 'FusedBatchNormV3',
];

const FUSED_ACTIVATIONS: Record<string, string> = {
  relu: 'relu', relu6: 'relu6', elu: 'elu', leakyrelu: 'leakyrelu', sigmoid: 'sigmoid', prelu: 'prelu', tanh: 'tanh', selu: 'selu',
};
const ACTIVATION_OPS: Record<string, string> = {
  Relu: 'relu', Relu6: 'relu6', Elu: 'elu', Selu: 'selu', Sigmoid: 'sigmoid', Tanh: 'tanh', LeakyRelu: 'leakyrelu', Softplus: 'softplus',
};
const PASS_THROUGH = new Set(['Identity', 'StopGradient', 'Snapshot']);

// ---- attributes --------------------------------------------------------------------------------

function decodeString(s: string): string {
  if (typeof atob === 'function') return atob(s);
  return Buffer.from(s, 'base64').toString('latin1');
}

function attrString(node: TfNodeDef, name: string, def: string): string {
  const a = node.attr?.[name];
  return a?.s != null ? decodeString(a.s) : def;
}
function attrNumber(node: TfNodeDef, name: string, def: number): number {
  const a = node.attr?.[name];
  if (a?.i != null) return Number(a.i);
  if (a?.f != null) return Number(a.f);
  return def;
}
function attrBool(node: TfNodeDef, name: string, def: boolean): boolean {
  const a = node.attr?.[name];
  return a?.b != null ? Boolean(a.b) : def;
}
function attrInts(node: TfNodeDef, name: string): number[] | undefined {
  const l = node.attr?.[name]?.list;
  if (!l) return undefined;
  const v = l.i?.length ? l.i : l.f ?? [];
  return v.map(Number);
}
function attrStrings(node: TfNodeDef, name: string): string[] {
  return (node.attr?.[name]?.list?.s ?? []).map(decodeString);
}

/** Name of the node an input string refers to ("^ctrl" → undefined; "conv:0" → "conv"). */
function inputNode(s: string): string | undefined {
  if (s.startsWith('^')) return undefined;
  const i = s.lastIndexOf(':');
  return i > 0 && /^\d+$/.test(s.slice(i + 1)) ? s.slice(0, i) : s;
}

// ---- weights -----------------------------------------------------------------------------------

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, int8: 1, int16: 2 };

function entryBytes(w: tf.io.WeightsManifestEntry): number {
  const n = (w.shape ?? []).reduce((a, b) => a * b, 1);
  const q = w.quantization?.dtype;
  const per = q ? BYTES[q] : BYTES[w.dtype];
  if (per == null) throw new ModelLoadError(`expected weight "${w.name}" with dtype float32/int32/bool (quantised uint8/uint16/float16); got dtype ${w.dtype}${q ? ` quantised as ${q}` : ''}`);
  return n * per;
}

/**
 * Decode every weight of the manifest (dequantised to float32) from the concatenated shard bytes.
 * Throws ModelLoadError when the bytes do not match what the manifest lists.
 */
export function decodeGraphModelWeights(json: GraphModelJson, data: ArrayBuffer, where = 'model.json'): Map<string, tf.Tensor> {
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  let expected = 0;
  for (const w of specs) {
    if (!w || typeof w.name !== 'string' || !Array.isArray(w.shape)) {
      throw new ModelLoadError(`expected weights {name, shape, dtype} in the manifest of ${where}; got ${JSON.stringify(w)?.slice(0, 80)}`);
    }
    expected += entryBytes(w);
  }
  if (data.byteLength !== expected) {
    throw new ModelLoadError(`expected ${expected} bytes of weights for ${where}; got ${data.byteLength} bytes (truncated or wrong shard files)`);
  }
  let decoded: tf.NamedTensorMap;
  try {
    decoded = tf.io.decodeWeights(data, specs);
  } catch (e) {
    throw new ModelLoadError(`cannot decode the weights of ${where}: ${(e as Error).message.split('\n')[0]}`);
  }
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of Object.entries(decoded)) {
    if (t.dtype === 'float32' && !tf.tidy(() => tf.all(tf.isFinite(t)).dataSync()[0])) {
      tf.dispose(Object.values(decoded));
      throw new ModelLoadError(`expected finite weights in ${where}; weight "${name}" holds NaN or Infinity (corrupt shard?)`);
    }
    out.set(name, t);
  }
  return out;
}

// ---- translation -------------------------------------------------------------------------------

interface Value {
  /** A graph node's output… */
  node?: string;
  /** …or a constant tensor. */
  constant?: tf.Tensor;
}

function unsupported(node: TfNodeDef, why?: string): UnsupportedLayerError {
  return new UnsupportedLayerError(
    why
      ? `graph model node "${node.name}" (op ${node.op}): ${why}`
      : `graph model node "${node.name}" has op ${node.op}, which Glasswing does not support; supported ops: ${GRAPH_MODEL_OPS.join(', ')}`,
  );
}

function padding(node: TfNodeDef): { padding: Padding; explicit?: [[number, number], [number, number]] } {
  const p = attrString(node, 'padding', 'VALID').toUpperCase();
  if (p === 'SAME') return { padding: 'same' };
  if (p === 'VALID') return { padding: 'valid' };
  if (p === 'EXPLICIT') {
    const e = attrInts(node, 'explicit_paddings') ?? [];
    if (e.length !== 8 || e[0] || e[1] || e[6] || e[7]) throw unsupported(node, `expected explicit paddings on the spatial axes only; got [${e.join(', ')}]`);
    return { padding: 'valid', explicit: [[e[2], e[3]], [e[4], e[5]]] };
  }
  throw unsupported(node, `expected padding SAME, VALID or EXPLICIT; got ${p}`);
}

function spatial(node: TfNodeDef, name: string, def: number): [number, number] {
  const v = attrInts(node, name);
  if (!v || v.length === 0) return [def, def];
  if (v.length === 4) {
    if (v[0] !== 1 || v[3] !== 1) throw unsupported(node, `expected ${name} 1 on the batch and channel axes; got [${v.join(', ')}]`);
    return [v[1], v[2]];
  }
  return [v[0], v[1] ?? v[0]];
}

/**
 * Translate a parsed graph-model JSON and its decoded weights into a Glasswing Graph. Weight
 * tensors the graph does not use are disposed; the rest are returned in `weights`.
 */
export function translateGraphModel(json: GraphModelJson, weights: Map<string, tf.Tensor>, opts: TranslateOptions = {}): TranslatedGraphModel {
  const where = opts.where ?? 'graph model';
  if (json.format && json.format !== 'graph-model') {
    throw new ModelLoadError(`expected a graph model ("format": "graph-model") in ${where}; got format "${json.format}"`);
  }
  const tfNodes = json.modelTopology?.node;
  if (!Array.isArray(tfNodes)) throw new ModelLoadError(`expected modelTopology.node (a list of TF ops) in ${where}; got ${typeof tfNodes}`);
  const byTfName = new Map<string, TfNodeDef>();
  for (const n of tfNodes) {
    if (!n || typeof n.name !== 'string' || typeof n.op !== 'string') throw new ModelLoadError(`expected nodes {name, op, input, attr} in ${where}; got ${JSON.stringify(n)?.slice(0, 80)}`);
    byTfName.set(n.name, n);
  }
  const inputsOf = (n: TfNodeDef) => (n.input ?? []).map(inputNode).filter((s): s is string => s != null);

  // ---- input and output
  const isPlaceholder = (n: TfNodeDef) => n.op === 'Placeholder' || n.op === 'PlaceholderWithDefault';
  let outputName = opts.output;
  if (!outputName) {
    const sigOut = Object.values(json.signature?.outputs ?? {}).map((o) => o.name && inputNode(o.name)).filter((s): s is string => !!s && byTfName.has(s));
    if (sigOut.length === 1) outputName = sigOut[0];
  }
  if (!outputName) {
    const consumed = new Set(tfNodes.flatMap(inputsOf));
    const sinks = tfNodes.filter((n) => !consumed.has(n.name) && n.op !== 'Const' && n.op !== 'NoOp' && !isPlaceholder(n));
    if (sinks.length !== 1) {
      throw new UnsupportedLayerError(`expected a graph model with one output; got ${sinks.length} output nodes in ${where} (${sinks.map((s) => s.name).slice(0, 8).join(', ')}): pass the output node's name`);
    }
    outputName = sinks[0].name;
  }
  if (!byTfName.has(outputName)) throw new ModelLoadError(`expected output node "${outputName}" in ${where}; there is no such node`);

  // ---- topological order of what the output needs
  const order: TfNodeDef[] = [];
  const state = new Map<string, 1 | 2>();
  const visit = (name: string) => {
    const stack: Array<[string, boolean]> = [[name, false]];
    while (stack.length) {
      const [n, done] = stack.pop()!;
      if (done) {
        if (state.get(n) !== 2) {
          state.set(n, 2);
          order.push(byTfName.get(n)!);
        }
        continue;
      }
      if (state.has(n)) continue;
      const def = byTfName.get(n);
      if (!def) throw new ModelLoadError(`node "${n}" is used as an input in ${where} but not defined`);
      state.set(n, 1);
      stack.push([n, true]);
      for (const i of inputsOf(def).reverse()) {
        if (state.get(i) === 1) throw new ModelLoadError(`expected an acyclic graph in ${where}; node "${i}" is part of a cycle (control flow is not supported)`);
        if (!state.has(i)) stack.push([i, false]);
      }
    }
  };
  visit(outputName);

  // ---- the image input: the Placeholder the output depends on (a PlaceholderWithDefault with a
  // default, such as Keras' learning phase, stands for its default)
  let candidates = order.filter((n) => n.op === 'Placeholder');
  if (candidates.length === 0) candidates = order.filter((n) => n.op === 'PlaceholderWithDefault' && (n.attr?.shape?.shape?.dim ?? []).length === 4);
  if (candidates.length !== 1) {
    throw new UnsupportedLayerError(`expected a graph model whose output depends on one input (Placeholder); got ${candidates.length} in ${where}${candidates.length ? `: ${candidates.map((p) => p.name).join(', ')}` : ''}`);
  }
  const input = candidates[0];

  // ---- input shape
  const dims = (input.attr?.shape?.shape?.dim ?? []).map((d) => Number(d.size));
  let inShape: number[];
  if (opts.inputShape) {
    inShape = opts.inputShape.slice();
    if (dims.length === 4 && dims.slice(1).some((d, i) => d > 0 && d !== inShape[i])) {
      throw new ModelLoadError(`expected inputShape [${dims.slice(1).join(', ')}] (the model's own) in ${where}; got [${inShape.join(', ')}]`);
    }
  } else {
    if (dims.length !== 4) throw new UnsupportedLayerError(`expected a graph model taking images [batch, height, width, channels]; input "${input.name}" has shape [${dims.join(', ')}] in ${where}`);
    inShape = dims.slice(1);
    if (inShape.some((d) => !(d > 0))) {
      throw new ModelLoadError(`input "${input.name}" of ${where} has shape [${dims.join(', ')}]: give the image size (inputShape option, or inputSize in glasswing.json)`);
    }
  }

  const consumers = new Map<string, number>();
  for (const n of order) for (const i of inputsOf(n)) consumers.set(i, (consumers.get(i) ?? 0) + 1);

  // ---- build
  const nodes: GraphNode[] = [];
  const byName = new Map<string, GraphNode>();
  const values = new Map<string, Value>();
  const samples = new Map<string, tf.Tensor>(); // batch-1 zeros run through the graph, for shapes
  const used = new Set<tf.Tensor>();
  const made: tf.Tensor[] = []; // tensors created here (transposes, affine vectors): kept if used
  const keep = (t: tf.Tensor) => {
    used.add(t);
    return () => t;
  };
  const own = (t: tf.Tensor) => {
    made.push(t);
    return t;
  };
  const add = (node: Omit<GraphNode, 'shape'>): GraphNode => {
    if (byName.has(node.name)) throw new ModelLoadError(`node name "${node.name}" appears twice in ${where}`);
    const full = { ...node, shape: [] as number[] } as GraphNode;
    let y: tf.Tensor;
    try {
      y = full.kind === 'input' ? tf.zeros([1, ...inShape]) : tf.tidy(() => standardOp(full, node.inputs.map((i) => samples.get(i)!)));
    } catch (e) {
      if (e instanceof UnsupportedLayerError) throw e;
      throw new ModelLoadError(`cannot run node "${node.name}" (${node.layerClass}) of ${where} on its input shapes [${node.inputs.map((i) => samples.get(i)!.shape.join('×')).join('], [')}]: ${(e as Error).message.split('\n')[0]}`);
    }
    samples.set(full.name, y);
    full.shape = y.shape.slice(1);
    nodes.push(full);
    byName.set(full.name, full);
    return full;
  };
  const nodeValue = (def: TfNodeDef, index: number): Value => {
    const n = inputsOf(def)[index];
    if (n == null) throw unsupported(def, `expected an input number ${index + 1}; got ${inputsOf(def).length} inputs`);
    const v = values.get(n);
    if (!v) throw new ModelLoadError(`internal: node "${def.name}" reads "${n}", which was not translated`);
    return v;
  };
  const tensorIn = (def: TfNodeDef, index: number): string => {
    const v = nodeValue(def, index);
    if (!v.node) throw unsupported(def, `expected input ${index + 1} to be computed from the image; got a constant`);
    return v.node;
  };
  const constIn = (def: TfNodeDef, index: number, what: string): tf.Tensor => {
    const v = nodeValue(def, index);
    if (!v.constant) throw unsupported(def, `expected ${what} (input ${index + 1}) to be a constant; got a value computed from the image`);
    return v.constant;
  };
  const constInts = (def: TfNodeDef, index: number, what: string): number[] => Array.from(constIn(def, index, what).dataSync(), Number);
  const base = (def: TfNodeDef) => ({ layerName: def.name, layerClass: def.op });
  const channelsOf = (name: string) => byName.get(name)!.shape.at(-1)!;

  /** Element-wise y = x·scale + offset as a BatchNorm-form node (see the module comment). */
  const affine = (def: TfNodeDef, name: string, x: string, scale: tf.Tensor | number, offset: tf.Tensor | number) => {
    const c = channelsOf(x);
    const vec = (v: tf.Tensor | number, what: string) => {
      if (typeof v === 'number') return own(tf.fill([c], v));
      const size = v.size;
      if (v.shape.slice(0, -1).some((d) => d !== 1) || (size !== 1 && size !== c)) {
        throw unsupported(def, `expected a scalar or per-channel (${c}) constant ${what}; got shape [${v.shape.join(', ')}] (only per-channel constants are supported)`);
      }
      return own(tf.tidy(() => tf.mul(tf.ones([c]), tf.cast(tf.reshape(v, [-1]), 'float32'))));
    };
    const gamma = vec(scale, 'factor');
    const beta = vec(offset, 'term');
    const mean = own(tf.zeros([c]));
    const variance = own(tf.ones([c]));
    for (const t of [gamma, beta, mean, variance]) used.add(t);
    return add({ ...base(def), name, kind: 'batchnorm', inputs: [x], params: { batchNorm: () => ({ mean, variance, gamma, beta, epsilon: 0 }) } });
  };

  /**
   * Clipping by scalar constants (Maximum, Minimum, ClipByValue) as ReLU nodes: clip(x, 0, m) is
   * ReLU with max_value m (ReLU6 for m = 6); other bounds shift or mirror x around a ReLU:
   * max(x, a) = a + relu(x − a), min(x, b) = b − relu(b − x). Guided backprop and LRP then treat
   * the clip as the rectifier it is.
   */
  const clip = (def: TfNodeDef, x: string, lo: number | undefined, hi: number | undefined): GraphNode => {
    const relu = (name: string, input: string, max: number | undefined) => add({
      ...base(def), name, kind: 'activation', inputs: [input],
      params: max === 6 ? { activation: 'relu6' } : max === undefined ? { activation: 'relu' } : { activation: 'relu', maxValue: max },
    });
    if (lo === 0) return relu(def.name, x, hi);
    if (lo !== undefined) {
      const shifted = affine(def, `${def.name}/shift`, x, 1, -lo);
      const r = relu(`${def.name}/clip`, shifted.name, hi === undefined ? undefined : hi - lo);
      return affine(def, def.name, r.name, 1, lo);
    }
    const mirrored = affine(def, `${def.name}/mirror`, x, -1, hi!);
    const r = relu(`${def.name}/clip`, mirrored.name, undefined);
    return affine(def, def.name, r.name, -1, hi!);
  };
  const scalarIn = (def: TfNodeDef, index: number, what: string): number => {
    const t = constIn(def, index, what);
    if (t.size !== 1) throw unsupported(def, `expected a scalar ${what}; got shape [${t.shape.join(', ')}] (only clipping by scalars is supported)`);
    return t.dataSync()[0];
  };

  /** conv / depthwise / matmul node, then the fused activation (with bias folded into the linear node). */
  const linearWithActivation = (def: TfNodeDef, kind: NodeKind, params: NodeParams, x: string, fused: string[], args: tf.Tensor[]) => {
    const [extra, act] = fused.map((s) => s.toLowerCase());
    let bias: tf.Tensor | undefined;
    let slope: tf.Tensor | undefined;
    let activation: string | undefined;
    if (extra === 'biasadd') {
      bias = args[0];
      activation = act;
      if (act === 'prelu') slope = args[1];
    } else if (extra === 'fusedbatchnorm') {
      throw unsupported(def, 'fused BatchNorm inside a fused convolution is not supported (tfjs-converter does not write it either)');
    } else if (extra) {
      activation = extra;
      if (extra === 'prelu') slope = args[0];
    }
    if (activation && !FUSED_ACTIVATIONS[activation]) throw unsupported(def, `fused activation "${activation}" is not supported; supported: ${Object.keys(FUSED_ACTIVATIONS).join(', ')}`);
    if (bias && bias.rank !== 1) throw unsupported(def, `expected a 1-D bias; got shape [${bias.shape.join(', ')}]`);
    const p: NodeParams = { ...params, bias: bias ? keep(bias) : () => undefined };
    if (!activation) return add({ ...base(def), name: def.name, kind, inputs: [x], params: p });
    const pre = add({ ...base(def), name: `${def.name}/preact`, kind, inputs: [x], params: p });
    const ap: NodeParams = { activation: FUSED_ACTIVATIONS[activation] };
    if (activation === 'leakyrelu') ap.alpha = attrNumber(def, 'leakyrelu_alpha', 0.2);
    if (activation === 'prelu') ap.slope = keep(slope!);
    return add({ ...base(def), name: def.name, kind: 'activation', inputs: [pre.name], params: ap });
  };

  const conv = (def: TfNodeDef, kind: 'conv2d' | 'depthwise-conv2d', fused: string[], args: tf.Tensor[]) => {
    if (attrString(def, 'data_format', 'NHWC').toUpperCase() !== 'NHWC') throw unsupported(def, `expected data_format NHWC; got ${attrString(def, 'data_format', '')}`);
    let x = tensorIn(def, 0);
    const kernel = constIn(def, 1, 'the filter');
    if (kernel.rank !== 4) throw unsupported(def, `expected a 4-D filter; got shape [${kernel.shape.join(', ')}]`);
    const pad = padding(def);
    if (pad.explicit) x = add({ ...base(def), name: `${def.name}/pad`, kind: 'zeropad', inputs: [x], params: { pad: pad.explicit } }).name;
    const params: NodeParams = { kernel: keep(kernel), strides: spatial(def, 'strides', 1), padding: pad.padding, dilation: spatial(def, 'dilations', 1) };
    return linearWithActivation(def, kind, params, x, fused, args);
  };

  const matmul = (def: TfNodeDef, fused: string[], args: tf.Tensor[]) => {
    if (attrBool(def, 'transpose_a', false)) throw unsupported(def, 'transpose_a is not supported');
    const x = tensorIn(def, 0);
    let k = constIn(def, 1, 'the weight matrix');
    if (k.rank !== 2) throw unsupported(def, `expected a 2-D weight matrix; got shape [${k.shape.join(', ')}]`);
    if (attrBool(def, 'transpose_b', false)) k = own(tf.transpose(k));
    return linearWithActivation(def, 'dense', { kernel: keep(k) }, x, fused, args);
  };

  const fusedArgs = (def: TfNodeDef) => {
    const n = attrNumber(def, 'num_args', inputsOf(def).length - 2);
    return Array.from({ length: n }, (_, i) => constIn(def, 2 + i, `fused argument ${i + 1}`));
  };

  // Samples are freed as soon as nothing later reads them (peak memory: the live activations of one
  // forward pass at batch 1, not all of them): `pending` counts the TF consumers still to come.
  const pending = new Map<string, number>();
  const release = (name: string) => {
    const t = samples.get(name);
    if (t && name !== 'input') {
      t.dispose();
      samples.delete(name);
    }
  };
  try {
    for (const def of order) {
      const ins = inputsOf(def);
      const created = nodes.length;
      // every op here has one output; reading another output (e.g. FusedBatchNorm's batch mean) is not this graph
      const other = (def.input ?? []).find((s) => /:[1-9]\d*$/.test(s) && !s.startsWith('^'));
      if (other) throw unsupported(def, `it reads output ${other.split(':').pop()} of "${inputNode(other)}"; only ops' first outputs are supported`);
      const allConst = ins.length > 0 && ins.every((i) => values.get(i)?.constant);
      let v: Value | undefined;
      switch (def.op) {
        case 'Placeholder':
        case 'PlaceholderWithDefault':
          if (def === input) v = { node: add({ name: 'input', kind: 'input', layerName: def.name, layerClass: def.op, inputs: [], params: {} }).name };
          else if (def.op === 'PlaceholderWithDefault' && inputsOf(def).length) v = nodeValue(def, 0);
          else throw unsupported(def, 'a second input is not supported');
          break;
        case 'Const': {
          const t = weights.get(def.name);
          if (!t) throw new ModelLoadError(`expected the value of constant "${def.name}" in the weights manifest of ${where}; got none`);
          v = { constant: t };
          break;
        }
        case 'Identity': case 'StopGradient': case 'Snapshot':
          v = nodeValue(def, 0);
          break;
        case 'NoOp':
          v = {};
          break;
        case 'Cast': {
          // models taking uint8/int32 pixels cast them to float first: Glasswing's input is float already
          const to = def.attr?.DstT?.type ?? 'DT_FLOAT';
          if (to !== 'DT_FLOAT' && to !== 'DT_HALF' && to !== 'DT_DOUBLE') throw unsupported(def, `a cast to ${to} is not supported (only to float)`);
          const src = nodeValue(def, 0);
          v = src.constant ? { constant: own(tf.cast(src.constant, 'float32')) } : src;
          break;
        }
        case '_FusedConv2D':
          v = { node: conv(def, 'conv2d', attrStrings(def, 'fused_ops'), fusedArgs(def)).name };
          break;
        case 'FusedDepthwiseConv2dNative':
          v = { node: conv(def, 'depthwise-conv2d', attrStrings(def, 'fused_ops'), fusedArgs(def)).name };
          break;
        case 'Conv2D':
          v = { node: conv(def, 'conv2d', [], []).name };
          break;
        case 'DepthwiseConv2dNative': case 'DepthwiseConv2d':
          v = { node: conv(def, 'depthwise-conv2d', [], []).name };
          break;
        case '_FusedMatMul':
          v = { node: matmul(def, attrStrings(def, 'fused_ops'), fusedArgs(def)).name };
          break;
        case 'MatMul':
          v = { node: matmul(def, [], []).name };
          break;
        case 'BiasAdd': {
          const x = tensorIn(def, 0);
          const b = constIn(def, 1, 'the bias');
          const prev = byName.get(x)!;
          const foldable = ['conv2d', 'depthwise-conv2d', 'dense'].includes(prev.kind) && !prev.params.bias?.() && consumers.get(prev.layerName) === 1
            && nodes[nodes.length - 1] === prev && b.rank === 1;
          if (foldable) {
            // merge in place: the linear node takes the BiasAdd's name and carries the bias
            if (byName.has(def.name)) throw new ModelLoadError(`node name "${def.name}" appears twice in ${where}`);
            const old = prev.name;
            const sample = samples.get(old)!;
            samples.delete(old);
            samples.set(def.name, tf.tidy(() => tf.add(sample, b)));
            sample.dispose();
            byName.delete(old);
            Object.assign(prev, { name: def.name, layerName: def.name, layerClass: `${prev.layerClass}+BiasAdd`, params: { ...prev.params, bias: keep(b) } });
            byName.set(def.name, prev);
            pending.set(def.name, pending.get(old) ?? 0);
            pending.delete(old);
            v = { node: def.name };
            for (const [k, val] of values) if (val.node === old) values.set(k, v);
          } else {
            v = { node: affine(def, def.name, x, 1, b).name };
          }
          break;
        }
        case 'Add': case 'AddV2': case 'AddN': case 'Sub': case 'Mul': case 'RealDiv': {
          if (allConst) {
            const [a, b] = ins.map((i) => values.get(i)!.constant!);
            const t = own(def.op === 'Sub' ? tf.sub(a, b) : def.op === 'Mul' ? tf.mul(a, b) : def.op === 'RealDiv' ? tf.div(a, b) : tf.addN(ins.map((i) => values.get(i)!.constant!)));
            v = { constant: t };
            break;
          }
          const vs = ins.map((_, i) => nodeValue(def, i));
          const tensors = vs.filter((x) => x.node);
          if (tensors.length === vs.length) {
            if (def.op === 'Mul') v = { node: add({ ...base(def), name: def.name, kind: 'multiply', inputs: vs.map((x) => x.node!), params: {} }).name };
            else if (def.op === 'RealDiv') throw unsupported(def, 'RealDiv of two computed tensors is not supported (only by a constant)');
            else if (def.op === 'Sub') {
              // a − b as a + (−1)·b: a per-channel affine node, then an add
              const neg = affine(def, `${def.name}/neg`, vs[1].node!, -1, 0);
              v = { node: add({ ...base(def), name: def.name, kind: 'add', inputs: [vs[0].node!, neg.name], params: {} }).name };
            }
            else v = { node: add({ ...base(def), name: def.name, kind: 'add', inputs: vs.map((x) => x.node!), params: {} }).name };
            break;
          }
          if (vs.length !== 2) throw unsupported(def, 'expected two operands');
          const xi = vs[0].node ? 0 : 1;
          const x = vs[xi].node!;
          const c = vs[1 - xi].constant!;
          switch (def.op) {
            case 'Add': case 'AddV2': v = { node: affine(def, def.name, x, 1, c).name }; break;
            case 'Mul': v = { node: affine(def, def.name, x, c, 0).name }; break;
            case 'Sub': v = { node: (xi === 0 ? affine(def, def.name, x, 1, own(tf.neg(c))) : affine(def, def.name, x, -1, c)).name }; break;
            case 'RealDiv':
              if (xi !== 0) throw unsupported(def, 'dividing a constant by a computed tensor is not supported');
              v = { node: affine(def, def.name, x, own(tf.div(1, c)), 0).name };
              break;
          }
          break;
        }
        case 'Relu': case 'Relu6': case 'Elu': case 'Selu': case 'Sigmoid': case 'Tanh': case 'LeakyRelu': case 'Softplus': {
          const params: NodeParams = { activation: ACTIVATION_OPS[def.op] };
          if (def.op === 'LeakyRelu') params.alpha = attrNumber(def, 'alpha', 0.2);
          v = { node: add({ ...base(def), name: def.name, kind: 'activation', inputs: [tensorIn(def, 0)], params }).name };
          break;
        }
        case 'Maximum': case 'Minimum': {
          const vs = [nodeValue(def, 0), nodeValue(def, 1)];
          if (vs.every((x) => x.constant)) {
            v = { constant: own(def.op === 'Maximum' ? tf.maximum(vs[0].constant!, vs[1].constant!) : tf.minimum(vs[0].constant!, vs[1].constant!)) };
            break;
          }
          const xi = vs[0].node ? 0 : 1;
          if (!vs[1 - xi].constant) throw unsupported(def, `${def.op} of two computed tensors is not supported (only with a scalar constant)`);
          const c = scalarIn(def, 1 - xi, 'bound');
          v = { node: clip(def, vs[xi].node!, def.op === 'Maximum' ? c : undefined, def.op === 'Minimum' ? c : undefined).name };
          break;
        }
        case 'ClipByValue': {
          const [lo, hi] = [scalarIn(def, 1, 'lower bound'), scalarIn(def, 2, 'upper bound')];
          if (!(hi >= lo)) throw unsupported(def, `expected lower bound ≤ upper bound; got ${lo} > ${hi}`);
          v = { node: clip(def, tensorIn(def, 0), lo, hi).name };
          break;
        }
        case 'Prelu':
          v = { node: add({ ...base(def), name: def.name, kind: 'activation', inputs: [tensorIn(def, 0)], params: { activation: 'prelu', slope: keep(constIn(def, 1, 'alpha')) } }).name };
          break;
        case 'Softmax':
          v = { node: add({ ...base(def), name: def.name, kind: 'activation', inputs: [tensorIn(def, 0)], params: { activation: 'softmax', axis: -1 } }).name };
          break;
        case 'AvgPool': case 'MaxPool': {
          const pad = padding(def);
          if (pad.explicit) throw unsupported(def, 'explicit padding in pooling is not supported');
          v = { node: add({ ...base(def), name: def.name, kind: def.op === 'MaxPool' ? 'maxpool' : 'avgpool', inputs: [tensorIn(def, 0)], params: {
            poolSize: spatial(def, 'ksize', 1), strides: spatial(def, 'strides', 1), padding: pad.padding,
          } }).name };
          break;
        }
        case 'Mean': case 'Max': {
          const x = tensorIn(def, 0);
          const rank = byName.get(x)!.shape.length + 1;
          const axes = constInts(def, 1, 'the axes').map((a) => (a < 0 ? a + rank : a)).sort();
          if (rank !== 4 || axes.length !== 2 || axes[0] !== 1 || axes[1] !== 2) {
            throw unsupported(def, `expected a reduction over the spatial axes [1, 2] of an NHWC tensor; got axes [${axes.join(', ')}] of a rank-${rank} tensor`);
          }
          const kind = def.op === 'Mean' ? 'global-avgpool' : 'global-maxpool';
          if (attrBool(def, 'keep_dims', false)) {
            const g = add({ ...base(def), name: `${def.name}/pool`, kind, inputs: [x], params: {} });
            v = { node: add({ ...base(def), name: def.name, kind: 'reshape', inputs: [g.name], params: { targetShape: [1, 1, g.shape[0]] } }).name };
          } else {
            v = { node: add({ ...base(def), name: def.name, kind, inputs: [x], params: {} }).name };
          }
          break;
        }
        case 'Squeeze': {
          const x = tensorIn(def, 0);
          const shape = [1, ...byName.get(x)!.shape];
          const rank = shape.length;
          const given = (attrInts(def, 'squeeze_dims') ?? attrInts(def, 'axis') ?? []).map((a) => (a < 0 ? a + rank : a));
          if (given.includes(0)) throw unsupported(def, 'squeezing the batch axis is not supported');
          const drop = given.length ? given : shape.map((d, i) => (i > 0 && d === 1 ? i : -1)).filter((i) => i > 0);
          const target = shape.filter((_, i) => i > 0 && !drop.includes(i));
          v = { node: add({ ...base(def), name: def.name, kind: 'reshape', inputs: [x], params: { targetShape: target } }).name };
          break;
        }
        case 'ExpandDims': {
          const x = tensorIn(def, 0);
          const shape = [1, ...byName.get(x)!.shape];
          const raw = constInts(def, 1, 'the axis')[0];
          const axis = raw < 0 ? raw + shape.length + 1 : raw;
          if (!(axis >= 1 && axis <= shape.length)) throw unsupported(def, `expected an axis after the batch axis; got ${raw}`);
          const target = [...shape.slice(1, axis), 1, ...shape.slice(axis)];
          v = { node: add({ ...base(def), name: def.name, kind: 'reshape', inputs: [x], params: { targetShape: target } }).name };
          break;
        }
        case 'Reshape': {
          if (allConst) {
            v = { constant: own(tf.reshape(values.get(ins[0])!.constant!, constInts(def, 1, 'the shape'))) };
            break;
          }
          const x = tensorIn(def, 0);
          const s = constInts(def, 1, 'the shape');
          if (s.length < 2) throw unsupported(def, `expected a target shape that keeps the batch axis; got [${s.join(', ')}]`);
          v = { node: add({ ...base(def), name: def.name, kind: 'reshape', inputs: [x], params: { targetShape: s.slice(1) } }).name };
          break;
        }
        case 'ConcatV2': case 'Concat': {
          // ConcatV2: values..., axis; Concat (v1): axis, values...
          const axisIndex = def.op === 'ConcatV2' ? ins.length - 1 : 0;
          const axis = constInts(def, axisIndex, 'the axis')[0];
          const parts = ins.map((_, i) => i).filter((i) => i !== axisIndex).map((i) => tensorIn(def, i));
          v = { node: add({ ...base(def), name: def.name, kind: 'concat', inputs: parts, params: { axis } }).name };
          break;
        }
        case 'Pad': case 'PadV2': {
          const x = tensorIn(def, 0);
          const p = constInts(def, 1, 'the paddings');
          if (p.length !== 8 || p[0] || p[1] || p[6] || p[7]) throw unsupported(def, `expected padding of the spatial axes of an NHWC tensor only; got [${p.join(', ')}]`);
          const padValue = def.op === 'PadV2' ? constIn(def, 2, 'the pad value').dataSync()[0] : 0;
          const params: NodeParams = { pad: [[p[2], p[3]], [p[4], p[5]]] };
          if (padValue !== 0) params.padValue = padValue;
          v = { node: add({ ...base(def), name: def.name, kind: 'zeropad', inputs: [x], params }).name };
          break;
        }
        case 'FusedBatchNorm': case 'FusedBatchNormV3': {
          if (attrBool(def, 'is_training', false)) throw unsupported(def, 'a BatchNorm in training mode is not supported');
          const x = tensorIn(def, 0);
          const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => constIn(def, i, ['', 'scale', 'offset', 'mean', 'variance'][i]));
          for (const t of [gamma, beta, mean, variance]) used.add(t);
          const epsilon = attrNumber(def, 'epsilon', 1e-3);
          v = { node: add({ ...base(def), name: def.name, kind: 'batchnorm', inputs: [x], params: { batchNorm: () => ({ mean, variance, gamma, beta, epsilon }) } }).name };
          break;
        }
        default:
          throw unsupported(def);
      }
      values.set(def.name, v ?? {});
      // nodes made for this op that nothing outside it reads (NAME/preact, NAME/pad, …)
      for (const n of nodes.slice(created)) if (n.name !== v?.node) release(n.name);
      if (v?.node) pending.set(v.node, (pending.get(v.node) ?? 0) + (consumers.get(def.name) ?? 0));
      for (const i of ins) {
        const node = values.get(i)?.node;
        if (!node) continue;
        const left = (pending.get(node) ?? 0) - 1;
        pending.set(node, left);
        if (left <= 0) release(node);
      }
    }
  } catch (e) {
    tf.dispose([...samples.values(), ...made]);
    tf.dispose([...weights.values()]);
    throw e;
  }
  const out = values.get(outputName);
  tf.dispose([...samples.values()]);
  if (!out?.node) {
    tf.dispose([...made, ...weights.values()]);
    throw new ModelLoadError(`expected output "${outputName}" of ${where} to be computed from the image; got a constant`);
  }
  for (const t of [...weights.values(), ...made]) if (!used.has(t)) t.dispose();
  const aliases = new Map<string, string>();
  for (const [name, v] of values) if (v.node && v.node !== name && !byName.has(name)) aliases.set(name, v.node);
  return { graph: { nodes, byName, output: out.node, aliases }, weights: [...used], inputName: input.name, outputName };
}

// ---- reading files -----------------------------------------------------------------------------

function toArrayBuffer(b: ArrayBuffer | Uint8Array): ArrayBuffer {
  if (b instanceof ArrayBuffer) return b;
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function concat(parts: Array<ArrayBuffer | Uint8Array>): ArrayBuffer {
  const total = parts.reduce((a, p) => a + p.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p instanceof Uint8Array ? p : new Uint8Array(p), o);
    o += p.byteLength;
  }
  return out.buffer;
}

/** Parse and check model.json text (or an already-parsed object). */
export function parseGraphModelJson(text: string | GraphModelJson, where = 'model.json'): GraphModelJson {
  let json: GraphModelJson;
  if (typeof text === 'string') {
    try {
      json = JSON.parse(text) as GraphModelJson;
    } catch (e) {
      throw new ModelLoadError(`expected valid JSON in ${where}; got a parse error: ${(e as Error).message}`);
    }
  } else {
    json = text;
  }
  if (json == null || typeof json !== 'object' || !json.modelTopology || !Array.isArray((json.modelTopology as { node?: unknown }).node)) {
    throw new ModelLoadError(`expected a TF.js graph model.json with modelTopology.node in ${where}; got ${json == null ? 'null' : `keys [${Object.keys(json).join(', ')}]`}`);
  }
  if (!Array.isArray(json.weightsManifest) || json.weightsManifest.some((g) => !g || !Array.isArray(g.paths) || !Array.isArray(g.weights))) {
    throw new ModelLoadError(`expected "weightsManifest" (weight groups {paths, weights}) in ${where}; got ${JSON.stringify(json.weightsManifest)?.slice(0, 80)}`);
  }
  return json;
}

/** Whether parsed model.json describes a graph model (as opposed to a layers model). */
export function isGraphModelJson(json: unknown): boolean {
  const j = json as { format?: string; modelTopology?: { node?: unknown } } | null;
  return !!j && (j.format === 'graph-model' || (j.format == null && Array.isArray(j.modelTopology?.node)));
}

/**
 * Read a graph model's JSON and weight bytes from a folder, a model.json path, an http(s) or file:
 * URL, or memory. Errors are ModelLoadError naming the file.
 */
export async function readGraphModelSource(source: GraphModelSource): Promise<{ json: GraphModelJson; data: ArrayBuffer; where: string }> {
  if (typeof source !== 'string') {
    const where = 'the given model.json';
    const json = parseGraphModelJson(source.modelJson, where);
    const paths = json.weightsManifest.flatMap((g) => g.paths);
    const w = source.weights;
    let data: ArrayBuffer;
    if (w instanceof ArrayBuffer || w instanceof Uint8Array) data = toArrayBuffer(w);
    else if (Array.isArray(w)) {
      if (w.length !== paths.length) throw new ModelLoadError(`expected ${paths.length} weight files (${paths.join(', ')}); got ${w.length} buffers`);
      data = concat(w);
    } else {
      const get = (p: string) => (w instanceof Map ? w.get(p) : (w as Record<string, ArrayBuffer | Uint8Array>)[p]);
      const parts = paths.map((p) => {
        const b = get(p) ?? get(p.split('/').pop()!);
        if (!b) throw new ModelLoadError(`expected weight file "${p}" listed in ${where}; got none among [${[...(w instanceof Map ? w.keys() : Object.keys(w))].join(', ')}]`);
        return b;
      });
      data = concat(parts);
    }
    return { json, data, where };
  }
  if (/^https?:\/\//i.test(source)) {
    const url = source.endsWith('.json') ? source : source.replace(/\/?$/, '/model.json');
    const get = async (u: string): Promise<Response> => {
      let r: Response;
      try {
        r = await fetch(u);
      } catch (e) {
        throw new ModelLoadError(`cannot fetch ${u}: ${(e as Error).message}`);
      }
      if (!r.ok) throw new ModelLoadError(`cannot fetch ${u}: HTTP ${r.status}`);
      return r;
    };
    const json = parseGraphModelJson(await (await get(url)).text(), url);
    const parts: ArrayBuffer[] = [];
    for (const p of json.weightsManifest.flatMap((g) => g.paths)) parts.push(await (await get(new URL(p, url).href)).arrayBuffer());
    return { json, data: concat(parts), where: url };
  }
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const p = path.resolve(source.startsWith('file:') ? fileURLToPath(source) : source);
  let file = p;
  try {
    if ((await fs.stat(p)).isDirectory()) file = path.join(p, 'model.json');
  } catch {
    throw new ModelLoadError(`expected a graph model folder or model.json; got ${p}, which does not exist`);
  }
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new ModelLoadError(`expected a readable ${file}; got ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const json = parseGraphModelJson(text, file);
  const parts: Uint8Array[] = [];
  for (const rel of json.weightsManifest.flatMap((g) => g.paths)) {
    const wf = path.join(path.dirname(file), rel);
    try {
      parts.push(await fs.readFile(wf));
    } catch {
      throw new ModelLoadError(`expected weight file ${wf} listed in ${file}; got no such file`);
    }
  }
  return { json, data: concat(parts), where: file };
}

/** Read and translate a graph model (folder, model.json, URL or in-memory files). */
export async function loadGraphModelGraph(source: GraphModelSource, opts: TranslateOptions = {}): Promise<TranslatedGraphModel & { json: GraphModelJson }> {
  const { json, data, where } = await readGraphModelSource(source);
  if (json.format && json.format !== 'graph-model') {
    throw new ModelLoadError(`expected a graph model ("format": "graph-model") in ${where}; got format "${json.format}" (load layers models with loadModel / Classifier.fromModel)`);
  }
  const weights = decodeGraphModelWeights(json, data, where);
  return { ...translateGraphModel(json, weights, { ...opts, where: opts.where ?? where }), json };
}
