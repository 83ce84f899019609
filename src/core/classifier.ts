/**
 * Classifier: a model plus what explanation methods need of it — its input domain, logits (with a
 * final softmax stripped), its layers, intermediate activations, and the ability to restart the
 * network from any layer (split).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildGraph, runGraph, ancestors, type Graph, type GraphNode, type NodeKind, type RunOptions } from './graph.js';
import type { InputDomain } from './domain.js';
import { InvalidInputError, OptionError, UnsupportedLayerError } from './errors.js';
import { batchSizeFor } from '../engine/memory.js';
import type { PreprocessingSpec } from './preprocessing.js';
import type { GraphModelSource } from '../models/graph-model.js';

export interface LayerInfo {
  /** Node name: a Keras layer name, or NAME/preact for the linear part of a layer with a fused activation. */
  name: string;
  kind: NodeKind;
  layerName: string;
  layerClass: string;
  /** Output shape without the batch dimension. */
  shape: number[];
  /** Activation name for activation nodes. */
  activation?: string;
}

export interface ClassifierOptions {
  name?: string;
  /** Value range of valid inputs; default [0, 1]. */
  low?: number;
  high?: number;
  classNames?: string[];
  /**
   * How photos become this model's input (data/photo.ts reads it). Its range sets low/high unless
   * those are given; its per-channel mean/std become the classifier's first node, `preprocess`.
   */
  preprocessing?: PreprocessingSpec;
}

export interface GraphModelOptions extends ClassifierOptions {
  /** [height, width, channels] when the model's input leaves the image size open. */
  inputShape?: [number, number, number];
  /** The output node, when the graph has several. */
  output?: string;
}

export interface FunctionClassifierOptions extends ClassifierOptions {
  inputShape: [number, number, number];
  numClasses: number;
}

export interface SplitNetwork {
  /** Input → activation of the split node. */
  head(x: tf.Tensor): tf.Tensor;
  /**
   * Activation of the split node → logits. `x` is needed only when other paths bypass the split
   * node (skip connections); those paths are then computed from x and held constant.
   */
  tail(activation: tf.Tensor, x?: tf.Tensor): tf.Tensor2D;
  /** True when every path from the input to the output passes through the split node. */
  isCut: boolean;
}

export class Classifier {
  readonly name: string;
  readonly domain: InputDomain;
  readonly numClasses: number;
  readonly classNames: string[];
  /** The wrapped model, when built from a LayersModel. */
  readonly model?: tfl.LayersModel;
  /** The executable node graph, when built from a LayersModel. */
  readonly graph?: Graph;
  /** Whether the model's own output was a softmax that `logits` strips. */
  readonly strippedSoftmax: boolean;
  /** How photos become this model's input (see core/preprocessing.ts), when known. */
  readonly preprocessing?: PreprocessingSpec;
  /**
   * Weight tensors the graph reads that belong to no LayersModel (graph models, the preprocess
   * node): backend recovery snapshots them, dispose() frees them.
   */
  readonly graphWeights: tf.Tensor[];
  private readonly fn?: (x: tf.Tensor4D) => tf.Tensor2D;
  private readonly logitNode?: string;

  private constructor(init: {
    name: string; domain: InputDomain; numClasses: number; classNames?: string[];
    model?: tfl.LayersModel; graph?: Graph; fn?: (x: tf.Tensor4D) => tf.Tensor2D; logitNode?: string; strippedSoftmax?: boolean;
    preprocessing?: PreprocessingSpec; graphWeights?: tf.Tensor[];
  }) {
    this.name = init.name;
    this.domain = init.domain;
    this.numClasses = init.numClasses;
    this.classNames = init.classNames ?? Array.from({ length: init.numClasses }, (_, i) => String(i));
    this.model = init.model;
    this.graph = init.graph;
    this.fn = init.fn;
    this.logitNode = init.logitNode;
    this.strippedSoftmax = init.strippedSoftmax ?? false;
    this.preprocessing = init.preprocessing;
    this.graphWeights = init.graphWeights ?? [];
  }

  /** Wrap a tf.LayersModel (Sequential or functional) taking NHWC images and giving class scores. */
  static fromModel(model: tfl.LayersModel, opts: ClassifierOptions = {}): Classifier {
    return Classifier.fromGraph(buildGraph(model), { ...opts, name: opts.name ?? model.name }, model);
  }

