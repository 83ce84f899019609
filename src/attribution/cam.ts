/**
 * Shared pieces of the class-activation-map family (grad-cam-plus-plus, layer-cam, score-cam,
 * eigen-cam): the layer (Grad-CAM's default: the last feature map every path passes through),
 * batched activations and gradients at it, and the common output (the raw cam [N,h,w,1] in extras,
 * the map upsampled bilinearly with half-pixel centres to the input size and repeated over the input
 * channels, as `grad-cam` does).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import { targetMask } from '../core/target.js';
import { batchSizeFor } from '../engine/memory.js';
import { defaultCamLayer } from './grad-cam.js';
import { chunks, toChannels, upsampleBilinear, upsampleNearest } from './math.js';

/** The spatial layer a CAM method reads (option, else Grad-CAM's default). */
export function camLayer(classifier: Classifier, layer: unknown): string {
  const name = layer == null ? defaultCamLayer(classifier) : String(layer);
  const node = classifier.node(name);
  if (node.shape.length !== 3) {
    throw new OptionError(`expected option layer to name a layer with a spatial output [h, w, channels]; "${name}" has shape [${node.shape.join(', ')}]`);
  }
  return name;
}

/**
 * For every chunk of images that fits the memory budget: the layer's activation A [n,h,w,C] and,
 * when `gradient`, ∂y_target/∂A; `fn` turns them into a per-image result inside a tidy.
 */
export function perChunkAtLayer(
  classifier: Classifier,
  x: tf.Tensor4D,
  targets: number[],
  layer: string,
  batchSize: number,
  gradient: boolean,
  fn: (a: tf.Tensor4D, g: tf.Tensor4D | undefined, start: number) => tf.Tensor4D,
): tf.Tensor4D {
  const split = classifier.split(layer);
  const parts: tf.Tensor4D[] = [];
  for (const [s, c] of chunks(x.shape[0], batchSizeFor(classifier, gradient ? 'gradient' : 'forward', batchSize))) {
    parts.push(tf.tidy(() => {
      const xs = tf.slice(x, s, c);
      const a = split.head(xs) as tf.Tensor4D;
      let g: tf.Tensor4D | undefined;
      if (gradient) {
        const mask = targetMask(targets.slice(s, s + c), classifier.numClasses);
        g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(split.tail(v, split.isCut ? undefined : xs), mask)))(a) as tf.Tensor4D;
      }
      return fn(a, g, s);
    }));
  }
  if (parts.length === 1) return parts[0];
  const out = tf.concat(parts, 0);
  tf.dispose(parts);
  return out;
}

/** The method result of a raw cam: upsampled to the input, repeated over its channels; raw and layer in extras. */
export function camResult(raw: tf.Tensor4D, x: tf.Tensor4D, layer: string, upsample: 'bilinear' | 'nearest', extras: Record<string, unknown> = {}): { attribution: tf.Tensor4D; extras: Record<string, unknown> } {
  const [, H, W, C] = x.shape;
  const map = upsample === 'nearest' ? upsampleNearest(raw, [H, W]) : upsampleBilinear(raw, [H, W]);
  const attribution = toChannels(map, C);
  if (attribution !== map) map.dispose();
  return { attribution, extras: { raw, layer, ...extras } };
}

export function needsConvGraph(classifier: Classifier): string | undefined {
  return classifier.graph ? undefined : 'needs a layered model with a convolution layer';
}
