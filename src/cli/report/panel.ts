/** The picture `glasswing explain` writes: input, signed heatmap, and the heatmap over the input. */
import * as tf from '@tensorflow/tfjs-core';
import type { Explanation } from '../../core/explanation.js';
import { grid, overlay, renderImage, renderMap, type Image } from '../../render/index.js';

export function renderExplanationPanel(
  x: tf.Tensor4D,
  e: Explanation,
  opts: { signed: boolean; classNames: string[]; index?: number; scale?: number },
): Image {
  const i = opts.index ?? 0;
  return tf.tidy(() => {
    const input = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]);
    const map = tf.slice(e.attribution, [i, 0, 0, 0], [1, -1, -1, -1]);
    const colormap = opts.signed ? 'diverging' : 'sequential';
    const heat = renderMap(map, { colormap, signed: opts.signed });
    const target = opts.classNames[e.target[i]] ?? String(e.target[i]);
    return grid([renderImage(input), heat, overlay(input, map, { colormap, signed: opts.signed })], {
      labels: ['input', `${e.method} → ${target}`, `${e.timeMs.toFixed(1)} ms`],
      cols: 3,
      scale: opts.scale ?? 8,
    });
  });
}
