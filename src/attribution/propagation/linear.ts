/**
 * The linear operations relevance rules are applied to — Dense, Conv2D (strides, 'same'/'valid'
 * padding, dilation), DepthwiseConv2D (kept depthwise; also the first half of a
 * SeparableConv2D, whose pointwise half is a Conv2D) and Conv2DTranspose (L = the transpose of a
 * convolution, so Lᵀ is that convolution) — each as a forward map L(x; w) + b and its transpose Lᵀ(g; w).
 *
 * The transposes are written with forward ops only: Lᵀ of a convolution is a forward convolution of
 * the zero-dilated, padded g with the flipped, in/out-swapped kernel (XNNPACK-fast on wasm, unlike
 * the stock Conv2DBackpropInput scalar loop), and Lᵀ of a Dense is matMul(g, w, transposeB) — the
 * op the plain gradient uses, which Glasswing's wasm kernels make fast. See ../shared/ENGINE.md.
 */
import * as tf from '@tensorflow/tfjs-core';
import { dilateKernel, type GraphNode } from '../../core/graph.js';
import { UnsupportedLayerError } from '../../core/errors.js';
import { wasmKernelsInstalled } from '../../engine/wasm-kernels/index.js';

export interface LinearOp {
  kind: 'dense' | 'conv2d';
  /** L(x; w) + b, b optional (broadcast over the last axis). */
  forward(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor;
  /** Lᵀ(g; w): maps a tensor shaped like the output back to the input's shape. */
  transpose(g: tf.Tensor, w: tf.Tensor, xShape: number[]): tf.Tensor;
  /** Kernel in this op's layout (a depthwise kernel stays [kh, kw, C, m]). */
  kernel(): tf.Tensor;
  bias(): tf.Tensor | undefined;
  /** Convolution geometry (plain Conv2D only; undefined for Dense and depthwise). */
  conv?: { kernelSize: [number, number]; strides: [number, number]; padding: 'same' | 'valid'; dilation: [number, number] };
}

export interface ConvGeometry {
  kernel: [number, number];
  strides: [number, number];
  padding: 'same' | 'valid';
  dilation: [number, number];
}

/** Top/left padding and output size of one spatial axis, TF conventions. */
function axisGeometry(size: number, k: number, s: number, padding: 'same' | 'valid'): { before: number; out: number } {
  if (padding === 'valid') return { before: 0, out: Math.ceil((size - k + 1) / s) };
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + k - size, 0);
  return { before: Math.floor(total / 2), out };
}

/** Insert (s − 1) zeros between the rows/columns of an NHWC tensor. */
function zeroDilate(g: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return g;
  const [n, h, w, c] = g.shape;
  const e = tf.reshape(g, [n, h, 1, w, 1, c]);
  const p = tf.pad(e, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  const r = tf.reshape(p, [n, h * sh, w * sw, c]) as tf.Tensor4D;
  return tf.slice(r, [0, 0, 0, 0], [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c]);
}

/** Kernel with (d − 1) zeros between its taps (dilated convolution as a plain one). */
export { dilateKernel };

/**
 * Transpose of conv2d(x, w, strides, padding) (dilation folded into w beforehand), computed as a
 * forward convolution. g: [N, Ho, Wo, out], w: [kh, kw, in, out] → [N, H, W, in].
 */
export function convTranspose(g: tf.Tensor4D, w: tf.Tensor4D, xShape: number[], strides: [number, number], padding: 'same' | 'valid'): tf.Tensor4D {
  // Where Conv2DBackpropInput is fast (Glasswing's wasm kernels: polyphase, cached flips; cpu), use it.
  const backend = tf.getBackend();
  if ((backend === 'wasm' && wasmKernelsInstalled()) || backend === 'cpu' || backend === 'tensorflow') {
    return tf.conv2dTranspose(g, w, xShape as [number, number, number, number], strides, padding);
  }
  const [kh, kw] = w.shape;
  const [, H, W] = xShape;
  const gh = axisGeometry(H, kh, strides[0], padding);
  const gw = axisGeometry(W, kw, strides[1], padding);
  const d = zeroDilate(g, strides[0], strides[1]);
  const top = kh - 1 - gh.before;
  const left = kw - 1 - gw.before;
  const bottom = H + kh - 1 - top - d.shape[1];
  const right = W + kw - 1 - left - d.shape[2];
  let padded: tf.Tensor4D = d;
  if (bottom < 0 || right < 0) {
    padded = tf.slice(padded, [0, 0, 0, 0], [d.shape[0], d.shape[1] + Math.min(bottom, 0), d.shape[2] + Math.min(right, 0), d.shape[3]]);
  }
  padded = tf.pad(padded, [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]]);
  return tf.conv2d(padded, flipKernel(w), 1, 'valid');
}

