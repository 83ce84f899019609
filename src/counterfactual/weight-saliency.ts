/**
 * `weight-saliency` (Simonyan et al. 2014; seed 002 Fig. 10): the column of the local linear form's
 * W for the target class — for a ReLU network the exact weights the input is multiplied by in its
 * linear region (x·W_c + B_c = y_c). With `compareTo` it is the column of the plane between the
 * target and another class (W_c − W_q), the direction GeoSal moves along.
 *
 * extras: bias [N] (B_c, or B_c − B_q), value [N] (y_c, or y_c − y_q).
 */
import * as tf from '@tensorflow/tfjs-core';
import { OptionError } from '../core/errors.js';
import { registerMethod } from '../core/registry.js';
import { combinationGradients } from './local-linear.js';
import { batchSizeFor } from '../engine/memory.js';

registerMethod({
  name: 'weight-saliency',
  family: 'counterfactual',
  description: "column of the exact local linear form x·W + B for the target class (seed 002's weight-based saliency)",
  signed: true,
  defaults: { compareTo: -1 as number },
  run(classifier, x, targets, options) {
    const k = classifier.numClasses;
    const q = Number(options.compareTo);
    if (q >= 0 && (!Number.isInteger(q) || q >= k)) throw new OptionError(`expected compareTo in 0..${k - 1} (or -1 for none); got ${options.compareTo}`);
    const rows = targets.map((t) => {
      const row = new Array(k).fill(0);
      row[t] += 1;
      if (q >= 0) row[q] -= 1;
      return row;
    });
    // One row per image, in batches that fit the memory budget.
    const n = x.shape[0];
    const bs = batchSizeFor(classifier, 'gradient', n);
    return tf.tidy(() => {
      const g: tf.Tensor[] = [];
      const v: tf.Tensor[] = [];
      for (let s = 0; s < n; s += bs) {
        const c = Math.min(bs, n - s);
        const { grads, values, outputs } = combinationGradients((t) => classifier.logits(t), c === n ? x : tf.slice(x, s, c), tf.tensor2d(rows.slice(s, s + c)));
        outputs.dispose();
        g.push(grads);
        v.push(values);
      }
      const grads = g.length === 1 ? g[0] : tf.concat(g, 0);
      // combinationGradients keeps its values out of the tidy: the chunks' are released once joined.
      const values = v.length === 1 ? v[0] : tf.concat(v, 0);
      if (v.length > 1) tf.dispose(v);
      const bias = tf.sub(values, tf.sum(tf.reshape(tf.mul(grads, x), [n, -1]), 1));
      return { attribution: grads as tf.Tensor4D, extras: { bias, value: values } };
    });
  },
});
