/**
 * The relevance-propagation engine: one forward pass through the classifier's graph in which every
 * node is computed normally but carries a custom backward (tf.customGrad) that maps *relevance* at
 * its output to relevance at its inputs — the rule of its layer for Dense/Conv2D, pass-through for
 * activations and the input transform, proportional splits (Zennit's Norm) for Add, average
 * pooling and global average pooling, winner-take-all (first maximum in row-major order) or
 * proportional for max pooling. One tf.grad call then yields the relevance map at the input.
 *
 * Everything is scoped to the call: overrides are passed to runGraph for this run only, the
 * canonized graph is a separate node list, no gradient is registered globally.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../core/classifier.js';
import { runGraph, upsampleBilinearTranspose, type Graph, type GraphNode, type NodeOverride } from '../../core/graph.js';
import { firstLayerBounds } from '../../core/domain.js';
import { UnsupportedLayerError } from '../../core/errors.js';
import { targetMask } from '../../core/target.js';
import { avgPoolCounts } from '../../core/avg-pool.js';
import { wasmKernelsInstalled } from '../../engine/wasm-kernels/index.js';
import { canonize as canonizeGraph, batchNormAffine } from './canonize.js';
import { isLinearNode, linearOpOf, convTranspose } from './linear.js';
import { applyRule, epsilonRule, stabilize, usesConstantInputs, type Rule, type RuleContext } from './rules.js';
import type { Composite, LayerContext } from './composites.js';

export type MaxPoolMode = 'winner' | 'proportional';

export interface PropagationConfig {
  composite: Composite;
  /** Rule for layers the composite leaves open; default ε(1e-6). */
  fallback?: Rule;
  /** Max pooling: all relevance to the window's (first) maximum, or split in proportion to the inputs. */
  maxPool?: MaxPoolMode;
  /** Relevance at the output: the target logit (default; Σ R ≈ f(x)) or 1. */
  outputRelevance?: 'logit' | 'one';
  /** Fold BatchNorm into the preceding layer first; default true. */
  canonize?: boolean;
  /** Stabiliser of the proportional splits (Add, pooling, unfolded BatchNorm); default 1e-6. */
  stabilizer?: number;
  /** Input bounds for z^B (in the first layer's input space); default from the classifier's domain. */
  bounds?: { low: number; high: number };
  /**
   * How rules whose modified inputs do not scale with x (flat, w², z^B's bounds) treat the border an
   * explicit ZeroPadding2D adds in front of a linear layer: 'input' (default here; Zennit on the graph
   * as written — the border counts as input and its relevance is then dropped by the padding) or
   * 'implicit' (as the layer's own zero padding: the border is no input, gets no relevance and is not
   * counted in the denominators — Zennit on the same network written with implicit padding; the
   * default of the lrp and deep-taylor methods).
   */
  explicitPadding?: ExplicitPadding;
}

export type ExplicitPadding = 'input' | 'implicit';

export interface PropagationResult {
  /** Relevance at the input, NHWC like x. */
  relevance: tf.Tensor4D;
  /** Target logit per image. */
  scores: number[];
  /** Relevance put at the output per image (the logit, or 1). */
  start: number[];
  /** Σ relevance per image. */
  total: number[];
  /** |Σ R − start| / |start| per image. */
  conservationError: number[];
  /** Rule name per linear layer. */
  rules: Record<string, string>;
  /** BatchNorm layers folded by the canonizer. */
  folded: string[];
}

interface Analysis {
  graph: Graph;
  folded: string[];
  logitNode: string;
  linear: GraphNode[];
  first: Set<string>;
  last: Set<string>;
  nonNegative: Map<string, boolean>;
  bounds: Map<string, { low: number; high: number } | undefined>;
  /** Linear layers whose output reaches a rectifier (rectifiedLayers). */
  rectified: Set<string>;
  /** Linear layers fed by a zero-valued ZeroPadding2D: its padding and the node it pads. */
  padded: Map<string, { pad: [[number, number], [number, number]]; source: string }>;
}

const cache = new WeakMap<Graph, { canon: Analysis; plain: Analysis }>();

const NONNEG_ACTIVATIONS = new Set(['relu6', 'thresholded-relu', 'sigmoid', 'hard_sigmoid', 'softplus', 'softmax']);
/**
 * Element-wise activations relevance passes through unchanged (Zennit's Pass rule on its Activation
 * types): rectifiers, clipped and leaky ones included, and the smooth ones (ELU, swish, GELU…).
 * Softmax/log-softmax are not element-wise and are only accepted as the final layer (stripped).
 */
