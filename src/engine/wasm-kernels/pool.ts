/**
 * MaxPoolGrad on wasm. Stock tfjs-backend-wasm 4.22 drops or misroutes the gradient whenever a
 * window's maximum is ≤ 0 and breaks ties differently from TF/PyTorch. Here each window's gradient
 * goes to its first maximum in row-major window order (positions in the padding are skipped), the
 * PyTorch/TF rule. Plain JS on the wasm heap: O(outputs × window).
 *
 * Speed: the forward pass's output y (an input of MaxPoolGrad) is each window's maximum, so the
 * winner is the first tap equal to y. For 2×2 windows with stride 2 (the usual CNN pooling, no
 * overlap) it is found with equality flags and every tap is written (g·flag: no zero-fill, no
 * scatter, no data-dependent branch; g or +0 selected on the bits); the running-maximum search it
 * replaces mispredicted on about every other comparison (~3.3 ns per input element on MNIST's pool1
 * at batch 32 → ~1.5). Windows holding a NaN (it counts as the maximum; the stock forward
 * may skip it), or whose y matches no tap (y not computed from this input), take the
 * running-maximum rule. Other windows (3×3/2, padded, overlapping): per channel the first tap equal
 * to y, with an early exit (inputs with a NaN: the running maximum).
 */
import * as tf from '@tensorflow/tfjs-core';
import { callStock, f32, free, size, type KernelArgs } from './common.js';

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
  const output = inputs.output;
  const withY = output != null && output.dtype === 'float32' && tf.util.arraysEqual(output.shape, dy.shape);
  const tiled = fh === 2 && fw === 2 && dh === 1 && dw === 1 && sh === 2 && sw === 2 && top === 0 && left === 0 && 2 * ho <= h && 2 * wo <= w;
  const firstEqual = withY && !tiled && !hasNaN(backend, input);
  const out = backend.makeOutput(input.shape, 'float32');
  const x = f32(backend, input);
  const g = f32(backend, dy);
  const dx = f32(backend, out); // views only after every allocation (the heap may grow)
  const y = withY ? f32(backend, output) : undefined;
  const d = { n, h, w, c, ho, wo, sh, sw, fh, fw, dh, dw, top, left };
  if (y && tiled) {
    if (2 * ho !== h || 2 * wo !== w) dx.fill(0); // rows / columns no window covers
    pool2x2Tiled(x, y, g, dx, d);
    return out;
  }
  dx.fill(0);
  if (y && firstEqual) {
    poolFirstEqual(x, y, g, dx, d);
    return out;
  }
  if (fh === 2 && fw === 2 && dh === 1 && dw === 1 && top === 0 && left === 0 && (ho - 1) * sh + 2 <= h && (wo - 1) * sw + 2 <= w) {
    pool2x2(x, g, dx, n, h, w, c, ho, wo, sh, sw);
    return out;
  }
  poolRunningMax(x, g, dx, d);
  return out;
}

/**
 * Whether x may hold a NaN: its sum (stock wasm kernel, ~0.4 ns per element) is NaN then — or when
 * it holds both +∞ and −∞, which only costs the slower exact path.
 */
function hasNaN(backend: KernelArgs['backend'], x: tf.TensorInfo): boolean {
  const s = callStock('Sum', backend, { x: { dataId: x.dataId, shape: [size(x.shape)], dtype: 'float32' } }, { axis: [0], keepDims: false });
  const v = f32(backend, s)[0];
  free(backend, s);
  return v !== v;
}

/**
 * Any window with y and no NaN in x: per channel, the window's taps in row-major order until the first
 * one equal to y, which receives g (one mispredicted exit per window-channel, where the running
 * maximum mispredicts on about every other tap: 1.4–3.8× faster on ResNet's 3×3/2 pool). A
 * window-channel whose y matches no tap (y not computed from this input) takes the running maximum.
 */