/**
 * Kernel flipped in both spatial axes with in/out channels swapped: [kh, kw, in, out] → [kh, kw, out, in].
 * The flip is a gather of the kh·kw rows in reverse order (wasm's Reverse is a slow scalar loop).
 */
export function flipKernel(w: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, i, o] = w.shape;
  const rows = tf.reshape(w, [kh * kw, i * o]);
  const idx = tf.range(kh * kw - 1, -1, -1, 'int32');
  return tf.transpose(tf.reshape(tf.gather(rows, idx), [kh, kw, i, o]), [0, 1, 3, 2]) as tf.Tensor4D;
}

export function isLinearNode(node: GraphNode): boolean {
  return node.kind === 'dense' || node.kind === 'conv2d' || node.kind === 'depthwise-conv2d' || node.kind === 'conv2d-transpose';
}

/** The LinearOp of a dense, conv2d, depthwise-conv2d or conv2d-transpose node. */
export function linearOpOf(node: GraphNode): LinearOp {
  const p = node.params;
  if (node.kind === 'dense') {
    return {
      kind: 'dense',
      kernel: () => p.kernel!(),
      bias: () => p.bias?.(),
      forward(x, w, b) {
        const flat = x.rank === 2 ? x : tf.reshape(x, [-1, x.shape[x.rank - 1]]);
        let y: tf.Tensor = tf.matMul(flat as tf.Tensor2D, w as tf.Tensor2D);
        if (b) y = tf.add(y, b);
        return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1] as number]);
      },
      transpose(g, w, xShape) {
        const flat = g.rank === 2 ? g : tf.reshape(g, [-1, g.shape[g.rank - 1]]);
        const y = tf.matMul(flat as tf.Tensor2D, w as tf.Tensor2D, false, true);
        return y.shape.length === xShape.length ? y : tf.reshape(y, xShape);
      },
    };
  }
  if (node.kind === 'depthwise-conv2d') {
    // Kept depthwise (kernel [kh, kw, C, m]): the rules' weight modifiers are element-wise, so
    // modifying the compact kernel equals modifying its block-diagonal expansion, at 1/C of the cost
    // (expanded, MobileNetV2's 960-channel layers were 960× the work: most of its LRP time).
    const strides = p.strides ?? [1, 1];
    const padding = p.padding ?? 'valid';
    const dil = p.dilation ?? [1, 1];
    return {
      kind: 'conv2d',
      kernel: () => dilateKernel(p.kernel!() as tf.Tensor4D, dil[0], dil[1]),
      bias: () => p.bias?.(),
      forward(x, w, b) {
        const y = tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, strides, padding);
        return b ? tf.add(y, b) : y;
      },
      transpose(g, w, xShape) {
        return tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: g, filter: w } as unknown as tf.NamedTensorMap,
          { strides, dilations: [1, 1], pad: padding, dimRoundingMode: undefined, inputShape: xShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      },
    };
  }
  if (node.kind === 'conv2d') {
    const strides = p.strides ?? [1, 1];
    const padding = p.padding ?? 'valid';
    const dil = p.dilation ?? [1, 1];
    const kernel = () => dilateKernel(p.kernel!() as tf.Tensor4D, dil[0], dil[1]);
    const ks = p.kernel!().shape as number[];
    return {
      kind: 'conv2d',
      conv: { kernelSize: [ks[0], ks[1]], strides, padding, dilation: dil },
      kernel,
      bias: () => p.bias?.(),
      forward(x, w, b) {
        const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, strides, padding);
        return b ? tf.add(y, b) : y;
      },
      transpose(g, w, xShape) {
        return convTranspose(g as tf.Tensor4D, w as tf.Tensor4D, xShape, strides, padding);
      },
    };
  }
  if (node.kind === 'conv2d-transpose') {
    // kernel [kh, kw, out, in]: y = Cᵀx where C = conv2d(·, w) maps the output's shape to the input's
    const strides = p.strides ?? [1, 1];
    const padding = p.padding ?? 'valid';
    const outShape = (n: number, w: tf.Tensor): [number, number, number, number] => [n, node.shape[0], node.shape[1], w.shape[2] as number];
    return {
      kind: 'conv2d',
      kernel: () => p.kernel!(),
      bias: () => p.bias?.(),
      forward(x, w, b) {
        const y = tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, outShape(x.shape[0], w), strides, padding);
        return b ? tf.add(y, b) : y;
      },
      transpose(g, w) {
        return tf.conv2d(g as tf.Tensor4D, w as tf.Tensor4D, strides, padding);
      },
    };
  }
  throw new UnsupportedLayerError(`node "${node.name}" (${node.layerClass}) is not a linear layer`);
}
