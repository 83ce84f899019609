/**
 * Canonizers rewrite the network into an equivalent one on which relevance rules are meaningful
 * (Zennit's third noun). Here: BatchNormalization folded into the adjacent linear layer.
 *
 * 1. Into the Dense, Conv2D or DepthwiseConv2D right before it (the conv → BN → activation order of
 *    Keras MobileNets and ResNets; what Zennit's canonizers and the conformance references do):
 *
 *      y = (z − μ) / √(σ² + ε) · γ + β,  z = x·W + b   ⇒   y = x·(W·s) + ((b − μ)·s + β),  s = γ / √(σ² + ε)
 *
 * 2. Otherwise into the linear layers right after it (pre-activation blocks, BN → conv), when every
 *    consumer of the BatchNorm is one and the fold is exact: with y = x·s + t per input channel c,
 *
 *      z = Σ W y + b   ⇒   z = Σ (W·s_c) x + (b + Σ_{taps, c} W·t_c)
 *
 *    holds only where every tap of the layer reads a BatchNorm output — a Dense, a 'valid'
 *    convolution, or a 'same' one that adds no padding at this size (1×1 kernels). Where the
 *    convolution zero-pads, the border taps read 0, not t, and the fold would change the output;
 *    such a BatchNorm (and one reaching the conv through a ZeroPadding2D) stays in place. A model's
 *    input normalisation (a BatchNorm-like node right after the input) is a change of units and is
 *    not folded either: folded, its shift would become a first-layer bias that absorbs relevance.
 *
 * A BatchNorm left in place is an element-wise linear layer under the ε rule in the propagation.
 * The canonized graph shares nothing mutable with the original: it is a new node list whose folded
 * kernels are computed on each call from the current weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Graph, GraphNode } from '../../core/graph.js';
import { UnsupportedLayerError } from '../../core/errors.js';
import { cachedWeight } from './weight-cache.js';

/** Consumers of every node. */
export function consumers(graph: Graph): Map<string, string[]> {
  const out = new Map<string, string[]>(graph.nodes.map((n) => [n.name, []]));
  for (const n of graph.nodes) for (const i of n.inputs) out.get(i)?.push(n.name);
  return out;
}

/** Scale and shift of an inference BatchNorm: y = x·scale + shift. */
export function batchNormAffine(node: GraphNode): { scale: tf.Tensor; shift: tf.Tensor } {
  return tf.tidy(() => {
    const bn = node.params.batchNorm!();
    let scale: tf.Tensor = tf.rsqrt(tf.add(bn.variance, bn.epsilon));
    if (bn.gamma) scale = tf.mul(scale, bn.gamma);
    let shift: tf.Tensor = tf.neg(tf.mul(bn.mean, scale));
    if (bn.beta) shift = tf.add(shift, bn.beta);
    return { scale, shift };
  });
}

export interface CanonizeResult {
  graph: Graph;
  /**
   * The BatchNorm nodes folded, with the linear node each went into (a BatchNorm folded into the
   * layers after it has one entry per layer).
   */
  folded: Array<{ batchNorm: string; into: string }>;
}

/**
 * Whether a BatchNorm-like node is the model's input normalisation: its input is the graph input
 * (through identity, input-transform and other such nodes), as Classifier preprocessing's node, a
 * graph model's (x − mean) / std after its placeholder, or a BatchNormalization as first layer (the
 * propagation passes relevance through these unchanged: isInputNormalisation in propagate.ts).
 */
function isInputAffine(graph: Graph, node: GraphNode): boolean {
  let cur = graph.byName.get(node.inputs[0]);
  while (cur && ['identity', 'transform', 'batchnorm'].includes(cur.kind)) cur = graph.byName.get(cur.inputs[0]);
  return !cur || cur.kind === 'input';
}

/** The linear node kinds a BatchNorm next to them can be folded into. */
const FOLDABLE = new Set(['dense', 'conv2d', 'depthwise-conv2d']);

/**
 * The folded kernel and bias, computed in float64 and rounded once to float32 (as the reference
 * generator folds, FORMAT.md §6.4): W'[…, o] = W[…, o]·s_o, b'_o = (b_o − μ_o)·s_o + β_o,
 * s_o = γ_o / √(σ²_o + ε). The output channel o of a depthwise kernel [kh, kw, C, m] is c·m + j, i.e.
 * its last two axes flattened — which is the kernel's own row-major order, so the same loop serves
 * Dense [in, out], Conv2D [kh, kw, in, out] and DepthwiseConv2D.
 */