  /**
   * Wrap an executable node graph (what buildGraph makes of a LayersModel, or translateGraphModel
   * of a TF graph model). `weights` are tensors the graph reads that the classifier then owns.
   */
  static fromGraph(graph: Graph, opts: ClassifierOptions & { weights?: tf.Tensor[] } = {}, model?: tfl.LayersModel): Classifier {
    const inShape = graph.nodes[0].shape;
    if (inShape.length !== 3 || inShape.some((d) => d <= 0)) {
      throw new InvalidInputError(`expected a model taking images [height, width, channels]; got input shape [${inShape.join(', ')}]`);
    }
    const weights = [...(opts.weights ?? [])];
    const pre = opts.preprocessing;
    if (pre && (pre.mean || pre.std)) {
      const pw = addPreprocessNode(graph, pre);
      weights.push(...pw);
    }
    let logitNode = graph.output;
    let stripped = false;
    const out = graph.byName.get(logitNode)!;
    if (out.kind === 'activation' && out.params.activation === 'softmax') {
      logitNode = out.inputs[0];
      stripped = true;
    }
    const logitShape = graph.byName.get(logitNode)!.shape;
    if (logitShape.length !== 1) {
      throw new InvalidInputError(`expected a model whose output is a vector of class scores; got output shape [${logitShape.join(', ')}]`);
    }
    const transformNode = graph.nodes.find((n) => n.kind === 'transform');
    const domain: InputDomain = {
      shape: inShape as [number, number, number],
      low: opts.low ?? pre?.range?.[0] ?? 0,
      high: opts.high ?? pre?.range?.[1] ?? 1,
      transform: transformNode?.params.transform,
    };
    if (opts.classNames && opts.classNames.length !== logitShape[0]) {
      throw new InvalidInputError(`expected ${logitShape[0]} class names (one per model output); got ${opts.classNames.length}`);
    }
    return new Classifier({
      name: opts.name ?? 'model', domain, numClasses: logitShape[0], classNames: opts.classNames,
      model, graph, logitNode, strippedSoftmax: stripped, preprocessing: pre, graphWeights: weights,
    });
  }

  /**
   * Load a TF.js graph model (tfjs-converter's "graph-model" model.json) from a folder, a model.json
   * path, an http(s)/file URL, or memory ({ modelJson, weights }), and run it with Glasswing's own
   * executor: its TF ops become the same nodes a LayersModel's layers do, so every method works on
   * it and every TF node name can be given to Grad-CAM, split() or activations(). Quantised weights
   * are dequantised; a final Softmax is stripped. Unsupported ops throw UnsupportedLayerError
   * naming the op and the node; missing or corrupt files throw ModelLoadError.
   */
  static async fromGraphModel(source: GraphModelSource, opts: GraphModelOptions = {}): Promise<Classifier> {
    const { loadGraphModelGraph } = await import('../models/graph-model.js');
    const t = await loadGraphModelGraph(source, { inputShape: opts.inputShape, output: opts.output });
    try {
      const where = typeof source === 'string' ? source.replace(/\/+$/, '').replace(/\/model\.json$/, '').split('/').pop() : undefined;
      return Classifier.fromGraph(t.graph, { ...opts, name: opts.name ?? where ?? 'graph-model', weights: t.weights });
    } catch (e) {
      tf.dispose(t.weights);
      throw e;
    }
  }

  /** The same classifier (sharing the model, graph and weights) with other class names. */
  withClassNames(classNames: string[]): Classifier {
    if (classNames.length !== this.numClasses) {
      throw new InvalidInputError(`expected ${this.numClasses} class names (one per model output); got ${classNames.length}`);
    }
    return new Classifier({
      name: this.name, domain: this.domain, numClasses: this.numClasses, classNames, model: this.model, graph: this.graph, fn: this.fn,
      logitNode: this.logitNode, strippedSoftmax: this.strippedSoftmax, preprocessing: this.preprocessing, graphWeights: this.graphWeights,
    });
  }

  /** Free the tensors this classifier owns (a graph model's weights; a LayersModel's are the model's to dispose). */
  dispose(): void {
    tf.dispose(this.graphWeights);
    this.graphWeights.length = 0;
  }

  /** Wrap a plain function x ↦ logits. Methods that need layers (Grad-CAM, LRP…) are unavailable. */
  static fromFunction(fn: (x: tf.Tensor4D) => tf.Tensor2D, opts: FunctionClassifierOptions): Classifier {
    return new Classifier({
      name: opts.name ?? 'function',
      domain: { shape: opts.inputShape, low: opts.low ?? 0, high: opts.high ?? 1 },
      numClasses: opts.numClasses, classNames: opts.classNames, fn,
    });
  }

  get inputShape(): [number, number, number] {
    return this.domain.shape;
  }

