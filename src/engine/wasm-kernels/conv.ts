/**
 * Convolution gradients on wasm, expressed as forward convolutions so they run on XNNPACK.
 *
 * Filter gradient: dW[i,j,ci,co] = Σ_{n,oh,ow} x[n, oh·s + i·d − pt, ow·s + j·d − pl, ci] · dy[n,oh,ow,co]
 *   = conv(x transposed to [Ci,H,W,N], dy transposed to [Ho,Wo,N,Co], stride = d, dilation = s),
 *   giving [Ci,fh,fw,Co] (cropped to fh×fw), transposed to [fh,fw,Ci,Co].
 * Input gradient: dx = conv(dy zero-dilated by s and padded by (f−1)·d − p, the filter flipped in
 *   space and transposed to [fh,fw,Co,Ci], dilation d, stride 1). The flipped filter is cached per
 *   source buffer (and released with it), so XNNPACK's packed-weight cache keeps working.
 */
import * as tf from '@tensorflow/tfjs-core';
import { callStock, f32, free, transpose, view, type KernelArgs, type WasmBackend } from './common.js';

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

/** Forward conv through the stock XNNPACK kernel with explicit padding. */
function conv(backend: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo, strides: [number, number], dilations: [number, number], pad: [number, number, number, number]): tf.TensorInfo {
  const [t, b, l, r] = pad;
  const explicit = [[0, 0], [t, b], [l, r], [0, 0]];
  return callStock('Conv2D', backend, { x, filter }, { strides, dilations, pad: explicit as unknown as tf.NamedAttrMap[string], dataFormat: 'NHWC', dimRoundingMode: undefined as unknown as string });
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