export function foldBatchNorm(kernel: tf.Tensor, bias: tf.Tensor | undefined, bn: BatchNormParams, kind: string): { kernel: tf.Tensor; bias: tf.Tensor } {
  const mean = bn.mean.dataSync();
  const variance = bn.variance.dataSync();
  const gamma = bn.gamma?.dataSync();
  const beta = bn.beta?.dataSync();
  const outs = mean.length;
  const perOut = kind === 'depthwise-conv2d' ? kernel.shape[2]! * kernel.shape[3]! : kernel.shape[kernel.rank - 1]!;
  if (perOut !== outs) {
    throw new UnsupportedLayerError(`cannot fold a BatchNorm of ${outs} channels into a ${kind} layer with ${perOut} output channels`);
  }
  const scale = new Float64Array(outs);
  for (let o = 0; o < outs; o++) scale[o] = (gamma ? gamma[o] : 1) / Math.sqrt(variance[o] + bn.epsilon);
  const k = kernel.dataSync();
  const folded = new Float32Array(k.length);
  for (let i = 0; i < k.length; i++) folded[i] = k[i] * scale[i % outs];
  const b = bias?.dataSync();
  const fb = new Float32Array(outs);
  for (let o = 0; o < outs; o++) fb[o] = ((b ? b[o] : 0) - mean[o]) * scale[o] + (beta ? beta[o] : 0);
  return { kernel: tf.tensor(folded, kernel.shape, 'float32'), bias: tf.tensor1d(fb, 'float32') };
}

type BatchNormParams = ReturnType<NonNullable<GraphNode['params']['batchNorm']>>;

/**
 * A BatchNorm y = x·s + t (per input channel c) folded into the linear layer that reads y, in float64:
 * W'[…, c, …] = W[…, c, …]·s_c, b'_o = b_o + Σ_{taps, c → o} W·t_c. Kernel layouts: Dense [in, out],
 * Conv2D [kh, kw, in, out], DepthwiseConv2D [kh, kw, C, m] (output channel c·m + j reads channel c only).
 * Exact only if every tap reads a BatchNorm output (no zero padding): the caller checks.
 */
export function foldBatchNormInto(kernel: tf.Tensor, bias: tf.Tensor | undefined, bn: BatchNormParams, kind: string): { kernel: tf.Tensor; bias: tf.Tensor } {
  const mean = bn.mean.dataSync();
  const variance = bn.variance.dataSync();
  const gamma = bn.gamma?.dataSync();
  const beta = bn.beta?.dataSync();
  const channels = mean.length;
  const depthwise = kind === 'depthwise-conv2d';
  const cin = kernel.shape[kernel.rank - 2]!;
  const inner = kernel.shape[kernel.rank - 1]!; // out (Dense, Conv2D) or the depth multiplier m
  const outs = depthwise ? cin * inner : inner;
  if (cin !== channels) {
    throw new UnsupportedLayerError(`cannot fold a BatchNorm of ${channels} channels into a ${kind} layer reading ${cin} channels`);
  }
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + bn.epsilon);
    shift[c] = (beta ? beta[c] : 0) - mean[c] * scale[c];
  }
  const k = kernel.dataSync();
  const b = bias?.dataSync();
  const folded = new Float32Array(k.length);
  const fb = new Float64Array(outs);
  for (let o = 0; o < outs; o++) fb[o] = b ? b[o] : 0;
  for (let i = 0; i < k.length; i++) {
    const c = Math.floor(i / inner) % cin;
    const o = depthwise ? i % outs : i % inner;
    folded[i] = k[i] * scale[c];
    fb[o] += k[i] * shift[c];
  }
  return { kernel: tf.tensor(folded, kernel.shape, 'float32'), bias: tf.tensor1d(Float32Array.from(fb), 'float32') };
}

/**
 * Whether a linear layer reads every one of its taps from its input (no zero padding), so a
 * per-channel affine map of that input folds into it exactly. inShape: the input's [H, W, C]
 * (−1 where unknown: then only a kernel of extent 1 is known to add no padding).
 */
