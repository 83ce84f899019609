/**
 * `eigen-cam` (Muhammad & Yeasin 2020; pytorch-grad-cam EigenCAM): the projection of the layer's
 * activations on their first principal component — A [h·w, C] centred per channel, v its leading
 * right singular vector, cam = relu(A_c v) — upsampled like grad-cam. Class-agnostic and
 * gradient-free: the target plays no role. The singular vector is found by power iteration in float64
 * (C × C never formed); its sign, arbitrary in an SVD, is chosen so the projection correlates
 * positively with the summed activation (otherwise the map could come out inverted).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { camLayer, camResult, needsConvGraph, perChunkAtLayer } from './cam.js';
import { oneOf, positiveInt } from './math.js';

export interface EigenCamOptions {
  layer: string | null;
  upsample: 'bilinear' | 'nearest';
  batchSize: number;
}

/** First principal component projection of one activation map (row-major [p, c]) in float64. */
export function firstComponentProjection(a: Float32Array | Float64Array, p: number, c: number, iterations = 200): Float64Array {
  const mean = new Float64Array(c);
  for (let i = 0; i < p; i++) for (let j = 0; j < c; j++) mean[j] += a[i * c + j];
  for (let j = 0; j < c; j++) mean[j] /= p;
  const x = new Float64Array(p * c);
  for (let i = 0; i < p; i++) for (let j = 0; j < c; j++) x[i * c + j] = a[i * c + j] - mean[j];
  // start from the direction of the summed activation's projection (deterministic)
  let v = new Float64Array(c).fill(1 / Math.sqrt(c));
  const xv = new Float64Array(p);
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < p; i++) {
      let s = 0;
      for (let j = 0; j < c; j++) s += x[i * c + j] * v[j];
      xv[i] = s;
    }
    const nv = new Float64Array(c);
    for (let i = 0; i < p; i++) for (let j = 0; j < c; j++) nv[j] += x[i * c + j] * xv[i];
    let norm = 0;
    for (let j = 0; j < c; j++) norm += nv[j] * nv[j];
    norm = Math.sqrt(norm);
    if (norm === 0) break;
    let change = 0;
    for (let j = 0; j < c; j++) {
      nv[j] /= norm;
      change += Math.abs(nv[j] - v[j]);
    }
    v = nv;
    if (change < 1e-12) break;
  }
  const proj = new Float64Array(p);
  let corr = 0;
  for (let i = 0; i < p; i++) {
    let s = 0;
    let total = 0;
    for (let j = 0; j < c; j++) {
      s += x[i * c + j] * v[j];
      total += a[i * c + j];
    }
    proj[i] = s;
    corr += s * total;
  }
  if (corr < 0) for (let i = 0; i < p; i++) proj[i] = -proj[i];
  return proj;
}

registerMethod<EigenCamOptions>({
  name: 'eigen-cam',
  family: 'attribution',
  description: 'Eigen-CAM: first principal component of a layer\'s activations, class-agnostic (Muhammad & Yeasin 2020)',
  signed: true,
  memory: 'forward',
  perImageExtras: ['raw'],
  parallel: 'images',
  defaults: { layer: null, upsample: 'bilinear', batchSize: 64 },
  requires: needsConvGraph,
  run(classifier, x, targets, options) {
    const layer = camLayer(classifier, options.layer);
    const upsample = oneOf('upsample', options.upsample, ['bilinear', 'nearest'] as const);
    const raw = perChunkAtLayer(classifier, x, targets, layer, positiveInt('batchSize', options.batchSize), false, (a) => {
      const [n, h, w, c] = a.shape;
      const data = a.dataSync() as Float32Array;
      const out = new Float32Array(n * h * w);
      for (let i = 0; i < n; i++) {
        const proj = firstComponentProjection(data.subarray(i * h * w * c, (i + 1) * h * w * c), h * w, c);
        for (let p = 0; p < h * w; p++) out[i * h * w + p] = Math.max(0, proj[p]);
      }
      return tf.tensor4d(out, [n, h, w, 1]);
    });
    return camResult(raw, x, layer, upsample);
  },
});
