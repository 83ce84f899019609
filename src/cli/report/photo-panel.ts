/**
 * The picture `glasswing explain` writes for a colour photo: the photo, the map over the
 * desaturated photo (mapped back through the model's crop/resize), the map alone in the model's
 * input space, and the top-k classes — with class names.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Explanation } from '../../core/explanation.js';
import type { PhotoInfo } from '../../core/preprocessing.js';
import { grid, renderMap, renderOnPhoto, renderTopK, type Image } from '../../render/index.js';
import type { RawImage } from '../../data/image.js';

export interface PhotoPanelOptions {
  signed: boolean;
  classNames: string[];
  /** Softmax probabilities of this image. */
  probabilities: ArrayLike<number>;
  /** Classes in the top-k chart (default 5). */
  top?: number;
  /** Opacity of the map over the photo (default 0.6). */
  opacity?: number;
  /** Longest side of the photo tiles (default 320). */
  tileSize?: number;
}

export function renderPhotoPanel(raw: RawImage, info: PhotoInfo, e: Explanation, opts: PhotoPanelOptions): Image {
  const side = opts.tileSize ?? 320;
  const colormap = opts.signed ? 'diverging' : 'sequential';
  const name = (c: number) => opts.classNames[c] ?? String(c);
  const target = e.target[0];
  const photo = renderOnPhoto(raw, info, e.attribution, { alpha: 0, maxSide: side, index: 0 }); // the photo itself, at tile size
  const over = renderOnPhoto(raw, info, e.attribution, {
    colormap, signed: opts.signed, alpha: opts.opacity ?? 0.6, desaturate: 1, maxSide: side, index: 0,
  });
  const scale = Math.max(1, Math.floor(side / Math.max(info.inputWidth, info.inputHeight)));
  const map = renderMap(e.attribution as tf.Tensor, { index: 0, colormap, signed: opts.signed, scale });
  const chart = renderTopK(opts.probabilities, opts.classNames, { k: opts.top ?? 5, highlight: target, width: Math.max(240, side) });
  return grid([photo, over, map, chart], {
    labels: [
      info.file ? info.file.split('/').pop() : 'photo',
      `${e.method} → ${name(target)}`,
      `model input ${info.inputWidth}×${info.inputHeight}, ${e.timeMs.toFixed(0)} ms`,
      `top ${Math.min(opts.top ?? 5, opts.classNames.length)}`,
    ],
    cols: 4,
  });
}
