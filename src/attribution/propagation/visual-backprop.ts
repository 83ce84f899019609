/**
 * `visual-backprop` (seed 002; Bojarski et al. 2017): average the feature maps of every convolution
 * layer (after its activation) over channels; starting from the deepest, scale the averaged map up
 * to the previous map's size with all-ones "deconvolutions" (the transpose of each convolution and
 * pooling in between, same kernel size, stride and padding, weights 1, no bias), multiply pointwise
 * with the previous averaged map, and repeat down to the input. The result is a non-negative
 * [N, H, W, 1] mask, copied to every input channel, scaled to a maximum of 1 per image: every
 * averaged map and every running product is divided by its per-image maximum (a positive factor per
 * image, so the mask's shape is what the unscaled algorithm gives; unscaled, MobileNetV2's 35 maps
 * reach ~1e25 and deeper nets overflow float32).
 *
 * Needs a convolutional network with rectified feature maps (the method's premise: a ReLU passes
 * exactly what is > 0); works with and without biases and with an input offset (the offset only
 * changes the feature maps).
 *
 * Architectures without a plain conv stack:
 *   - Feature maps are taken only where a convolution (Conv2D, DepthwiseConv2D, either half of a
 *     SeparableConv2D, Conv2DTranspose) is followed, through BatchNorm/identity nodes, by a rectifier
 *     (ReLU, ReLU6, clipped or thresholded ReLU). Linear convolutions — MobileNetV2's 1×1 projections
 *     before the residual Add — are stepped through but give no map: their averaged output is signed,
 *     and multiplying signed maps is what gave MobileNetV2 a mask summing to −1343 (issue 15).
 *   - At a merge (Add, Concatenate, Multiply) the path continues into the input with the most
 *     convolutions behind it (the residual branch rather than the identity shortcut, the deepest
 *     Inception branch) among the full-size feature maps that are not a Multiply's gate (never into
 *     a squeeze-and-excitation branch); ties go to the first input.
 *   - Between two maps every spatial node is undone by its all-ones transpose: convolutions and
 *     pooling (kernel, stride, padding, dilation), ZeroPadding2D (crop back), Cropping2D (pad back),
 *     nearest/bilinear UpSampling2D (block sums) and Conv2DTranspose (a forward all-ones conv).
 * A model without any rectified convolution raises UnsupportedLayerError saying so.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../core/classifier.js';
import type { Graph, GraphNode } from '../../core/graph.js';
import { registerMethod } from '../../core/registry.js';
import { UnsupportedLayerError } from '../../core/errors.js';
import { targetScores } from '../../core/scores.js';
import { convTranspose } from './linear.js';
import { multiplyGates } from './propagate.js';

const SPATIAL_PASS = new Set(['activation', 'batchnorm', 'identity', 'transform', 'add', 'concat', 'multiply']);
const CONV_KINDS = new Set(['conv2d', 'depthwise-conv2d', 'conv2d-transpose']);
/** Activations whose output is max(·, 0)-like: what VisualBackProp averages. */
const RECTIFIERS = new Set(['relu', 'relu6', 'thresholded-relu']);

/** Up-scaling step: the all-ones transpose of one spatial node. */
interface Step { node: GraphNode; inShape: number[] }

/** Per node: the largest number of convolutions on any path from the input to it. */
function convDepths(graph: Graph): Map<string, number> {
  const depth = new Map<string, number>();
  for (const n of graph.nodes) {
    const d = Math.max(0, ...n.inputs.map((i) => depth.get(i) ?? 0));
    depth.set(n.name, d + (CONV_KINDS.has(n.kind) ? 1 : 0));
  }
  return depth;
}

/**
 * The input a merge node's path continues into: among the inputs that are feature maps of the
 * node's own shape (not a broadcast squeeze-and-excitation excitation) and not gates of a Multiply,
 * the one with the most convolutions behind it (first on ties).
 */
function pathInput(graph: Graph, node: GraphNode, depth: Map<string, number>): string {
  if (node.inputs.length === 1) return node.inputs[0];
  const gates = node.kind === 'multiply' ? multiplyGates(graph, node) : node.inputs.map(() => false);
  const full = node.inputs.filter((i, k) => !gates[k] && graph.byName.get(i)!.shape.join(',') === node.shape.join(','));
  const candidates = full.length ? full : node.inputs;
  let best = candidates[0];
  for (const i of candidates.slice(1)) if ((depth.get(i) ?? 0) > (depth.get(best) ?? 0)) best = i;
  return best;
}

