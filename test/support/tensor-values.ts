import * as tf from '@tensorflow/tfjs-core';

/** Values of a tensor computed in tidy (never return a TypedArray from tf.tidy itself). */
export function valuesOf(f: () => tf.Tensor): Float32Array {
  const t = tf.tidy(f);
  const v = Float32Array.from(t.dataSync());
  t.dispose();
  return v;
}
