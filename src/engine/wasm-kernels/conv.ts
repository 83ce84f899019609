/**
 * Convolution gradients on wasm, expressed as forward convolutions so they run on XNNPACK.
 *
 * Filter gradient: dW[i,j,ci,co] = Σ_{n,oh,ow} x[n, oh·s + i·d − pt, ow·s + j·d − pl, ci] · dy[n,oh,ow,co]
 *   = conv(x transposed to [Ci,H,W,N], dy transposed to [Ho,Wo,N,Co], stride = d, dilation = s),
 *   giving [Ci,fh,fw,Co] (cropped to fh×fw), transposed to [fh,fw,Ci,Co].
 * Input gradient, by case:
 *   - ≤ 4 input channels (first layers): GEMM dy·Wᵀ on XNNPACK, then col2im;
 *   - stride 1: dx = conv(dy padded by (f−1)·d − p, the filter flipped in space and transposed to
 *     [fh,fw,Co,Ci], dilation d);
 *   - stride s > 1: polyphase — s² stride-1 convs with flipped sub-filters, interleaved;
 *   - fallback (explicit paddings larger than the filter): conv of the zero-padded, zero-dilated dy.
 * Flipped filters, sub-filters and Wᵀ are cached per source buffer (and released with it), so
 * XNNPACK's packed-weight cache, keyed by buffer id, keeps working.
 */
import * as tf from '@tensorflow/tfjs-core';
import { cachedDerived, callStock, f32, free, transpose, view, type KernelArgs, type WasmBackend } from './common.js';

type Conv2DInfo = tf.backend_util.Conv2DInfo;

function convInfo(xShape: number[], filterShape: number[], attrs: tf.NamedAttrMap, depthwise = false): Conv2DInfo {
  const dataFormat = tf.backend_util.convertConv2DDataFormat((attrs.dataFormat as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC');
  if (dataFormat !== 'channelsLast') throw new Error(`wasm convolution gradients support only NHWC, got ${String(attrs.dataFormat)}`);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    (attrs.dilations as number | [number, number] | undefined) ?? 1,
    attrs.pad as 'same' | 'valid' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    depthwise,
    dataFormat,
  );
}

/** Forward conv (or depthwise conv) through the stock XNNPACK kernel with explicit padding. */
function conv(backend: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo, strides: [number, number], dilations: [number, number], pad: [number, number, number, number], depthwise = false): tf.TensorInfo {
  const [t, b, l, r] = pad;
  const explicit = [[0, 0], [t, b], [l, r], [0, 0]];
  return callStock(depthwise ? 'DepthwiseConv2dNative' : 'Conv2D', backend, { x, filter }, { strides, dilations, pad: explicit as unknown as tf.NamedAttrMap[string], dataFormat: 'NHWC', dimRoundingMode: undefined as unknown as string });
}

export function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  const info = convInfo(x.shape, filterShape, { ...attrs, dilations: 1 });
  return filterGradient(backend, x, dy, info);
}

function filterGradient(backend: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo, info: Conv2DInfo): tf.TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: ho, outWidth: wo, outChannels: co, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const { top, bottom, left, right } = info.padInfo;
  // x [N,H,W,Ci] -> [Ci,H,W,N]; dy [N,Ho,Wo,Co] -> [Ho,Wo,N,Co]
  const xt = n === 1 && ci === 1 ? view(x, [ci, h, w, n]) : transpose(backend, x, [3, 1, 2, 0]);
  const dyt = n === 1 ? view(dy, [ho, wo, n, co]) : transpose(backend, dy, [1, 2, 0, 3]);
  const g = conv(backend, xt, dyt, [dh, dw], [sh, sw], [top, Math.max(0, bottom), left, Math.max(0, right)]);
  if (xt.dataId !== x.dataId) free(backend, xt);
  if (dyt.dataId !== dy.dataId) free(backend, dyt);
  // g: [Ci, gh, gw, Co] with gh >= fh, gw >= fw
  const [, gh, gw] = g.shape;
  let cropped = g;
  if (gh !== fh || gw !== fw) {
    cropped = callStock('Slice', backend, { x: g }, { begin: [0, 0, 0, 0], size: [ci, fh, fw, co] });
    free(backend, g);
  }
  if (ci === 1) return { dataId: cropped.dataId, shape: [fh, fw, ci, co], dtype: 'float32' };
  const out = transpose(backend, cropped, [1, 2, 0, 3]);
  free(backend, cropped);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Input gradient

