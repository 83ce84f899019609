/**
 * Canonizers rewrite the network into an equivalent one on which relevance rules are meaningful
 * (Zennit's third noun). Here: BatchNormalization folded into the Dense/Conv2D right before it.
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

/** Fold every BatchNorm that directly follows a Dense/Conv2D (its only consumer) into it. */
export function canonize(graph: Graph): CanonizeResult {
  const cons = consumers(graph);
  const replaced = new Map<string, GraphNode>();
  const folded: CanonizeResult['folded'] = [];
  for (const bnNode of graph.nodes) {
    if (bnNode.kind !== 'batchnorm') continue;
    const lin = graph.byName.get(bnNode.inputs[0]);
    if (!lin || (lin.kind !== 'dense' && lin.kind !== 'conv2d') || cons.get(lin.name)!.length !== 1 || replaced.has(lin.name)) continue;
    const base = replaced.get(lin.name) ?? lin;
    const kernel = base.params.kernel!;
    const bias = base.params.bias;
    const affine = () => batchNormAffine(bnNode);
    replaced.set(lin.name, {
      ...base,
      params: {
        ...base.params,
        kernel: () => {
          const k = kernel();
          const bn = bnNode.params.batchNorm!();
          return cachedWeight(graph, `fold:${lin.name}:kernel`, [k, bn.mean, bn.variance, bn.gamma], () => tf.mul(k, affine().scale));
        },
        bias: () => {
          const b = bias?.();
          const bn = bnNode.params.batchNorm!();
          return cachedWeight(graph, `fold:${lin.name}:bias`, [b, bn.mean, bn.variance, bn.gamma, bn.beta], () => {
            const { scale, shift } = affine();
            return b ? tf.add(tf.mul(b, scale), shift) : shift;
          });
        },
      },
    });
    replaced.set(bnNode.name, { ...bnNode, kind: 'identity', params: {} });
    folded.push({ batchNorm: bnNode.name, into: lin.name });
  }
  if (folded.length === 0) return { graph, folded };
  const nodes = graph.nodes.map((n) => replaced.get(n.name) ?? n);
  return { graph: { nodes, byName: new Map(nodes.map((n) => [n.name, n])), output: graph.output }, folded };
}