export function readsNoPadding(node: GraphNode, inShape: number[]): boolean {
  if (node.kind === 'dense') return true;
  if (node.kind !== 'conv2d' && node.kind !== 'depthwise-conv2d') return false;
  const p = node.params;
  if ((p.padding ?? 'valid') === 'valid') return true;
  const ks = p.kernel!().shape;
  const strides = p.strides ?? [1, 1];
  const dil = p.dilation ?? [1, 1];
  for (let a = 0; a < 2; a++) {
    const k = (ks[a]! - 1) * dil[a] + 1;
    const size = inShape[a];
    if (k === 1) continue;
    if (!(size > 0)) return false;
    const out = Math.ceil(size / strides[a]);
    if ((out - 1) * strides[a] + k - size > 0) return false;
  }
  return true;
}

/**
 * Fold every BatchNorm that directly follows a Dense, Conv2D or DepthwiseConv2D (its only consumer)
 * into it; then every remaining one whose consumers are all Dense / Conv2D / DepthwiseConv2D layers
 * that read it without zero padding, into those (see the module comment).
 */
export function canonize(graph: Graph): CanonizeResult {
  const cons = consumers(graph);
  const replaced = new Map<string, GraphNode>();
  const folded: CanonizeResult['folded'] = [];
  for (const bnNode of graph.nodes) {
    if (bnNode.kind !== 'batchnorm') continue;
    const lin = graph.byName.get(bnNode.inputs[0]);
    if (!lin || !FOLDABLE.has(lin.kind) || cons.get(lin.name)!.length !== 1 || replaced.has(lin.name)) continue;
    const kernel = lin.params.kernel!;
    const bias = lin.params.bias;
    const sources = () => {
      const bn = bnNode.params.batchNorm!();
      return { k: kernel(), b: bias?.(), bn, ids: [kernel(), bias?.(), bn.mean, bn.variance, bn.gamma, bn.beta] };
    };
    const fold = (part: 'kernel' | 'bias') => {
      const { k, b, bn, ids } = sources();
      return cachedWeight(graph, `fold:${lin.name}:${part}`, ids, () => {
        const f = foldBatchNorm(k, b, bn, lin.kind);
        const other = part === 'kernel' ? f.bias : f.kernel;
        other.dispose();
        return f[part];
      });
    };
    replaced.set(lin.name, { ...lin, params: { ...lin.params, kernel: () => fold('kernel'), bias: () => fold('bias') } });
    replaced.set(bnNode.name, { ...bnNode, kind: 'identity', params: {} });
    folded.push({ batchNorm: bnNode.name, into: lin.name });
  }
  for (const bnNode of graph.nodes) {
    if (bnNode.kind !== 'batchnorm' || replaced.has(bnNode.name) || isInputAffine(graph, bnNode)) continue;
    const targets = cons.get(bnNode.name)!.map((n) => replaced.get(n) ?? graph.byName.get(n)!);
    if (targets.length === 0 || !targets.every((t) => FOLDABLE.has(t.kind) && readsNoPadding(t, bnNode.shape))) continue;
    if (new Set(targets.map((t) => t.name)).size !== targets.length) continue; // a layer reading it twice
    for (const lin of targets) {
      const kernel = lin.params.kernel!;
      const bias = lin.params.bias;
      const fold = (part: 'kernel' | 'bias') => {
        const bn = bnNode.params.batchNorm!();
        const k = kernel();
        const b = bias?.();
        return cachedWeight(graph, `foldin:${bnNode.name}:${lin.name}:${part}`, [k, b, bn.mean, bn.variance, bn.gamma, bn.beta], () => {
          const f = foldBatchNormInto(k, b, bn, lin.kind);
          (part === 'kernel' ? f.bias : f.kernel).dispose();
          return f[part];
        });
      };
      replaced.set(lin.name, { ...lin, params: { ...lin.params, kernel: () => fold('kernel'), bias: () => fold('bias') } });
      folded.push({ batchNorm: bnNode.name, into: lin.name });
    }
    replaced.set(bnNode.name, { ...bnNode, kind: 'identity', params: {} });
  }
  if (folded.length === 0) return { graph, folded };
  const nodes = graph.nodes.map((n) => replaced.get(n.name) ?? n);
  return { graph: { nodes, byName: new Map(nodes.map((n) => [n.name, n])), output: graph.output }, folded };
}
