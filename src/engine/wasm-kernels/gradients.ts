/**
 * Leaner gradient functions for two ops that every ImageNet classifier runs dozens of times, installed
 * with the replacement wasm kernels (tf.registerGradient is global; the stock configs are put back by
 * uninstallWasmKernels). Both give the same values as tfjs' own, with fewer full-size passes.
 *
 * - Relu6 (MobileNetV2's 35 clipped ReLUs): stock computes mul(dy, cast(mul(lessEqual(x, 6),
 *   step(x)))) — five full-size kernels, the slowest being wasm's scalar-broadcast LessEqual (half of
 *   MobileNetV2's backward time outside the convolutions). On wasm one kernel,
 *   GlasswingRelu6Grad, computes dy · 1[0 < x ≤ 6] with five XNNPACK element-wise passes; other
 *   backends keep the stock formula.
 * - FusedBatchNorm: stock computes x − mean and dy · scale (full size) eagerly whichever inputs need
 *   a gradient, and the input gradient as dy · tile(rsqrt(variance + ε)) · scale (three more full-size
 *   passes). Here every part is computed only when asked for, and the input gradient is one broadcast
 *   multiply of dy by the per-channel factor scale · rsqrt(variance + ε).
 */
import * as tf from '@tensorflow/tfjs-core';
import { callStock, f32, free, type KernelArgs } from './common.js';

export const RELU6_GRAD = 'GlasswingRelu6Grad';

/**
 * dy · 1[0 < x ≤ 6] as five XNNPACK passes: dy · (step(x) − step(x − 6)). x − 6 is exact near 6
 * (Sterbenz) and never rounds to ≤ 0 for x > 6, so the mask is exact; NaN in x gives NaN (step(NaN)
 * is NaN), as the stock mask does. XNNPACK's element-wise passes run at ~0.1–0.2 ns per element, a
 * JS loop over the heap at 1.5–2: this is 2–2.7× faster than the single-loop kernel it replaced.
 */
export function relu6GradKernel({ inputs, backend }: KernelArgs): tf.TensorInfo {
  const { dy, x } = inputs;
  if (tf.util.sizeFromShape(x.shape) === 0) return backend.makeOutput(x.shape, 'float32');
  const six = backend.makeOutput([], 'float32');
  f32(backend, six)[0] = 6;
  const shifted = callStock('Sub', backend, { a: x, b: six });
  const above0 = callStock('Step', backend, { x }, { alpha: 0 });
  const above6 = callStock('Step', backend, { x: shifted }, { alpha: 0 });
  const mask = callStock('Sub', backend, { a: above0, b: above6 });
  const out = callStock('Multiply', backend, { a: dy, b: mask });
  free(backend, six, shifted, above0, above6, mask);
  return out;
}

function wasmKernelActive(): boolean {
  return tf.getBackend() === 'wasm' && tf.getKernel(RELU6_GRAD, 'wasm') != null;
}

function relu6Mask(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  if (wasmKernelActive() && dy.dtype === 'float32' && x.dtype === 'float32' && tf.util.arraysEqual(dy.shape, x.shape)) {
    return tf.engine().runKernel(RELU6_GRAD, { dy, x } as unknown as tf.NamedTensorMap) as tf.Tensor;
  }
  return tf.mul(dy, tf.cast(tf.mul(tf.lessEqual(x, 6), tf.step(x)), 'float32'));
}

const relu6Grad: tf.GradConfig = {
  kernelName: 'Relu6',
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    return { x: () => relu6Mask(dy as tf.Tensor, x) };
  },
};

/** The masked gradient is linear in dy (mask again) and constant in x almost everywhere (0). */
const relu6GradGrad: tf.GradConfig = {
  kernelName: RELU6_GRAD,
  inputsToSave: ['x'],
  gradFunc: (ddy, saved) => {
    const [x] = saved;
    return { dy: () => relu6Mask(ddy as tf.Tensor, x), x: () => tf.zerosLike(x) };
  },
};

const fusedBatchNormGrad: tf.GradConfig = {
  kernelName: 'FusedBatchNorm',
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dyIn, saved, attrs) => {
    const dy = dyIn as tf.Tensor;
    const eps = Number((attrs as { varianceEpsilon: number }).varianceEpsilon);
    const [x, mean, variance, scale] = saved;
    const scaleValue = scale == null ? tf.scalar(1) : scale;
    const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
    const perChannel = mean.rank === 1;
    const reduce = (t: tf.Tensor) => tf.reshape(perChannel ? tf.sum(t, axes) : t, mean.shape);
    const rsqrt = () => tf.rsqrt(tf.add(variance, tf.scalar(eps)));
    return {
      // per channel: one full-size multiply by scale · rsqrt(variance + ε)
      x: () => (perChannel ? tf.mul(dy, tf.mul(rsqrt(), scaleValue)) : tf.mul(tf.mul(dy, rsqrt()), scaleValue)),
      mean: () => reduce(tf.mul(tf.mul(rsqrt(), tf.scalar(-1)), tf.mul(dy, scaleValue))),
      variance: () => {
        const r = rsqrt();
        return reduce(tf.mul(tf.mul(tf.mul(tf.mul(tf.mul(r, r), r), tf.scalar(-0.5)), tf.sub(x, mean)), tf.mul(dy, scaleValue)));
      },
      scale: () => reduce(tf.mul(dy, tf.mul(tf.sub(x, mean), rsqrt()))),
      offset: () => reduce(dy),
    };
  },
};

let saved: Map<string, tf.GradConfig | undefined> | undefined;

/** Register the kernel and the gradient configs (idempotent). */
export function installGradients(backendName = 'wasm'): void {
  if (!tf.getKernel(RELU6_GRAD, backendName)) {
    tf.registerKernel({ kernelName: RELU6_GRAD, backendName, kernelFunc: relu6GradKernel as unknown as tf.KernelFunc });
  }
  if (saved) return;
  saved = new Map(['Relu6', 'FusedBatchNorm'].map((k) => [k, tf.getGradient(k)]));
  for (const g of [relu6Grad, relu6GradGrad, fusedBatchNormGrad]) tf.registerGradient(g);
}

/** Put tfjs' gradient configs back and remove the kernel. */
export function uninstallGradients(backendName = 'wasm'): void {
  if (tf.getKernel(RELU6_GRAD, backendName)) tf.unregisterKernel(RELU6_GRAD, backendName);
  if (!saved) return;
  for (const [, g] of saved) if (g) tf.registerGradient(g);
  saved = undefined;
}