export const PASS_ACTIVATIONS: ReadonlySet<string> = new Set([
  'relu', 'relu6', 'thresholded-relu', 'leakyrelu', 'prelu', 'linear', 'sigmoid', 'hard_sigmoid', 'tanh', 'elu', 'selu',
  'softplus', 'softsign', 'swish', 'mish', 'gelu', 'gelu_new',
]);
/** Activations whose output makes the other factor of a Multiply a gated signal (squeeze-and-excitation). */
const GATE_ACTIVATIONS = new Set(['sigmoid', 'hard_sigmoid', 'softmax']);

/** Whether a ReLU node's output is ≥ 0 (no negative slope, threshold ≥ 0). */
function reluNonNegative(n: GraphNode): boolean {
  return n.params.activation === 'relu' && !n.params.negativeSlope && (n.params.threshold ?? 0) >= 0;
}

/**
 * The factors of a Multiply node that are gates: a factor broadcast against the output (fewer
 * elements, as the [1, 1, C] excitation of a squeeze-and-excitation block) or one produced by a
 * sigmoid / hard-sigmoid / softmax (through reshapes, identities and Dropout). Relevance goes to the
 * other factors (Zennit/iNNvestigate practice: a gate is treated as a constant); when every factor
 * or none is a gate, all factors share it equally.
 */
export function multiplyGates(graph: Graph, node: GraphNode): boolean[] {
  const size = (s: number[]) => s.reduce((a, b) => a * Math.max(b, 1), 1);
  const outSize = size(node.shape);
  const gates = node.inputs.map((name) => {
    let cur = graph.byName.get(name);
    if (cur && size(cur.shape) < outSize) return true;
    while (cur && ['reshape', 'identity', 'flatten', 'permute'].includes(cur.kind)) cur = graph.byName.get(cur.inputs[0]);
    return !!cur && cur.kind === 'activation' && GATE_ACTIVATIONS.has(cur.params.activation ?? '');
  });
  return gates.every(Boolean) ? gates.map(() => false) : gates;
}

/** Whether a node is a rectifier: ReLU (no negative slope, threshold ≥ 0), ReLU6, thresholded ReLU. */
function isRectifier(n: GraphNode): boolean {
  return n.kind === 'activation' && (['relu6', 'thresholded-relu'].includes(n.params.activation ?? '') || reluNonNegative(n));
}

/**
 * Linear layers (Dense, Conv2D, DepthwiseConv2D, Conv2DTranspose) whose output, followed through
 * BatchNorm and identity nodes, is the sole input of a rectifier. Relevance reaches such a unit only
 * where it is active (z > 0), which is what z⁺ and αβ presume; every other linear layer may receive
 * relevance of either sign on units of either sign (an Add's proportional split hands it to a
 * residual branch's last conv whatever its sign).
 */
export function rectifiedLayers(graph: Graph): Set<string> {
  const consumers = new Map<string, GraphNode[]>(graph.nodes.map((n) => [n.name, []]));
  for (const n of graph.nodes) for (const i of n.inputs) consumers.get(i)?.push(n);
  const out = new Set<string>();
  for (const n of graph.nodes) {
    if (!isLinearNode(n)) continue;
    let cur = n;
    for (;;) {
      const next = consumers.get(cur.name) ?? [];
      if (next.length !== 1) break;
      if (next[0].kind === 'batchnorm' || next[0].kind === 'identity') {
        cur = next[0];
        continue;
      }
      if (isRectifier(next[0])) out.add(n.name);
      break;
    }
  }
  return out;
}

/**
 * Convolutions (Conv2D, DepthwiseConv2D, Conv2DTranspose) whose output reaches no rectifier: followed
 * through BatchNorm/identity nodes, it is not the sole input of a ReLU/ReLU6/thresholded ReLU (e.g.
 * MobileNetV2's linear 1×1 projections, ResNet's last conv of each residual branch and its
 * projection shortcut, which feed an Add). z⁺ presumes a rectified unit (relevance only where
 * z > 0); on these, units with R ≠ 0 and no positive contribution lose their relevance. The
 * `unrectified` option of lrp / deep-taylor (default 'zplus-signed', or 'epsilon') changes the rule of
 * exactly these (and of unrectified hidden Dense layers) where the composite says z⁺.
 */
