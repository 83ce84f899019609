/** The picture `glasswing explain` writes: input, signed heatmap, and the heatmap over the input. */
import type * as tf from '@tensorflow/tfjs-core';
import type { Explanation } from '../../core/explanation.js';
import { grid, renderImage, renderMap, type Image } from '../../render/index.js';
import { mapOverInput } from './backdrop.js';

export function renderExplanationPanel(
  x: tf.Tensor4D,
  e: Explanation,
  opts: { signed: boolean; classNames: string[]; index?: number; scale?: number },
): Image {
  const index = opts.index ?? 0;
  const colormap = opts.signed ? 'diverging' : 'sequential';
  const name = (c: number) => opts.classNames[c] ?? String(c);
  // Contrastive methods answer "why the true class and not the probe?"; others explain one target.
  const probe = e.extras.probe as number[] | undefined;
  const trueClass = e.extras.trueClass as number[] | undefined;
  const title = probe && trueClass ? `${e.method}: why ${name(trueClass[index])}, not ${name(probe[index])}?` : `${e.method} → ${name(e.target[index])}`;
  return grid(
    [renderImage(x, { index }), renderMap(e.attribution, { index, colormap, signed: opts.signed }), mapOverInput(x, e.attribution, index, opts.signed)],
    { labels: ['input', title, `${e.timeMs.toFixed(1)} ms`], cols: 3, scale: opts.scale ?? 8 },
  );
}
