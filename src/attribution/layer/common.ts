/**
 * Shared pieces of the layer and neuron methods (Captum's layer/neuron API): which node, its
 * activation as a 4-D tensor in the layer's own NHWC layout, and the neuron a neuron method explains.
 *
 * Layer attributions keep the layer's shape: a spatial layer [h,w,c] gives [N,h,w,c]; a flat layer
 * [u] (Dense, Flatten, global pooling) gives [N,1,1,u], so every result is an NHWC tensor.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier, SplitNetwork } from '../../core/classifier.js';
import { OptionError } from '../../core/errors.js';
import { defaultCamLayer } from '../grad-cam.js';

/**
 * The node a layer method reads: the option; by default Grad-CAM's layer (the last feature map every
 * path passes through) or, in a network without convolutions, its last hidden activation.
 */
export function resolveLayer(classifier: Classifier, layer: unknown): string {
  if (layer == null || layer === 'auto') {
    if (classifier.convLayers().length > 0) return defaultCamLayer(classifier);
    const hidden = classifier.layers().filter((l) => l.kind === 'activation' && l.activation !== 'softmax');
    if (hidden.length === 0) throw new OptionError(`model "${classifier.name}" has no hidden activation to default to; pass option layer (one of ${classifier.layers().map((l) => l.name).join(', ')})`);
    return hidden[hidden.length - 1].name;
  }
  if (typeof layer !== 'string') throw new OptionError(`expected option layer to be a layer name or null; got ${JSON.stringify(layer)}`);
  classifier.node(layer);
  return layer;
}

/** The 4-D shape [h, w, c] a layer's per-image activation is reported in. */
export function layerShape4(classifier: Classifier, layer: string): [number, number, number] {
  const s = classifier.node(layer).shape;
  if (s.length === 3) return [s[0], s[1], s[2]];
  if (s.length === 1) return [1, 1, s[0]];
  if (s.length === 2) return [1, s[0], s[1]];
  throw new OptionError(`expected a layer with a per-image output of rank 1 to 3; "${layer}" has shape [${s.join(', ')}]`);
}

/** A layer activation [N, ...] as [N,h,w,c]. */
export function to4D(a: tf.Tensor, shape: [number, number, number]): tf.Tensor4D {
  return tf.reshape(a, [a.shape[0], ...shape]);
}

/** The split of the network at a layer, checked to exist. */
export function splitAt(classifier: Classifier, layer: string): SplitNetwork {
  if (!classifier.graph) throw new OptionError(`layer methods need the layers of the model; classifier "${classifier.name}" wraps a plain function`);
  return classifier.split(layer);
}

export function needsGraph(classifier: Classifier): string | undefined {
  return classifier.graph ? undefined : 'it needs the layers of the model (a LayersModel), not a plain function';
}

export type NeuronSpec = number | [number, number, number] | 'max';

/**
 * Flat neuron index per image (row-major over the layer's [h,w,c]): a flat index, [h, w, c]
 * coordinates, or 'max' (each image's most active unit of the layer).
 */
export async function neuronIndices(classifier: Classifier, layer: string, x: tf.Tensor4D, spec: unknown, split: SplitNetwork): Promise<number[]> {
  const [h, w, c] = layerShape4(classifier, layer);
  const size = h * w * c;
  const n = x.shape[0];
  if (spec === 'max') {
    const am = tf.tidy(() => tf.argMax(tf.reshape(split.head(x), [n, size]), 1));
    const v = Array.from(await am.data());
    am.dispose();
    return v;
  }
  let idx: number;
  if (typeof spec === 'number') idx = spec;
  else if (Array.isArray(spec) && spec.length === 3 && spec.every((v) => Number.isInteger(v))) {
    const [r, q, k] = spec as number[];
    if (r < 0 || r >= h || q < 0 || q >= w || k < 0 || k >= c) throw new OptionError(`expected option neuron [h, w, c] inside the layer's [${h}, ${w}, ${c}]; got [${spec.join(', ')}]`);
    idx = (r * w + q) * c + k;
  } else {
    throw new OptionError(`expected option neuron to be a flat index, [h, w, c] or "max"; got ${JSON.stringify(spec)}`);
  }
  if (!Number.isInteger(idx) || idx < 0 || idx >= size) throw new OptionError(`expected option neuron in 0..${size - 1} (layer "${layer}" has ${size} units per image); got ${idx}`);
  return new Array(n).fill(idx);
}

/** One-hot rows [N, size] selecting each image's neuron. */
export function neuronMask(indices: number[], size: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(indices, 'int32'), size), 'float32') as tf.Tensor2D);
}