export function unrectifiedConvolutions(graph: Graph): string[] {
  const rectified = rectifiedLayers(graph);
  return graph.nodes
    .filter((n) => n.kind === 'conv2d' || n.kind === 'depthwise-conv2d' || n.kind === 'conv2d-transpose')
    .filter((n) => !rectified.has(n.name))
    .map((n) => n.name);
}

/** [1, H, W, 1]: 1 inside, 0 on the border a ZeroPadding2D added to an [N, H, W, C] tensor. */
function borderMask(shape: number[], pad: [[number, number], [number, number]]): tf.Tensor4D {
  const [[t, b], [l, r]] = pad;
  const inner = tf.ones([1, shape[1] - t - b, shape[2] - l - r, 1]) as tf.Tensor4D;
  return tf.pad(inner, [[0, 0], [t, b], [l, r], [0, 0]]);
}

/**
 * Whether a BatchNorm-form node is input normalisation: it reads the input directly or through
 * other such nodes only (the Classifier's `preprocess` node, a graph model's Sub/Mul/RealDiv by
 * per-channel constants after its Placeholder, or a BatchNormalization as a model's first layer).
 */
export function isInputNormalisation(graph: Graph, node: GraphNode): boolean {
  let cur: GraphNode | undefined = node;
  while (cur && cur.kind === 'batchnorm') cur = graph.byName.get(cur.inputs[0]);
  return !!cur && (cur.kind === 'input' || cur.kind === 'transform');
}

/** Sum t over the axes where `shape` (right-aligned) is 1 or missing: the adjoint of broadcasting to t's shape. */
function sumToShape(t: tf.Tensor, shape: number[]): tf.Tensor {
  const lead = t.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < t.rank; i++) if (i < lead || (shape[i - lead] === 1 && t.shape[i] !== 1)) axes.push(i);
  return axes.length ? tf.reshape(tf.sum(t, axes), shape) : t;
}

function analyze(graph: Graph, classifier: Classifier, folded: string[]): Analysis {
  let logitNode = graph.output;
  const out = graph.byName.get(logitNode)!;
  if (out.kind === 'activation' && out.params.activation === 'softmax') logitNode = out.inputs[0];

  const linear = graph.nodes.filter(isLinearNode);
  // linear ancestors / descendants
  const linAnc = new Map<string, boolean>();
  for (const n of graph.nodes) linAnc.set(n.name, n.inputs.some((i) => linAnc.get(i) || isLinearNode(graph.byName.get(i)!)));
  const linDesc = new Map<string, boolean>();
  const consumers = new Map<string, string[]>(graph.nodes.map((n) => [n.name, []]));
  for (const n of graph.nodes) for (const i of n.inputs) consumers.get(i)!.push(n.name);
  for (const n of [...graph.nodes].reverse()) {
    linDesc.set(n.name, consumers.get(n.name)!.some((c) => linDesc.get(c) || isLinearNode(graph.byName.get(c)!)));
  }
  const first = new Set(linear.filter((n) => !linAnc.get(n.name)).map((n) => n.name));
  const last = new Set(linear.filter((n) => !linDesc.get(n.name)).map((n) => n.name));

  const nonNegative = new Map<string, boolean>();
  const bounds = new Map<string, { low: number; high: number } | undefined>();
  const d = classifier.domain;
  for (const n of graph.nodes) {
    const ins = n.inputs.map((i) => nonNegative.get(i) ?? false);
    const bs = n.inputs.map((i) => bounds.get(i));
    let nn = false;
    let b: { low: number; high: number } | undefined;
    switch (n.kind) {
      case 'input':
        b = { low: d.low, high: d.high };
        nn = d.low >= 0;
        break;
      case 'transform':
        b = n.params.transform ? firstLayerBounds({ ...d, transform: n.params.transform }) : bs[0];
        nn = b ? b.low >= 0 : false;
        break;
      case 'batchnorm':
        // the preprocess node maps the input range per channel: z^B's box is the hull over channels
        if (isInputNormalisation(graph, n) && bs[0]) {
          const { scale, shift } = batchNormAffine(n);
          const [sv, tv] = [scale.dataSync(), shift.dataSync()];
          tf.dispose([scale, shift]);
          const ends = Array.from(sv).flatMap((si, i) => [bs[0]!.low * si + tv[i], bs[0]!.high * si + tv[i]]);
          b = { low: Math.min(...ends), high: Math.max(...ends) };
          nn = b.low >= 0;
        }
        break;
      case 'activation':
        nn = NONNEG_ACTIVATIONS.has(n.params.activation ?? '') || reluNonNegative(n) || (n.params.activation === 'linear' && ins[0]);
        break;
      case 'multiply':
        nn = ins.every(Boolean);
        break;
      case 'zeropad':
        nn = ins[0];
        b = bs[0] ? { low: Math.min(bs[0].low, 0), high: Math.max(bs[0].high, 0) } : undefined;
        break;
      case 'maxpool': case 'avgpool': case 'global-avgpool': case 'global-maxpool':
      case 'flatten': case 'reshape': case 'identity': case 'crop': case 'upsample': case 'permute':
        nn = ins[0];
        b = bs[0];
        break;
      case 'concat':
        nn = ins.every(Boolean);
        b = bs.every(Boolean) ? { low: Math.min(...bs.map((x) => x!.low)), high: Math.max(...bs.map((x) => x!.high)) } : undefined;
        break;
      case 'add':
        nn = ins.every(Boolean);
        break;
      default:
        nn = false;
    }
    nonNegative.set(n.name, nn);
    bounds.set(n.name, b);
  }
  const padded: Analysis['padded'] = new Map();
  for (const n of linear) {
    let src = graph.byName.get(n.inputs[0]);
    while (src && src.kind === 'identity') src = graph.byName.get(src.inputs[0]);
    if (src && src.kind === 'zeropad' && (src.params.padValue ?? 0) === 0 && n.kind !== 'dense') {
      padded.set(n.name, { pad: src.params.pad!, source: src.inputs[0] });
    }
  }
  return { graph, folded, logitNode, linear, first, last, nonNegative, bounds, rectified: rectifiedLayers(graph), padded };
}

