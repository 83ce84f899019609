/**
 * The input as a faint backdrop for a heat map: strokes light grey on white, so both the red and the
 * blue of a diverging map stay visible on top (white MNIST strokes would wash out red).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { overlay, renderImage, type Image, type ColormapName } from '../../render/index.js';

export function backdrop(x: tf.Tensor, index: number, strength = 0.35): Image {
  const img = renderImage(x, { index });
  const data = new Uint8ClampedArray(img.data.length);
  for (let i = 0; i < data.length; i += 4) {
    for (let c = 0; c < 3; c++) data[i + c] = 255 - strength * img.data[i + c];
    data[i + 3] = 255;
  }
  return { width: img.width, height: img.height, data };
}

/** The map over the faint input, the way the report and `explain` show attributions. */
export function mapOverInput(x: tf.Tensor, map: tf.Tensor, index: number, signed: boolean): Image {
  const colormap: ColormapName = signed ? 'diverging' : 'sequential';
  return overlay(backdrop(x, index), map, { index, colormap, signed, alpha: 0.9 });
}
