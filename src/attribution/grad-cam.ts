/**
 * `grad-cam` (Selvaraju et al. 2017; seed 004) on any layer with a spatial output:
 * α_c = mean_{h,w} ∂y/∂A_{hwc}, cam = relu(Σ_c α_c A_c) (relu optional), upsampled to the input size
 * bilinearly with half-pixel centres (PyTorch align_corners=False, Captum LayerGradCam +
 * LayerAttribution.interpolate). Default layer: the output of the last convolution layer
 * (post-activation, Keras' view of the layer); 'NAME/preact' gives the pre-activation variant.
 * Works on functional models with skip connections: the network is split at the layer and the rest
 * is run from the activation (paths bypassing it are computed from x and held constant).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import type { Classifier, SplitNetwork } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import { chunks, concatBatch, oneOf, positiveInt, toChannels, upsampleBilinear, upsampleNearest } from './math.js';
import { batchSizeFor } from '../engine/memory.js';

export interface GradCamOptions {
  /** Node name (see classifier.layers()); default: the last convolution layer's output. */
  layer: string | null;
  /** Apply relu to the weighted sum (Grad-CAM's definition). */
  relu: boolean;
  upsample: 'bilinear' | 'nearest';
  batchSize: number;
}

/** Node kinds that produce (or only combine / rescale) convolutional feature maps. */
const MAP_KINDS = new Set(['conv2d', 'depthwise-conv2d', 'conv2d-transpose', 'batchnorm', 'activation', 'add', 'multiply', 'concat', 'identity']);

/** Whether every path from the input to `to` passes through `via`. */
function dominates(graph: NonNullable<Classifier['graph']>, via: string, to: string): boolean {
  const seen = new Set<string>([via]);
  const stack = [to];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    const node = graph.byName.get(n)!;
    if (node.kind === 'input') return false;
    stack.push(...node.inputs);
  }
  return true;
}

/**
 * The default Grad-CAM layer: the last feature map every path to the logits passes through — a
 * spatial output (h·w > 1) of a convolution or of the nodes that only combine or rescale feature
 * maps (batch norm, activation, residual Add, squeeze-and-excitation Multiply, Concatenate), never a
 * pooling or padding node. So a plain CNN gets its last conv's ReLU, a ResNet the last block's
 * output, MobileNetV2 `out_relu`, an Inception net its last Concatenate (Keras' `mixed10`): the last
 * spatial map before the global pooling or Flatten, post-activation. Throws OptionError when the
 * model has no convolution.
 */
export function defaultCamLayer(classifier: Classifier): string {
  const convs = classifier.convLayers();
  if (convs.length === 0) throw new OptionError(`Grad-CAM needs a convolution layer; model "${classifier.name}" has none (pass option layer)`);
  const graph = classifier.graph!;
  const logits = classifier.strippedSoftmax ? graph.byName.get(graph.output)!.inputs[0] : graph.output;
  for (const n of [...graph.nodes].reverse()) {
    if (!MAP_KINDS.has(n.kind) || n.shape.length !== 3 || n.shape[0] * n.shape[1] <= 1) continue;
    if (n.kind === 'activation' && n.params.activation === 'softmax') continue;
    if (dominates(graph, n.name, logits)) return n.name;
  }
  return convs[convs.length - 1];
}

/** The Grad-CAM layer (option or default) and the network split at it; OptionError unless its output is spatial. */
export function camLayer(classifier: Classifier, layer: string | null | undefined): { layer: string; split: SplitNetwork } {
  const name = layer ?? defaultCamLayer(classifier);
  const node = classifier.node(name);
  if (node.shape.length !== 3) {
    throw new OptionError(`expected option layer to name a layer with a spatial output [h, w, channels]; "${name}" has shape [${node.shape.join(', ')}]`);
  }
  return { layer: name, split: classifier.split(name) };
}

/**
 * Low-resolution cam [n,h,w,1] = relu(Σ_c α_c A_c), α_c = mean_{h,w} ∂y/∂A_c, from the layer's
 * activation `a` of the images `xs`: only the tail is run (from `a`) and differentiated, so a caller
 * that already has the activation from its own forward pass (guided Grad-CAM) pays no second head.
 */
export function camFromActivation(split: SplitNetwork, a: tf.Tensor4D, xs: tf.Tensor4D, mask: tf.Tensor, relu: boolean): tf.Tensor4D {
  return tf.tidy(() => {
    const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(split.tail(v, split.isCut ? undefined : xs), mask)))(a);
    const alpha = tf.mean(grad, [1, 2], true);
    const cam = tf.sum(tf.mul(alpha, a), 3, true) as tf.Tensor4D;
    return relu ? tf.relu(cam) : cam;
  });
}

/** Low-resolution cam [N,h,w,1] and the map upsampled to the input size [N,H,W,1]. */
export function gradCam(
  classifier: Classifier,
  x: tf.Tensor4D,
  targets: number[],
  opts: { layer?: string | null; relu?: boolean; upsample?: 'bilinear' | 'nearest'; batchSize?: number },
): { raw: tf.Tensor4D; map: tf.Tensor4D; layer: string } {
  const { layer, split } = camLayer(classifier, opts.layer);
  const [, H, W] = x.shape;
  const raws: tf.Tensor4D[] = [];
  for (const [s, c] of chunks(x.shape[0], batchSizeFor(classifier, 'gradient', opts.batchSize ?? 64))) {
    raws.push(
      tf.tidy(() => {
        const xs = c === x.shape[0] ? x : tf.slice(x, [s, 0, 0, 0], [c, -1, -1, -1]);
        const a = split.head(xs) as tf.Tensor4D;
        return camFromActivation(split, a, xs, targetMask(targets.slice(s, s + c), classifier.numClasses), opts.relu !== false);
      }),
    );
  }
  const raw = concatBatch(raws);
  return { raw, map: upsampleCam(raw, [H, W], opts.upsample), layer };
}

/** The cam at the input's size: bilinear with half-pixel centres (default) or nearest. */
export function upsampleCam(raw: tf.Tensor4D, size: [number, number], mode: 'bilinear' | 'nearest' = 'bilinear'): tf.Tensor4D {
  return mode === 'nearest' ? upsampleNearest(raw, size) : upsampleBilinear(raw, size);
}

registerMethod<GradCamOptions>({
  name: 'grad-cam',
  family: 'attribution',
  description: 'Grad-CAM: gradient-weighted class activation map of a conv layer, upsampled (Selvaraju et al. 2017)',
  signed: true,
  defaults: { layer: null, relu: true, upsample: 'bilinear', batchSize: 64 },
  requires: (c) => (c.graph ? undefined : 'needs a layered model with a convolution layer'),
  run(classifier, x, targets, options) {
    const upsample = oneOf('upsample', options.upsample, ['bilinear', 'nearest'] as const);
    const { raw, map, layer } = gradCam(classifier, x, targets, {
      layer: options.layer, relu: options.relu, upsample, batchSize: positiveInt('batchSize', options.batchSize),
    });
    const attribution = toChannels(map, x.shape[3]);
    if (attribution !== map) map.dispose();
    return { attribution, extras: { raw, layer } };
  },
});
