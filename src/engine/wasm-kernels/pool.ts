/**
 * MaxPoolGrad on wasm. Stock tfjs-backend-wasm 4.22 drops or misroutes the gradient whenever a
 * window's maximum is ≤ 0 and breaks ties differently from TF/PyTorch. Here each window's gradient
 * goes to its first maximum in row-major window order (positions in the padding are skipped), the
 * PyTorch/TF rule. Plain JS on the wasm heap: O(outputs × window), a few ms for ResNet-18's pool.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32, type KernelArgs } from './common.js';

export function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, input } = inputs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize as [number, number] | number,
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as 'same' | 'valid' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw } = info;
  const fh = info.effectiveFilterHeight;
  const fw = info.effectiveFilterWidth;
  const dh = info.dilationHeight;
  const dw = info.dilationWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = backend.makeOutput(input.shape, 'float32');
  const x = f32(backend, input);
  const g = f32(backend, dy);
  const dx = f32(backend, out);
  dx.fill(0);
  if (fh === 2 && fw === 2 && dh === 1 && dw === 1 && top === 0 && left === 0 && (ho - 1) * sh + 2 <= h && (wo - 1) * sw + 2 <= w) {
    pool2x2(x, g, dx, n, h, w, c, ho, wo, sh, sw);
    return out;
  }
  const best = new Float32Array(c);
  const arg = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      const h0 = oh * sh - top;
      for (let ow = 0; ow < wo; ow++) {
        const w0 = ow * sw - left;
        let first = true;
        for (let i = 0; i < fh; i += dh) {
          const hh = h0 + i;
          if (hh < 0 || hh >= h) continue;
          for (let j = 0; j < fw; j += dw) {
            const ww = w0 + j;
            if (ww < 0 || ww >= w) continue;
            const base = ((b * h + hh) * w + ww) * c;
            if (first) {
              for (let k = 0; k < c; k++) {
                best[k] = x[base + k];
                arg[k] = base + k;
              }
              first = false;
              continue;
            }
            for (let k = 0; k < c; k++) {
              const v = x[base + k];
              const cur = best[k];
              // first maximum wins; NaN counts as the maximum (as in PyTorch)
              if (v > cur || (v !== v && cur === cur)) {
                best[k] = v;
                arg[k] = base + k;
              }
            }
          }
        }
        if (first) continue; // window entirely in the padding
        const gBase = ((b * ho + oh) * wo + ow) * c;
        for (let k = 0; k < c; k++) dx[arg[k]] += g[gBase + k];
      }
    }
  }
  return out;
}

/** The common 2×2 window fully inside the input, unrolled (same rule: first maximum, NaN wins). */
function pool2x2(x: Float32Array, g: Float32Array, dx: Float32Array, n: number, h: number, w: number, c: number, ho: number, wo: number, sh: number, sw: number): void {
  const rowStride = w * c;
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      for (let ow = 0; ow < wo; ow++) {
        const p00 = ((b * h + oh * sh) * w + ow * sw) * c;
        const p01 = p00 + c;
        const p10 = p00 + rowStride;
        const p11 = p10 + c;
        const gBase = ((b * ho + oh) * wo + ow) * c;
        for (let k = 0; k < c; k++) {
          let bi = p00 + k;
          let bv = x[bi];
          let v = x[p01 + k];
          if (v > bv || (v !== v && bv === bv)) {
            bv = v;
            bi = p01 + k;
          }
          v = x[p10 + k];
          if (v > bv || (v !== v && bv === bv)) {
            bv = v;
            bi = p10 + k;
          }
          v = x[p11 + k];
          if (v > bv || (v !== v && bv === bv)) bi = p11 + k;
          dx[bi] += g[gBase + k];
        }
      }
    }
  }
}