  /** Class scores before any softmax, [N, numClasses]. */
  logits(x: tf.Tensor, runOptions: Omit<RunOptions, 'output' | 'until'> = {}): tf.Tensor2D {
    if (this.fn) return tf.tidy(() => this.fn!(x as tf.Tensor4D));
    return this.forward(x, runOptions).logits;
  }

  /** Logits plus captured activations; intermediate tensors are the caller's to tidy. */
  forward(x: tf.Tensor, runOptions: Omit<RunOptions, 'output' | 'until'> = {}): { logits: tf.Tensor2D; captured: Map<string, tf.Tensor> } {
    const graph = this.requireGraph('forward with options');
    const capture = runOptions.capture ? [...runOptions.capture] : [];
    if (capture.length === 0 && !runOptions.override && !runOptions.substitute) {
      return { logits: tf.tidy(() => runGraph(graph, x, { output: this.logitNode }).output as tf.Tensor2D), captured: new Map() };
    }
    for (const c of capture) this.node(c);
    const r = runGraph(graph, x, { ...runOptions, capture, output: this.logitNode });
    return { logits: r.output as tf.Tensor2D, captured: r.captured };
  }

  /** Softmax probabilities [N, numClasses]. */
  probabilities(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => tf.softmax(this.logits(x)));
  }

  /** Predicted class per image, in batches of at most `batchSize` (fewer when the memory budget says so). */
  async predictClasses(x: tf.Tensor, batchSize = 256): Promise<number[]> {
    batchSize = batchSizeFor(this, 'forward', batchSize, { shape: x.shape.slice(1) });
    const out: number[] = [];
    for (let i = 0; i < x.shape[0]; i += batchSize) {
      const n = Math.min(batchSize, x.shape[0] - i);
      const am = tf.tidy(() => tf.argMax(this.logits(tf.slice(x, i, n)), 1));
      out.push(...(await am.data()));
      am.dispose();
    }
    return out;
  }

  /** The nodes of the network in execution order (input excluded). */
  layers(): LayerInfo[] {
    const g = this.requireGraph('list layers');
    return g.nodes
      .filter((n) => n.kind !== 'input')
      .map((n) => ({ name: n.name, kind: n.kind, layerName: n.layerName, layerClass: n.layerClass, shape: n.shape, activation: n.params.activation }));
  }

  /**
   * Names of the outputs of convolution layers (post-activation), in order: Conv2D, DepthwiseConv2D,
   * Conv2DTranspose, and SeparableConv2D (its output node NAME, not the inner NAME/depthwise).
   */
  convLayers(): string[] {
    const g = this.requireGraph('list conv layers');
    const kinds = new Set(['conv2d', 'depthwise-conv2d', 'conv2d-transpose']);
    const convLayerNames = new Set(g.nodes.filter((n) => kinds.has(n.kind)).map((n) => n.layerName));
    return g.nodes.filter((n) => convLayerNames.has(n.layerName) && n.name === n.layerName).map((n) => n.name);
  }

  /** The node with this name; throws OptionError listing the valid names. */
  node(name: string): GraphNode {
    const g = this.requireGraph(`find layer "${name}"`);
    const n = g.byName.get(name);
    const alias = g.aliases?.get(name);
    if (!n && alias) {
      throw new OptionError(`expected a layer name of model "${this.name}"; got "${name}", a source node computed by node "${alias}" (merged or resolved away on load): use "${alias}"`);
    }
    if (!n) {
      throw new OptionError(`expected a layer name of model "${this.name}"; got "${name}" (layers: ${g.nodes.slice(1).map((m) => m.name).join(', ')})`);
    }
    return n;
  }

  /** Activations of the named layers for x. The returned tensors belong to the caller. */
  activations(x: tf.Tensor, names: string[]): Map<string, tf.Tensor> {
    for (const n of names) this.node(n);
    const result = new Map<string, tf.Tensor>();
    tf.tidy(() => {
      const { captured } = runGraph(this.graph!, x, { capture: names, output: this.logitNode });
      for (const [k, v] of captured) result.set(k, tf.keep(tf.clone(v)));
    });
    return result;
  }

  /** Split the network at a node: head(x) gives its activation, tail(a) continues to the logits. */
  split(name: string): SplitNetwork {
    const g = this.requireGraph(`split at "${name}"`);
    this.node(name);
    // The node is a cut when nothing after it reaches back to the input except through it.
    const before = ancestors(g, name);
    const logitAnc = ancestors(g, this.logitNode!);
    const isCut = [...logitAnc].every((n) => before.has(n) || !bypasses(g, n, name, before));
    return {
      head: (x) => runGraph(g, x, { until: name }).output,
      tail: (a, x) => {
        if (!isCut && !x) {
          throw new OptionError(`layer "${name}" is bypassed by a skip connection; pass the input x to tail(a, x)`);
        }
        const input = x ?? tf.zeros([a.shape[0], ...this.inputShape]);
        return runGraph(g, input, { substitute: new Map([[name, a]]), output: this.logitNode }).output as tf.Tensor2D;
      },
      isCut,
    };
  }

  /** Throw InvalidInputError unless x is a finite NHWC batch of this classifier's shape and range. */
  validateInput(x: tf.Tensor, opts: { checkRange?: boolean } = {}): void {
    const [h, w, c] = this.inputShape;
    if (x.rank !== 4) {
      throw new InvalidInputError(`expected an NHWC image batch of rank 4 [N, ${h}, ${w}, ${c}]; got rank ${x.rank} [${x.shape.join(', ')}]`);
    }
    if (x.shape[1] !== h || x.shape[2] !== w) {
      throw new InvalidInputError(`expected images of ${h}×${w}; got ${x.shape[1]}×${x.shape[2]}`);
    }
    if (x.shape[3] !== c) {
      throw new InvalidInputError(`expected ${c} channel${c === 1 ? '' : 's'}; got ${x.shape[3]}`);
    }
    if (x.shape[0] === 0) throw new InvalidInputError('expected at least one image; got an empty batch');
    const [finite, lo, hi] = tf.tidy(() => {
      const f = tf.all(tf.isFinite(x));
      return [f, tf.min(x), tf.max(x)];
    });
    const [isFinite, min, max] = [finite.dataSync()[0], lo.dataSync()[0], hi.dataSync()[0]];
    tf.dispose([finite, lo, hi]);
    if (!isFinite) throw new InvalidInputError('expected finite input values; got NaN or Infinity');
    if (opts.checkRange !== false) {
      const tol = 1e-3 * (this.domain.high - this.domain.low);
      if (min < this.domain.low - tol || max > this.domain.high + tol) {
        throw new InvalidInputError(
          `expected input values in [${this.domain.low}, ${this.domain.high}]; got values in [${min.toPrecision(4)}, ${max.toPrecision(4)}]`,
        );
      }
    }
  }

  private requireGraph(what: string): Graph {
    if (!this.graph) {
      throw new UnsupportedLayerError(`cannot ${what}: classifier "${this.name}" wraps a plain function, not a layered model`);
    }
    return this.graph;
  }
}