/** W [fh,fw,Ci,Co] -> Wf [fh,fw,Co,Ci] with Wf[i,j,o,c] = W[fh-1-i, fw-1-j, c, o]. Cached per source buffer. */
function flippedFilter(backend: WasmBackend, filter: tf.TensorInfo): tf.TensorInfo {
  return cachedDerived(backend, filter, 'flip', () => flip(backend, filter));
}

/** Depthwise filter [fh,fw,C,1] flipped in space (no channel transpose: each channel is its own filter). */
function flippedDepthwiseFilter(backend: WasmBackend, filter: tf.TensorInfo): tf.TensorInfo {
  return cachedDerived(backend, filter, 'dwflip', () => {
    const [fh, fw, c] = filter.shape;
    const out = backend.makeOutput(filter.shape, 'float32');
    const src = f32(backend, filter);
    const dst = f32(backend, out);
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        const s0 = ((fh - 1 - i) * fw + (fw - 1 - j)) * c;
        dst.set(src.subarray(s0, s0 + c), (i * fw + j) * c);
      }
    }
    return out;
  });
}

function flip(backend: WasmBackend, filter: tf.TensorInfo): tf.TensorInfo {
  const [fh, fw, ci, co] = filter.shape;
  const out = backend.makeOutput([fh, fw, co, ci], 'float32');
  const src = f32(backend, filter);
  const dst = f32(backend, out);
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      const s0 = ((fh - 1 - i) * fw + (fw - 1 - j)) * ci * co;
      const d0 = (i * fw + j) * co * ci;
      for (let c = 0; c < ci; c++) {
        const sRow = s0 + c * co;
        for (let o = 0; o < co; o++) dst[d0 + o * ci + c] = src[sRow + o];
      }
    }
  }
  return out;
}

/**
 * dy [N,Ho,Wo,C] placed at rows pt + oh·sh, columns pl + ow·sw of a zero [N,Hd,Wd,C] buffer
 * (positions outside are dropped).
 */
function dilatePad(backend: WasmBackend, dy: tf.TensorInfo, sh: number, sw: number, pt: number, pl: number, hd: number, wd: number): tf.TensorInfo {
  const [n, ho, wo, c] = dy.shape;
  const out = backend.makeOutput([n, hd, wd, c], 'float32');
  const src = f32(backend, dy);
  const dst = f32(backend, out);
  dst.fill(0);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      const p = pt + oh * sh;
      if (p < 0 || p >= hd) continue;
      for (let ow = 0; ow < wo; ow++) {
        const q = pl + ow * sw;
        if (q < 0 || q >= wd) continue;
        const s = ((b * ho + oh) * wo + ow) * c;
        dst.set(src.subarray(s, s + c), ((b * hd + p) * wd + q) * c);
      }
    }
  }
  return out;
}

export function conv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs;
  const info = convInfo(attrs.inputShape as number[], filter.shape, { ...attrs, dilations: 1 });
  // Few input channels (the first layer: images have 1 or 3): a conv with that few output
  // channels runs XNNPACK at a fraction of its speed, and stride 2 wastes 3/4 of the work on zeros.
  if (info.inChannels <= 4) return inputGradientGemm(backend, dy, filter, info);
  if (info.strideHeight > 1 || info.strideWidth > 1) return inputGradientPolyphase(backend, dy, filter, info);
  return inputGradient(backend, dy, flippedFilter(backend, filter), info);
}

/**
 * Strided dx without the zero-dilated dy (which wastes (1 − 1/s²) of the work): the input rows with
 * (h + top) mod s = r only receive taps i ≡ r (mod s), so each of the s×s phases is a stride-1
 * "full" convolution of dy with the flipped sub-filter W[r + s·t] (cached per filter buffer), and
 * the phase results interleave into dx.
 */