function analysisOf(classifier: Classifier, canonize: boolean): Analysis {
  const g = classifier.graph;
  if (!g) {
    throw new UnsupportedLayerError(`relevance propagation needs a layered model; classifier "${classifier.name}" wraps a plain function`);
  }
  let entry = cache.get(g);
  if (!entry) {
    const c = canonizeGraph(g);
    entry = { canon: analyze(c.graph, classifier, [...new Set(c.folded.map((f) => f.batchNorm))]), plain: analyze(g, classifier, []) };
    cache.set(g, entry);
  }
  return canonize ? entry.canon : entry.plain;
}

/** The rule each linear layer gets from a composite (fallback where it gives none). */
export function assignRules(classifier: Classifier, composite: Composite, opts: { canonize?: boolean; fallback?: Rule } = {}): Map<string, Rule> {
  const an = analysisOf(classifier, opts.canonize ?? true);
  const fallback = opts.fallback ?? epsilonRule(1e-6);
  const rules = new Map<string, Rule>();
  an.linear.forEach((node, index) => {
    const ctx: LayerContext = {
      node,
      kind: node.kind === 'dense' ? 'dense' : 'conv2d',
      isFirst: an.first.has(node.name),
      isLast: an.last.has(node.name),
      rectified: an.rectified.has(node.name),
      index,
    };
    rules.set(node.name, composite.ruleFor(ctx) ?? fallback);
  });
  return rules;
}


/**
 * An op with a custom backward. tf.grad runs the forward pass in its own tidy, so everything the
 * backward needs (inputs and output) is saved through customGrad's save function, never closed over.
 */
export function customOp(
  inputs: tf.Tensor[],
  forward: (xs: tf.Tensor[]) => tf.Tensor,
  backward: (dy: tf.Tensor, xs: tf.Tensor[], y: tf.Tensor) => tf.Tensor | tf.Tensor[],
): tf.Tensor {
  const f = (...args: unknown[]) => {
    const xs = args.slice(0, inputs.length) as tf.Tensor[];
    const save = args[inputs.length] as (ts: tf.Tensor[]) => void;
    const value = forward(xs);
    save([...xs, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => backward(dy, saved.slice(0, inputs.length), saved[inputs.length]),
    };
  };
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0])(...inputs);
}

// ---- pooling helpers -------------------------------------------------------------------------

/** [N,H,W,C] → [N·C,H,W,1] so a 1-channel conv acts on every channel alike. */
function channelsToBatch(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [n * c, h, w, 1]);
}
function batchToChannels(x: tf.Tensor4D, n: number, c: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  return tf.transpose(tf.reshape(x, [n, c, h, w]), [0, 2, 3, 1]);
}