/** The main path from the logits back to the input (see the file comment), input first. */
function mainPath(graph: Graph, logitNode: string): GraphNode[] {
  const depth = convDepths(graph);
  const path: GraphNode[] = [];
  let cur = graph.byName.get(logitNode);
  while (cur) {
    path.push(cur);
    cur = cur.inputs.length ? graph.byName.get(pathInput(graph, cur, depth)) : undefined;
  }
  return path.reverse();
}

/** Whether an activation node rectifies (output ≥ 0 with a kink at its threshold). */
function rectifies(n: GraphNode): boolean {
  return n.kind === 'activation' && RECTIFIERS.has(n.params.activation ?? '') && !n.params.negativeSlope && (n.params.threshold ?? 0) >= 0;
}

/** Feature-map nodes on the main path: the rectifier right after a convolution (through BN/identity). */
function featureMapNodes(path: GraphNode[]): string[] {
  const maps: string[] = [];
  path.forEach((n, i) => {
    if (!CONV_KINDS.has(n.kind)) return;
    let j = i;
    while (j + 1 < path.length && ['batchnorm', 'identity'].includes(path[j + 1].kind)) j++;
    if (j + 1 < path.length && rectifies(path[j + 1])) maps.push(path[j + 1].name);
  });
  return maps;
}

/** Spatial nodes on the main path from `from` back to `to` (exclusive), latest first. */
function chain(graph: Graph, from: string, to: string | undefined): Step[] {
  const depth = convDepths(graph);
  const steps: Step[] = [];
  let cur = graph.byName.get(from)!;
  while (cur.name !== to && cur.kind !== 'input') {
    const prev = graph.byName.get(pathInput(graph, cur, depth))!;
    if ([...CONV_KINDS, 'maxpool', 'avgpool', 'zeropad', 'crop', 'upsample'].includes(cur.kind)) {
      steps.push({ node: cur, inShape: prev.shape });
    } else if (!SPATIAL_PASS.has(cur.kind)) {
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
  if (n.kind === 'crop') {
    const [[t, b], [l, r]] = n.params.pad!;
    return tf.pad(m, [[0, 0], [t, b], [l, r], [0, 0]]);
  }
  if (n.kind === 'upsample') {
    // all-ones transpose of an s×s replication: the sum of each block
    const [sh, sw] = n.params.size!;
    return tf.conv2d(m, tf.ones([sh, sw, 1, 1]) as tf.Tensor4D, [sh, sw], 'valid');
  }
  if (n.kind === 'conv2d-transpose') {
    const ks = n.params.kernel!().shape;
    return tf.conv2d(m, tf.ones([ks[0] as number, ks[1] as number, 1, 1]) as tf.Tensor4D, n.params.strides ?? [1, 1], n.params.padding ?? 'valid');
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
    throw new UnsupportedLayerError(
      `visual-backprop needs rectified convolutional feature maps (a convolution followed by ReLU/ReLU6); model "${classifier.name}" has none on its main path`,
    );
  }
  const [mask, logits] = tf.tidy(() => {
    const { captured, logits } = classifier.forward(x, { capture: maps });
    // Every intermediate product is divided by its per-image maximum: the mask changes by a positive
    // factor per image only, and on deep nets the running product (MobileNetV2: 35 maps and 3×3
    // all-ones transposes, ~1e25 unnormalised) stays in float32 range.
    const unit = (t: tf.Tensor4D) => tf.div(t, tf.add(tf.max(t, [1, 2, 3], true), 1e-30)) as tf.Tensor4D;
    const avg = maps.map((name) => unit(tf.mean(captured.get(name)!, -1, true) as tf.Tensor4D));
    let m = avg[maps.length - 1];
    for (let i = maps.length - 1; i >= 0; i--) {
      for (const step of chain(graph, maps[i], i > 0 ? maps[i - 1] : undefined)) m = upscale(m, step);
      m = unit(i > 0 ? tf.mul(m, avg[i - 1]) : m);
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
    if (!c.graph.nodes.some((n) => CONV_KINDS.has(n.kind))) return 'it needs a convolutional network (no Conv2D layer found)';
    const out = c.graph.byName.get(c.graph.output)!;
    const logitNode = out.kind === 'activation' && out.params.activation === 'softmax' ? out.inputs[0] : c.graph.output;
    return featureMapNodes(mainPath(c.graph, logitNode)).length
      ? undefined
      : 'it needs rectified feature maps (a convolution followed by ReLU/ReLU6) on the main path; this model has none';
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