function inputGradientPolyphase(backend: WasmBackend, dy: tf.TensorInfo, filter: tf.TensorInfo, info: Conv2DInfo): tf.TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: ho, outWidth: wo, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const parts: Array<{ rh: number; rw: number; th: number; tw: number; y: tf.TensorInfo }> = [];
  for (let rh = 0; rh < sh; rh++) {
    const th = Math.ceil((fh - rh) / sh);
    if (th <= 0) continue;
    for (let rw = 0; rw < sw; rw++) {
      const tw = Math.ceil((fw - rw) / sw);
      if (tw <= 0) continue;
      const sub = cachedDerived(backend, filter, `poly${sh}x${sw}:${rh},${rw}`, () => subFilter(backend, filter, rh, rw, sh, sw, th, tw));
      parts.push({ rh, rw, th, tw, y: conv(backend, dy, sub, [1, 1], [1, 1], [th - 1, th - 1, tw - 1, tw - 1]) });
    }
  }
  const out = backend.makeOutput(info.inShape, 'float32');
  const dx = f32(backend, out); // views only after every allocation (the heap may grow)
  dx.fill(0);
  for (const { rh, rw, th, tw, y } of parts) {
    const ys = f32(backend, y);
    const qh = ho + th - 1;
    const qw = wo + tw - 1;
    for (let b = 0; b < n; b++) {
      for (let q = 0; q < qh; q++) {
        const hh = q * sh + rh - top;
        if (hh < 0 || hh >= h) continue;
        for (let p = 0; p < qw; p++) {
          const ww = p * sw + rw - left;
          if (ww < 0 || ww >= w) continue;
          const src = ((b * qh + q) * qw + p) * ci;
          const dst = ((b * h + hh) * w + ww) * ci;
          if (ci < 16) for (let c = 0; c < ci; c++) dx[dst + c] = ys[src + c];
          else dx.set(ys.subarray(src, src + ci), dst);
        }
      }
    }
  }
  for (const part of parts) free(backend, part.y);
  return out;
}

/** Wsub[a,b,o,c] = W[rh + sh·(th−1−a), rw + sw·(tw−1−b), c, o]: the phase's taps, flipped and transposed. */
function subFilter(backend: WasmBackend, filter: tf.TensorInfo, rh: number, rw: number, sh: number, sw: number, th: number, tw: number): tf.TensorInfo {
  const [, fw, ci, co] = filter.shape;
  const out = backend.makeOutput([th, tw, co, ci], 'float32');
  const src = f32(backend, filter);
  const dst = f32(backend, out);
  for (let a = 0; a < th; a++) {
    const i = rh + sh * (th - 1 - a);
    for (let b = 0; b < tw; b++) {
      const j = rw + sw * (tw - 1 - b);
      const s0 = (i * fw + j) * ci * co;
      const d0 = (a * tw + b) * co * ci;
      for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) dst[d0 + o * ci + c] = src[s0 + c * co + o];
    }
  }
  return out;
}

/**
 * dx by GEMM + col2im: cols [N·Ho·Wo, fh·fw·Ci] = dy [N·Ho·Wo, Co] · Wᵀ [Co, fh·fw·Ci] (XNNPACK; Wᵀ
 * cached per filter buffer), then each column entry is added to the input position it came from.
 */
function inputGradientGemm(backend: WasmBackend, dy: tf.TensorInfo, filter: tf.TensorInfo, info: Conv2DInfo): tf.TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: ho, outWidth: wo, outChannels: co, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const k = fh * fw * ci;
  const m = n * ho * wo;
  const wt = cachedDerived(backend, filter, 'KxC->CxK', () => transpose(backend, view(filter, [k, co]), [1, 0]));
  const cols = callStock('BatchMatMul', backend, { a: view(dy, [1, m, co]), b: view(wt, [1, co, k]) }, { transposeA: false, transposeB: false });
  const out = backend.makeOutput(info.inShape, 'float32');
  const c = f32(backend, cols);
  const dx = f32(backend, out);
  dx.fill(0);
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // For fixed (oh, ow, i) the taps j = 0..fw−1 hit consecutive input columns when the dilation is 1,
  // so (j, c) is one contiguous run in both cols and dx.
  const contiguous = dw === 1;
  let row = 0;
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      for (let ow = 0; ow < wo; ow++, row += k) {
        const w0 = ow * sw - left;
        const jStart = Math.max(0, Math.ceil(-w0 / dw));
        const jEnd = Math.min(fw, Math.floor((w - 1 - w0) / dw) + 1);
        if (jEnd <= jStart) continue;
        for (let i = 0; i < fh; i++) {
          const hh = oh * sh + i * dh - top;
          if (hh < 0 || hh >= h) continue;
          const colBase = row + (i * fw + jStart) * ci;
          const dxBase = ((b * h + hh) * w + w0 + jStart * dw) * ci;
          if (contiguous) {
            const len = (jEnd - jStart) * ci;
            for (let t = 0; t < len; t++) dx[dxBase + t] += c[colBase + t];
          } else {
            for (let j = jStart; j < jEnd; j++) {
              const cb = colBase + (j - jStart) * ci;
              const db = dxBase + (j - jStart) * dw * ci;
              for (let q = 0; q < ci; q++) dx[db + q] += c[cb + q];
            }
          }
        }
      }
    }
  }
  free(backend, cols);
  return out;
}