/** Window sums (zero padding) of every channel. */
function windowSum(x: tf.Tensor4D, pool: [number, number], strides: [number, number], padding: 'same' | 'valid'): tf.Tensor4D {
  const ones = tf.ones([pool[0], pool[1], 1, 1]) as tf.Tensor4D;
  return batchToChannels(tf.conv2d(channelsToBatch(x), ones, strides, padding), x.shape[0], x.shape[3]);
}
/** Transpose of windowSum: every input position collects the values of the windows covering it. */
function windowSumT(g: tf.Tensor4D, xShape: number[], pool: [number, number], strides: [number, number], padding: 'same' | 'valid'): tf.Tensor4D {
  const ones = tf.ones([pool[0], pool[1], 1, 1]) as tf.Tensor4D;
  const [n, h, w, c] = xShape;
  const t = convTranspose(channelsToBatch(g), ones, [n * c, h, w, 1], strides, padding);
  return batchToChannels(t, n, c);
}

/**
 * Winner-take-all routing for non-overlapping windows, ties to the first maximum in row-major
 * order. The window offsets are moved to the leading axis by one transpose, so each offset is a
 * contiguous slice shaped like the pooled output y and the comparisons need no broadcasting
 * (broadcast binary ops and strided slices are slow on wasm). Offsets are visited in row-major
 * order; an offset wins where it equals the max and no earlier offset has won.
 */
function maxPoolWinnerExact(x: tf.Tensor4D, y: tf.Tensor4D, R: tf.Tensor4D, pool: [number, number]): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [ph, pw] = pool;
  const ho = y.shape[1];
  const wo = y.shape[2];
  const k = ph * pw;
  const m = n * ho * wo * c;
  const xc = ho * ph === h && wo * pw === w ? x : tf.slice(x, [0, 0, 0, 0], [n, ho * ph, wo * pw, c]);
  const offsets = tf.reshape(tf.transpose(tf.reshape(xc, [n, ho, ph, wo, pw, c]), [2, 4, 0, 1, 3, 5]), [k, m]);
  const yf = tf.reshape(y, [1, m]);
  const rf = tf.reshape(R, [1, m]);
  let taken: tf.Tensor | null = null;
  const parts: tf.Tensor[] = [];
  for (let i = 0; i < k; i++) {
    let win: tf.Tensor = tf.cast(tf.equal(tf.slice(offsets, [i, 0], [1, m]), yf), 'float32');
    if (taken) win = tf.mul(win, tf.sub(1, taken));
    if (i < k - 1) taken = taken ? tf.add(taken, win) : win;
    parts.push(tf.mul(win, rf));
  }
  const routed = tf.reshape(tf.transpose(tf.reshape(tf.concat(parts, 0), [ph, pw, n, ho, wo, c]), [2, 3, 0, 4, 1, 5]), [n, ho * ph, wo * pw, c]);
  return (xc === x ? routed : tf.pad(routed, [[0, 0], [0, h - ho * ph], [0, w - wo * pw], [0, 0]])) as tf.Tensor4D;
}

/** Whether the backend's MaxPoolGrad routes to the first maximum in row-major order for any sign. */
function trustedMaxPoolGrad(): boolean {
  const b = tf.getBackend();
  return b === 'cpu' || b === 'tensorflow' || (b === 'wasm' && wasmKernelsInstalled());
}

function maxPoolWinner(node: GraphNode, x: tf.Tensor4D, y: tf.Tensor4D, R: tf.Tensor4D): tf.Tensor4D {
  const p = node.params;
  const pool = p.poolSize!;
  const strides = p.strides!;
  const attrs = { filterSize: pool, strides, pad: p.padding! };
  if (trustedMaxPoolGrad()) {
    return tf.engine().runKernel('MaxPoolGrad', { dy: R, input: x, output: y }, attrs) as tf.Tensor4D;
  }
  // Stock wasm kernel: it misroutes windows whose max is ≤ 0 and breaks ties differently (ENGINE.md).
  const [, h, w] = x.shape;
  const exact = strides[0] === pool[0] && strides[1] === pool[1] && (p.padding === 'valid' || (h % pool[0] === 0 && w % pool[1] === 0));
  if (exact) return maxPoolWinnerExact(x, y, R, pool);
  // Overlapping or padded windows: shift so every window max is > 0 (ties then follow the stock kernel).
  const shifted = tf.add(tf.sub(x, tf.min(x)), 1);
  const ys = tf.maxPool(shifted as tf.Tensor4D, pool, strides, p.padding!);
  return tf.engine().runKernel('MaxPoolGrad', { dy: R, input: shifted, output: ys }, attrs) as tf.Tensor4D;
}

