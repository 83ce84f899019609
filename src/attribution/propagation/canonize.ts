/**
 * Canonizers rewrite the network into an equivalent one on which relevance rules are meaningful
 * (Zennit's third noun). Here: BatchNormalization folded into the Dense, Conv2D or DepthwiseConv2D
 * right before it (the conv → BN → activation order of Keras MobileNets and ResNets).
 *
 *   y = (z − μ) / √(σ² + ε) · γ + β,  z = x·W + b   ⇒   y = x·(W·s) + ((b − μ)·s + β),  s = γ / √(σ² + ε)
 *
 * A BatchNorm whose input is not a linear node (or whose linear node also feeds other nodes) is left
 * in place; the propagation treats it as an element-wise linear layer (ε rule).
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
  /** Names of the BatchNorm nodes folded, with the linear node each went into. */
  folded: Array<{ batchNorm: string; into: string }>;
}

/** The linear node kinds a following BatchNorm can be folded into. */
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

/** Fold every BatchNorm that directly follows a Dense, Conv2D or DepthwiseConv2D (its only consumer) into it. */
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
  if (folded.length === 0) return { graph, folded };
  const nodes = graph.nodes.map((n) => replaced.get(n.name) ?? n);
  return { graph: { nodes, byName: new Map(nodes.map((n) => [n.name, n])), output: graph.output }, folded };
}