function poolFirstEqual(x: Float32Array, y: Float32Array, g: Float32Array, dx: Float32Array, d: PoolDims): void {
  const { n, h, w, c, ho, wo, sh, sw, fh, fw, dh, dw, top, left } = d;
  const taps = new Int32Array(Math.ceil(fh / dh) * Math.ceil(fw / dw));
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      const h0 = oh * sh - top;
      for (let ow = 0; ow < wo; ow++) {
        const w0 = ow * sw - left;
        let nt = 0;
        for (let i = 0; i < fh; i += dh) {
          const hh = h0 + i;
          if (hh < 0 || hh >= h) continue;
          for (let j = 0; j < fw; j += dw) {
            const ww = w0 + j;
            if (ww < 0 || ww >= w) continue;
            taps[nt++] = ((b * h + hh) * w + ww) * c;
          }
        }
        if (nt === 0) continue; // window entirely in the padding
        const q = ((b * ho + oh) * wo + ow) * c;
        for (let k = 0; k < c; k++) {
          const m = y[q + k];
          let t = 0;
          while (t < nt && x[taps[t] + k] !== m) t++;
          if (t < nt) {
            dx[taps[t] + k] += g[q + k];
            continue;
          }
          let at = taps[0] + k;
          for (let u = 1; u < nt; u++) if (x[taps[u] + k] > x[at]) at = taps[u] + k;
          dx[at] += g[q + k];
        }
      }
    }
  }
}

type PoolDims = { n: number; h: number; w: number; c: number; ho: number; wo: number; sh: number; sw: number; fh: number; fw: number; dh: number; dw: number; top: number; left: number };

/**
 * 2×2 windows with stride 2 (each input in at most one window): every tap of a window is written
 * (g or 0) from the first-equal-to-y flags e0..e3, so dx needs no zero-fill where windows cover it.
 */
function pool2x2Tiled(x: Float32Array, y: Float32Array, g: Float32Array, dx: Float32Array, d: PoolDims): void {
  const { n, h, w, c, ho, wo } = d;
  const rowStride = w * c;
  const gi = new Int32Array(g.buffer, g.byteOffset, g.length);
  const dxi = new Int32Array(dx.buffer, dx.byteOffset, dx.length);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      for (let ow = 0; ow < wo; ow++) {
        const p00 = ((b * h + 2 * oh) * w + 2 * ow) * c;
        const p01 = p00 + c;
        const p10 = p00 + rowStride;
        const p11 = p10 + c;
        const q = ((b * ho + oh) * wo + ow) * c;
        for (let k = 0; k < c; k++) {
          const m = y[q + k];
          const gk = g[q + k];
          const a0 = x[p00 + k];
          const a1 = x[p01 + k];
          const a2 = x[p10 + k];
          const a3 = x[p11 + k];
          const e0 = +(a0 === m);
          const e1 = +(a1 === m) & (e0 ^ 1);
          const e2 = +(a2 === m) & ((e0 | e1) ^ 1);
          const e3 = +(a3 === m) & ((e0 | e1 | e2) ^ 1);
          if ((e0 | e1 | e2 | e3) === 0 || (a0 !== a0) || (a1 !== a1) || (a2 !== a2) || (a3 !== a3)) {
            // NaN in the window (it counts as the maximum, the first one wins) or y from elsewhere
            let bi = 0;
            let bv = a0;
            const v = [a0, a1, a2, a3];
            for (let t = 1; t < 4; t++) {
              if (v[t] > bv || (v[t] !== v[t] && bv === bv)) {
                bv = v[t];
                bi = t;
              }
            }
            dx[p00 + k] = bi === 0 ? gk : 0;
            dx[p01 + k] = bi === 1 ? gk : 0;
            dx[p10 + k] = bi === 2 ? gk : 0;
            dx[p11 + k] = bi === 3 ? gk : 0;
            continue;
          }
          // g or +0 on the bits (g·0 would give −0 for negative g and NaN for infinite g)
          const gb = gi[q + k];
          dxi[p00 + k] = gb & -e0;
          dxi[p01 + k] = gb & -e1;
          dxi[p10 + k] = gb & -e2;
          dxi[p11 + k] = gb & -e3;
        }
      }
    }
  }
}

/**
 * Any window (overlapping, padded, dilated) without y or with a NaN in x: running maximum per
 * channel, first maximum wins, NaN counts as the maximum.
 */
function poolRunningMax(x: Float32Array, g: Float32Array, dx: Float32Array, d: PoolDims): void {
  const { n, h, w, c, ho, wo, sh, sw, fh, fw, dh, dw, top, left } = d;
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