function globalMaxWinner(x: tf.Tensor4D, R: tf.Tensor): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const v = tf.transpose(tf.reshape(x, [n, h * w, c]), [0, 2, 1]);
  const isMax = tf.cast(tf.equal(v, tf.max(v, -1, true)), 'float32');
  const firstMax = tf.mul(isMax, tf.cast(tf.equal(tf.cumsum(isMax, 2), 1), 'float32'));
  const routed = tf.mul(firstMax, tf.reshape(R, [n, c, 1]));
  return tf.reshape(tf.transpose(routed, [0, 2, 1]), [n, h, w, c]);
}

// ---- the override ----------------------------------------------------------------------------

function makeOverride(an: Analysis, rules: Map<string, Rule>, cfg: PropagationConfig): NodeOverride {
  const stab = cfg.stabilizer ?? 1e-6;
  const maxMode = cfg.maxPool ?? 'winner';
  const proportional = (node: GraphNode, dy: tf.Tensor, x: tf.Tensor) => {
    const p = node.params;
    const s = windowSum(x as tf.Tensor4D, p.poolSize!, p.strides!, p.padding!);
    return tf.mul(x, windowSumT(tf.div(dy, stabilize(s, stab)) as tf.Tensor4D, x.shape, p.poolSize!, p.strides!, p.padding!));
  };
  return (node, ins, standard) => {
    switch (node.kind) {
      case 'dense':
      case 'conv2d':
      case 'depthwise-conv2d':
      case 'conv2d-transpose': {
        const rule = rules.get(node.name)!;
        const op = linearOpOf(node);
        const inputName = node.inputs[0];
        // 'implicit' padding: the border is no input of the rules that replace x (flat, w², z^B)
        const pad = cfg.explicitPadding === 'implicit' && usesConstantInputs(rule) ? an.padded.get(node.name) : undefined;
        const ctx: RuleContext = {
          node: node.name,
          cacheOwner: an.graph,
          nonNegativeInput: an.nonNegative.get(inputName) ?? false,
          bounds: an.first.has(node.name) ? (cfg.bounds ?? an.bounds.get(pad ? pad.source : inputName)) : cfg.bounds,
        };
        return customOp(ins, standard, (dy, [x], y) =>
          applyRule(rule, op, x, dy, pad ? { ...ctx, inputMask: borderMask(x.shape, pad.pad) } : ctx, y));
      }
      case 'transform':
        return customOp(ins, standard, (dy) => dy);
      case 'activation': {
        const a = node.params.activation ?? 'linear';
        if (!PASS_ACTIVATIONS.has(a)) {
          throw new UnsupportedLayerError(
            `relevance propagation cannot pass through node "${node.name}" (${node.layerClass}, activation ${a}); supported activations: ${[...PASS_ACTIVATIONS].join(', ')}`,
          );
        }
        if (a === 'linear') return undefined;
        return customOp(ins, standard, (dy) => dy);
      }
      case 'maxpool':
        return customOp(ins, standard, (dy, [x], y) =>
          maxMode === 'winner' ? maxPoolWinner(node, x as tf.Tensor4D, y as tf.Tensor4D, dy as tf.Tensor4D) : proportional(node, dy, x));
      case 'avgpool':
        // Zennit's Norm on the window mean z_k = s_k / count_k: R_i = x_i Σ_k (1/count_k) R_k / stab(z_k)
        return customOp(ins, standard, (dy, [x], y) => {
          const p = node.params;
          const count = p.padding === 'same' ? avgPoolCounts(x.shape[1]!, x.shape[2]!, p.poolSize!, p.strides!) : p.poolSize![0] * p.poolSize![1];
          const q = tf.div(dy, tf.mul(stabilize(y, stab), count)) as tf.Tensor4D;
          return tf.mul(x, windowSumT(q, x.shape, p.poolSize!, p.strides!, p.padding!));
        });
      case 'global-avgpool':
        // Zennit's Norm on the mean z = Σx/(H·W): R_i = x_i · (1/(H·W)) · R / stab(z) (ε on the mean, not on the sum)
        return customOp(ins, standard, (dy, [x], y) => {
          const [n, h, w, c] = x.shape;
          return tf.mul(x, tf.div(tf.reshape(dy, [n, 1, 1, c]), tf.mul(tf.reshape(stabilize(y, stab), [n, 1, 1, c]), h * w)));
        });
      case 'global-maxpool':
        return customOp(ins, standard, (dy, [x]) => globalMaxWinner(x as tf.Tensor4D, dy));
      case 'add':
        if (ins.length === 1) return undefined;
        return customOp(ins, standard, (dy, xs, y) => {
          const q = tf.div(dy, stabilize(y, stab));
          return xs.map((x) => tf.mul(x, q));
        });
      case 'multiply': {
        // the gate(s) are constants; the other factor(s) take the relevance (shared equally when several)
        const gates = multiplyGates(an.graph, node);
        const takers = gates.filter((g) => !g).length;
        return customOp(ins, standard, (dy, xs) =>
          xs.map((x, i) => (gates[i] ? tf.zerosLike(x) : sumToShape(takers === 1 ? dy : tf.div(dy, takers), x.shape))));
      }
      case 'upsample':
        if (node.params.interpolation !== 'bilinear') return undefined; // nearest: the gradient sums the copies, exactly
        // bilinear: a bias-free linear map under the ε rule
        return customOp(ins, standard, (dy, [x], y) =>
          tf.mul(x, upsampleBilinearTranspose(tf.div(dy, stabilize(y, stab)) as tf.Tensor4D, x.shape, node.params.size!)));
      case 'batchnorm':
        // A model's input normalisation ((x − mean)/std: Classifier preprocessing, or a graph model's
        // Sub/RealDiv by constants right after its input): a change of units like 'transform', so
        // relevance passes through unchanged.
        if (isInputNormalisation(an.graph, node)) return customOp(ins, standard, (dy) => dy);
        // Not folded: an element-wise linear layer y = x·s + t under the ε rule.
        return customOp(ins, standard, (dy, [x], y) => {
          const { scale } = batchNormAffine(node);
          return tf.div(tf.mul(tf.mul(x, scale), dy), stabilize(y, stab));
        });
      default:
        return undefined; // input, identity, flatten, reshape, permute, zeropad, crop, concat: their gradient moves relevance exactly (crop: zeros at the cut border)
    }
  };
}