/**
 * Insert the per-channel normalisation (x − mean)/std as node `preprocess` right after the input: a
 * BatchNorm-form node (variance std², ε 0), so every method sees an ordinary element-wise affine layer.
 */
function addPreprocessNode(graph: Graph, pre: PreprocessingSpec): tf.Tensor[] {
  const input = graph.nodes[0];
  const c = input.shape[2];
  const expand = (v: number[] | undefined, fill: number, what: string): number[] => {
    if (!v) return new Array(c).fill(fill);
    if (v.length === 1) return new Array(c).fill(v[0]);
    if (v.length !== c) throw new InvalidInputError(`expected ${c} ${what} values (one per input channel) or 1; got ${v.length}`);
    return v;
  };
  if (graph.byName.has('preprocess')) throw new InvalidInputError('the model already has a node named "preprocess"');
  const mean = tf.tensor1d(expand(pre.mean, 0, 'mean'));
  const std = expand(pre.std, 1, 'std');
  const variance = tf.tensor1d(std.map((s) => s * s));
  // explicit scale and offset: tfjs' batchNorm gradient fails on an undefined one
  const gamma = tf.ones([c]);
  const beta = tf.zeros([c]);
  const node: GraphNode = {
    name: 'preprocess', kind: 'batchnorm', layerName: 'preprocess', layerClass: 'Preprocessing', inputs: [input.name], shape: input.shape.slice(),
    params: { batchNorm: () => ({ mean, variance, gamma, beta, epsilon: 0 }) },
  };
  for (const n of graph.nodes) n.inputs = n.inputs.map((i) => (i === input.name ? 'preprocess' : i));
  graph.nodes.splice(1, 0, node);
  graph.byName.set('preprocess', node);
  return [mean, variance, gamma, beta];
}

/** Whether node n (an ancestor of the output) reads an input-side value without passing through `via`. */
function bypasses(g: Graph, n: string, via: string, before: Set<string>): boolean {
  const node = g.byName.get(n)!;
  return node.inputs.some((i) => before.has(i) && i !== via);
}
