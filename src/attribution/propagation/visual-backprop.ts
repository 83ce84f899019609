/**
 * `visual-backprop` (seed 002; Bojarski et al. 2017): average the feature maps of every convolution
 * layer (after its activation) over channels; starting from the deepest, scale the averaged map up
 * to the previous map's size with all-ones "deconvolutions" (the transpose of each convolution and
 * pooling in between, same kernel size, stride and padding, weights 1, no bias), multiply pointwise
 * with the previous averaged map, and repeat down to the input. The result is a non-negative
 * [N, H, W, 1] mask, copied to every input channel, not normalised (render/ does that).
 *
 * Needs a convolutional network; works with and without biases and with an input offset (the
 * offset only changes the feature maps). In graphs with branches (skip connections) the main path
 * (each node's first input) is followed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../core/classifier.js';
import type { Graph, GraphNode } from '../../core/graph.js';
import { registerMethod } from '../../core/registry.js';
import { UnsupportedLayerError } from '../../core/errors.js';
import { targetScores } from '../../core/scores.js';
import { convTranspose } from './linear.js';

const SPATIAL_PASS = new Set(['activation', 'batchnorm', 'identity', 'transform']);

/** Up-scaling step: the all-ones transpose of one spatial node. */
interface Step { node: GraphNode; inShape: number[] }

/** The main path: from the logits back to the input through each node's first input, input first. */
function mainPath(graph: Graph, logitNode: string): GraphNode[] {
  const path: GraphNode[] = [];
  let cur = graph.byName.get(logitNode);
  while (cur) {
    path.push(cur);
    cur = cur.inputs.length ? graph.byName.get(cur.inputs[0]) : undefined;
  }
  return path.reverse();
}

/** Feature-map nodes on the main path: the first activation after each conv (through BN/identity), else the conv itself. */
function featureMapNodes(path: GraphNode[]): string[] {
  const maps: string[] = [];
  path.forEach((n, i) => {
    if (n.kind !== 'conv2d' && n.kind !== 'depthwise-conv2d') return;
    let j = i;
    while (j + 1 < path.length && ['batchnorm', 'identity'].includes(path[j + 1].kind)) j++;
    if (j + 1 < path.length && path[j + 1].kind === 'activation') j++;
    maps.push(path[j].name);
  });
  return maps;
}

/** Spatial nodes on the main path from `from` back to `to` (exclusive), latest first. */
function chain(graph: Graph, from: string, to: string | undefined): Step[] {
  const steps: Step[] = [];
  let cur = graph.byName.get(from)!;
  while (cur.name !== to && cur.kind !== 'input') {
    const prev = graph.byName.get(cur.inputs[0])!;
    if (['conv2d', 'depthwise-conv2d', 'maxpool', 'avgpool', 'zeropad'].includes(cur.kind)) {
      steps.push({ node: cur, inShape: prev.shape });
    } else if (!SPATIAL_PASS.has(cur.kind) && cur.kind !== 'add' && cur.kind !== 'concat') {
      throw new UnsupportedLayerError(`visual-backprop cannot scale up through node "${cur.name}" (${cur.layerClass}) between convolution layers`);
    }
    cur = prev;
  }
  return steps;
}

function upscale(m: tf.Tensor4D, step: Step): tf.Tensor4D {
  const n = step.node;
  const xShape = [m.shape[0], step.inShape[0], step.inShape[1], 1];
  if (n.kind === 'zeropad') {
    const [[t], [l]] = n.params.pad!;
    return tf.slice(m, [0, t, l, 0], xShape);
  }
  let k: [number, number];
  let dil: [number, number] = [1, 1];
  if (n.kind === 'maxpool' || n.kind === 'avgpool') k = n.params.poolSize!;
  else {
    const ks = n.params.kernel!().shape;
    k = [ks[0] as number, ks[1] as number];
    dil = n.params.dilation ?? [1, 1];
  }
  const eff: [number, number] = [(k[0] - 1) * dil[0] + 1, (k[1] - 1) * dil[1] + 1];
  const ones = tf.ones([eff[0], eff[1], 1, 1]) as tf.Tensor4D;
  return convTranspose(m, ones, xShape, n.params.strides ?? [1, 1], n.params.padding ?? 'valid');
}

export function visualBackProp(classifier: Classifier, x: tf.Tensor4D): tf.Tensor4D {
  const { mask, logits } = visualBackPropWithLogits(classifier, x);
  logits.dispose();
  return mask;
}

/** VisualBackProp mask plus the logits of the same forward pass. */
export function visualBackPropWithLogits(classifier: Classifier, x: tf.Tensor4D): { mask: tf.Tensor4D; logits: tf.Tensor2D } {
  const graph = classifier.graph;
  if (!graph) throw new UnsupportedLayerError(`visual-backprop needs a layered model; classifier "${classifier.name}" wraps a plain function`);
  const softmax = graph.byName.get(graph.output)!;
  const logitNode = softmax.kind === 'activation' && softmax.params.activation === 'softmax' ? softmax.inputs[0] : graph.output;
  const maps = featureMapNodes(mainPath(graph, logitNode));
  if (maps.length === 0) {
    throw new UnsupportedLayerError(`visual-backprop needs a convolutional network; model "${classifier.name}" has no Conv2D layer`);
  }
  const [mask, logits] = tf.tidy(() => {
    const { captured, logits } = classifier.forward(x, { capture: maps });
    const avg = maps.map((name) => tf.mean(captured.get(name)!, -1, true) as tf.Tensor4D);
    let m = avg[maps.length - 1];
    for (let i = maps.length - 1; i >= 0; i--) {
      for (const step of chain(graph, maps[i], i > 0 ? maps[i - 1] : undefined)) m = upscale(m, step);
      if (i > 0) m = tf.mul(m, avg[i - 1]);
    }
    const c = x.shape[3];
    return [(c === 1 ? m : tf.tile(m, [1, 1, 1, c])) as tf.Tensor4D, logits];
  });
  return { mask: mask as tf.Tensor4D, logits: logits as tf.Tensor2D };
}

registerMethod({
  name: 'visual-backprop',
  family: 'propagation',
  description: 'VisualBackProp (seed 002): channel-averaged conv feature maps, scaled up with all-ones deconvolutions and multiplied down to the input',
  signed: false,
  defaults: {},
  requires: (c) => {
    if (!c.graph) return 'it needs a layered model (Classifier.fromModel), not a plain function';
    return c.graph.nodes.some((n) => n.kind === 'conv2d' || n.kind === 'depthwise-conv2d') ? undefined : 'it needs a convolutional network (no Conv2D layer found)';
  },
  run(classifier, x, targets) {
    const { mask: attribution, logits } = visualBackPropWithLogits(classifier, x);
    const [scores, total] = tf.tidy(() => [targetScores(logits, targets), tf.sum(attribution, [1, 2, 3])] as tf.Tensor[]);
    logits.dispose();
    const s = Array.from(scores.dataSync());
    const t = Array.from(total.dataSync());
    tf.dispose([scores, total]);
    // VisualBackProp is a mask, not a relevance decomposition: this "conservation error" is far from 0 by design.
    const conservationError = t.map((v, i) => Math.abs(v - s[i]) / Math.max(Math.abs(s[i]), 1e-12));
    return { attribution, extras: { conservationError, relevanceSum: t } };
  },
});