/**
 * Relevance at the input for the target class of each image.
 *
 * @example
 * const r = propagate(classifier, x, [3], { composite: compositeByName('epsilon-plus-flat') });
 * r.relevance.print(); r.relevance.dispose();
 */
export function propagate(classifier: Classifier, x: tf.Tensor4D, targets: number[], cfg: PropagationConfig): PropagationResult {
  const an = analysisOf(classifier, cfg.canonize ?? true);
  const rules = assignRules(classifier, cfg.composite, { canonize: cfg.canonize, fallback: cfg.fallback });
  const override = makeOverride(an, rules, cfg);
  const useLogit = (cfg.outputRelevance ?? 'logit') === 'logit';
  let scoresT: tf.Tensor1D | undefined;
  const relevance = tf.tidy(() => {
    const mask = targetMask(targets, classifier.numClasses);
    const f = (v: tf.Tensor) => {
      const logits = runGraph(an.graph, v, { override, output: an.logitNode }).output as tf.Tensor2D;
      scoresT = tf.keep(tf.sum(tf.mul(logits, mask), 1) as tf.Tensor1D);
      const start = useLogit
        ? customOp([logits], ([z]) => tf.clone(z), (dy, [z]) => tf.mul(dy, z))
        : logits;
      return tf.sum(tf.mul(start, mask));
    };
    return tf.grad(f)(x) as tf.Tensor4D;
  });
  const totalT = tf.sum(relevance, [1, 2, 3]);
  const scores = Array.from(scoresT!.dataSync());
  const total = Array.from(totalT.dataSync());
  tf.dispose([scoresT!, totalT]);
  const start = useLogit ? scores : scores.map(() => 1);
  const conservationError = total.map((t, i) => Math.abs(t - start[i]) / Math.max(Math.abs(start[i]), 1e-12));
  return {
    relevance,
    scores,
    start,
    total,
    conservationError,
    rules: Object.fromEntries([...rules].map(([k, r]) => [k, r.name])),
    folded: an.folded,
  };
}