function inputGradient(backend: WasmBackend, dy: tf.TensorInfo, flipped: tf.TensorInfo, info: Conv2DInfo, depthwise = false): tf.TensorInfo {
  const { inHeight: h, inWidth: w, outHeight: ho, outWidth: wo, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const pt = (fh - 1) * dh - info.padInfo.top;
  const pl = (fw - 1) * dw - info.padInfo.left;
  const hd = h + (fh - 1) * dh;
  const wd = w + (fw - 1) * dw;
  const pb = hd - pt - ((ho - 1) * sh + 1);
  const pr = wd - pl - ((wo - 1) * sw + 1);
  if (sh === 1 && sw === 1 && pt >= 0 && pl >= 0 && pb >= 0 && pr >= 0) {
    return conv(backend, dy, flipped, [1, 1], [dh, dw], [pt, pb, pl, pr], depthwise);
  }
  const padded = dilatePad(backend, dy, sh, sw, pt, pl, hd, wd);
  const out = conv(backend, padded, flipped, [1, 1], [dh, dw], [0, 0, 0, 0], depthwise);
  free(backend, padded);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Depthwise convolution gradients (missing on stock wasm). Filter [fh,fw,C,M]; output channel c·M + m.
//
// Input gradient with channel multiplier 1 (MobileNet, Xception, EfficientNet): each channel is an
// independent 2-D convolution, so the dense-conv construction carries over with a depthwise XNNPACK
// conv in place of the dense one — the stride-1 depthwise conv of dy (zero-dilated when the stride is
// s > 1, padded) with the spatially flipped filter. (A direct loop on the heap took ~3 ms per
// MobileNetV2 layer at 224², a third of the network's whole gradient. Polyphase, as for dense convs,
// was 3× slower here: its 2×1, 1×2 and 1×1 sub-filters fall off XNNPACK's depthwise fast paths.)
// Multipliers > 1 and the filter gradient (training only) use direct loops on the heap.

export function depthwiseBackpropInput({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs;
  const info = convInfo(attrs.inputShape as number[], filter.shape, attrs, true);
  if (filter.shape[3] === 1 && dy.dtype === 'float32') return inputGradient(backend, dy, flippedDepthwiseFilter(backend, filter), info, true);
  return depthwiseBackpropInputLoop(dy, filter, info, backend);
}

/** Direct loop (any multiplier, stride, dilation). */
function depthwiseBackpropInputLoop(dy: tf.TensorInfo, filter: tf.TensorInfo, info: Conv2DInfo, backend: WasmBackend): tf.TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const m = filter.shape[3];
  const cm = c * m;
  const out = backend.makeOutput(info.inShape, 'float32');
  const g = f32(backend, dy);
  const k = f32(backend, filter);
  const dx = f32(backend, out);
  dx.fill(0);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      for (let ow = 0; ow < wo; ow++) {
        const yOff = ((b * ho + oh) * wo + ow) * cm;
        for (let i = 0; i < fh; i++) {
          const hh = oh * sh + i * dh - info.padInfo.top;
          if (hh < 0 || hh >= h) continue;
          for (let j = 0; j < fw; j++) {
            const ww = ow * sw + j * dw - info.padInfo.left;
            if (ww < 0 || ww >= w) continue;
            const xOff = ((b * h + hh) * w + ww) * c;
            const kOff = (i * fw + j) * cm;
            for (let ch = 0; ch < c; ch++) {
              let s = 0;
              for (let q = 0; q < m; q++) s += g[yOff + ch * m + q] * k[kOff + ch * m + q];
              dx[xOff + ch] += s;
            }
          }
        }
      }
    }
  }
  return out;
}

export function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  const info = convInfo(x.shape, filterShape, attrs, true);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo, filterHeight: fh, filterWidth: fw } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const m = filterShape[3];
  const cm = c * m;
  const out = backend.makeOutput(filterShape, 'float32');
  const xs = f32(backend, x);
  const g = f32(backend, dy);
  const dk = f32(backend, out);
  dk.fill(0);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      for (let ow = 0; ow < wo; ow++) {
        const yOff = ((b * ho + oh) * wo + ow) * cm;
        for (let i = 0; i < fh; i++) {
          const hh = oh * sh + i * dh - info.padInfo.top;
          if (hh < 0 || hh >= h) continue;
          for (let j = 0; j < fw; j++) {
            const ww = ow * sw + j * dw - info.padInfo.left;
            if (ww < 0 || ww >= w) continue;
            const xOff = ((b * h + hh) * w + ww) * c;
            const kOff = (i * fw + j) * cm;
            for (let ch = 0; ch < c; ch++) {
              const xv = xs[xOff + ch];
              for (let q = 0; q < m; q++) dk[kOff + ch * m + q] += xv * g[yOff + ch * m + q];
            }
          }
        }
      }
    }
  }
  return out;
}
