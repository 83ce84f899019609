/**
 * A colour model folder pair for the photo and CLI tests: the same small MobileNetV2-shaped network
 * saved as a layers model and as a graph model (converter-style, BN folded, open input size), each
 * with a glasswing.json (64×64 input, range [0, 255], per-channel mean/std, center-crop, labels
 * file) — and photos of other sizes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildMobileNetV2Shaped } from '../../src/models/imagenet-shapes.js';
import { saveModel } from '../../src/models/io.js';
import { exportGraphModel, saveGraphModel } from '../../src/models/graph-model-export.js';
import { encodeJpeg, encodePng } from '../../src/render/png.js';

export const CLASS_NAMES = ['golden retriever', 'tabby, tabby cat', 'tiger shark', 'goldfish', 'espresso'];
export const GLASSWING = { inputSize: [64, 64], range: [0, 255], mean: [123.7, 116.3, 103.5], std: [58.4, 57.1, 57.4], resize: 'center-crop', labels: 'labels.txt' };

export function buildPhotoModel(): tfl.LayersModel {
  return buildMobileNetV2Shaped({ inputShape: [64, 64, 3], alpha: 0.35, depth: 1, lastFilters: 32, numClasses: CLASS_NAMES.length, seed: 21 });
}

/** Writes DIR/layers and DIR/graph (both with glasswing.json + labels.txt). */
export async function writePhotoModels(dir: string, model: tfl.LayersModel): Promise<{ layers: string; graph: string }> {
  const layers = path.join(dir, 'layers');
  const graph = path.join(dir, 'graph');
  await saveModel(model, layers);
  await saveGraphModel(exportGraphModel(model, { foldBatchNorm: true, dynamicSize: true }), graph);
  for (const d of [layers, graph]) {
    // a header comment line and an index prefix: parseLabels strips "0 golden retriever"-style prefixes
    fs.writeFileSync(path.join(d, 'labels.txt'), CLASS_NAMES.map((n, i) => `${i} ${n}`).join('\n') + '\n');
    fs.writeFileSync(path.join(d, 'glasswing.json'), JSON.stringify(GLASSWING, null, 2));
  }
  return { layers, graph };
}

/**
 * A w×h photo: the centre square (the part a center crop keeps) a smooth blue-green gradient,
 * the rest pure red.
 */
export function photoPixels(w: number, h: number): { width: number; height: number; data: Uint8ClampedArray } {
  const data = new Uint8ClampedArray(w * h * 4);
  const s = Math.min(w, h);
  const x0 = (w - s) / 2;
  const y0 = (h - s) / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = x >= x0 && x < x0 + s && y >= y0 && y < y0 + s;
      const o = 4 * (y * w + x);
      if (inside) data.set([20, Math.round(60 + (150 * (x - x0)) / s), Math.round(90 + (140 * (y - y0)) / s), 255], o);
      else data.set([230, 10, 10, 255], o);
    }
  }
  return { width: w, height: h, data };
}

export function writePhoto(file: string, w: number, h: number): void {
  const img = photoPixels(w, h);
  fs.writeFileSync(file, file.endsWith('.png') ? encodePng(img) : encodeJpeg(img, 95));
}
