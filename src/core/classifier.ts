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
  private readonly fn?: (x: tf.Tensor4D) => tf.Tensor2D;
  private readonly logitNode?: string;

  private constructor(init: {
    name: string; domain: InputDomain; numClasses: number; classNames?: string[];
    model?: tfl.LayersModel; graph?: Graph; fn?: (x: tf.Tensor4D) => tf.Tensor2D; logitNode?: string; strippedSoftmax?: boolean;
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
  }

  /** Wrap a tf.LayersModel (Sequential or functional) taking NHWC images and giving class scores. */
  static fromModel(model: tfl.LayersModel, opts: ClassifierOptions = {}): Classifier {
    const graph = buildGraph(model);
    const inShape = graph.nodes[0].shape;
    if (inShape.length !== 3 || inShape.some((d) => d <= 0)) {
      throw new InvalidInputError(`expected a model taking images [height, width, channels]; got input shape [${inShape.join(', ')}]`);
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
      low: opts.low ?? 0,
      high: opts.high ?? 1,
      transform: transformNode?.params.transform,
    };
    return new Classifier({
      name: opts.name ?? model.name, domain, numClasses: logitShape[0], classNames: opts.classNames,
      model, graph, logitNode, strippedSoftmax: stripped,
    });
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

  /** Names of the outputs of convolution layers (post-activation), in order. */
  convLayers(): string[] {
    const g = this.requireGraph('list conv layers');
    const convLayerNames = new Set(g.nodes.filter((n) => n.kind === 'conv2d' || n.kind === 'depthwise-conv2d').map((n) => n.layerName));
    return g.nodes.filter((n) => convLayerNames.has(n.layerName) && n.name === n.layerName).map((n) => n.name);
  }

  /** The node with this name; throws OptionError listing the valid names. */
  node(name: string): GraphNode {
    const g = this.requireGraph(`find layer "${name}"`);
    const n = g.byName.get(name);
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

/** Whether node n (an ancestor of the output) reads an input-side value without passing through `via`. */
function bypasses(g: Graph, n: string, via: string, before: Set<string>): boolean {
  const node = g.byName.get(n)!;
  return node.inputs.some((i) => before.has(i) && i !== via);
}
