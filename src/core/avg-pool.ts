/**
 * Average pooling whose gradient is the true gradient of its forward pass, for Glasswing's graph
 * executor.
 *
 * Why: with 'same' padding TF (and tfjs' forward kernels on cpu and wasm) divide each window by the
 * number of its in-image elements, but tfjs 4.22's AvgPoolGrad (cpu and wasm alike) divides every
 * window's gradient by kh·kw, so the gradient is wrong in the border ring the padding touches
 * (conformance FORMAT.md §6.5: 2–3 % relative error of an Inception-style network's input gradient).
 * Here the op carries its own backward (tf.customGrad): dy is scaled by kh·kw / count before the
 * stock AvgPoolGrad, which makes each window's share dy / count.
 *
 * Scope: this is a node-level gradient used only where Glasswing executes a model's graph
 * (core/graph.ts). No kernel or gradient is registered globally, so a user's own tfjs code calling
 * tf.avgPool keeps tfjs' behaviour (wrong border gradient included) — Glasswing does not change
 * other code silently. 'valid' padding (no padded elements) uses tf.avgPool as is.
 */
import * as tf from '@tensorflow/tfjs-core';

/** In-image element count of every 'same'-padded window, [1, Ho, Wo, 1]. */
export function avgPoolCounts(h: number, w: number, pool: [number, number], strides: [number, number]): tf.Tensor4D {
  return tf.tidy(() => tf.conv2d(tf.ones([1, h, w, 1]) as tf.Tensor4D, tf.ones([pool[0], pool[1], 1, 1]) as tf.Tensor4D, strides, 'same'));
}

/** Whether 'same' padding adds any element to a window on an h×w input. */
function padsAnything(h: number, w: number, pool: [number, number], strides: [number, number]): boolean {
  const ph = Math.max((Math.ceil(h / strides[0]) - 1) * strides[0] + pool[0] - h, 0);
  const pw = Math.max((Math.ceil(w / strides[1]) - 1) * strides[1] + pool[1] - w, 0);
  return ph > 0 || pw > 0;
}

/** tf.avgPool (NHWC) with the exact gradient for 'same' padding. */
export function avgPoolExact(x: tf.Tensor4D, pool: [number, number], strides: [number, number], padding: 'same' | 'valid'): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (padding === 'valid' || !padsAnything(h, w, pool, strides)) return tf.avgPool(x, pool, strides, padding);
  const op = tf.customGrad(((v: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([v]);
    return {
      value: tf.avgPool(v, pool, strides, padding),
      gradFunc: (dy: tf.Tensor4D, [saved]: tf.Tensor[]) => {
        const scale = tf.div(pool[0] * pool[1], avgPoolCounts(h, w, pool, strides));
        return tf.engine().runKernel('AvgPoolGrad', { dy: tf.mul(dy, scale), input: saved }, { filterSize: pool, strides, pad: padding }) as tf.Tensor4D;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (v: tf.Tensor4D) => tf.Tensor4D;
  return op(x);
}
