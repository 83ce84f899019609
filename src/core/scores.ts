/**
 * Shared differentiation helpers: the score of the target class per image, and its gradient with
 * respect to the input or to an intermediate activation. Every gradient-based method goes through here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from './classifier.js';
import type { RunOptions } from './graph.js';
import { targetMask } from './target.js';
import { batchSizeFor } from '../engine/memory.js';

/** Sum over the batch of each image's target logit (per-image gradients stay independent). */
export function targetScoreSum(logits: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return tf.sum(tf.mul(logits, mask));
}

/** Target logit per image, [N]. */
export function targetScores(logits: tf.Tensor2D, targets: number[]): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.mul(logits, targetMask(targets, logits.shape[1])), 1) as tf.Tensor1D);
}

/**
 * ∂ logit[target] / ∂ x for each image, and the target logits. `run` lets a method replace single
 * ops for this call only (guided backprop, LRP). Computed in batches that fit the memory budget.
 */
export function inputGradient(
  classifier: Classifier,
  x: tf.Tensor,
  targets: number[],
  run: Omit<RunOptions, 'output' | 'until'> = {},
): { grad: tf.Tensor4D; scores: tf.Tensor1D } {
  const n = x.shape[0];
  const bs = batchSizeFor(classifier, 'gradient', n, { shape: x.shape.slice(1) });
  if (bs >= n) return inputGradientOnce(classifier, x, targets, run);
  const grads: tf.Tensor4D[] = [];
  const scores: tf.Tensor1D[] = [];
  for (let s = 0; s < n; s += bs) {
    const c = Math.min(bs, n - s);
    const xs = tf.slice(x, s, c);
    const r = inputGradientOnce(classifier, xs, targets.slice(s, s + c), run);
    xs.dispose();
    grads.push(r.grad);
    scores.push(r.scores);
  }
  const out = { grad: tf.concat(grads, 0), scores: tf.concat(scores, 0) };
  tf.dispose([...grads, ...scores]);
  return out;
}

function inputGradientOnce(
  classifier: Classifier,
  x: tf.Tensor,
  targets: number[],
  run: Omit<RunOptions, 'output' | 'until'>,
): { grad: tf.Tensor4D; scores: tf.Tensor1D } {
  let scores: tf.Tensor1D | undefined;
  const grad = tf.tidy(() => {
    const mask = targetMask(targets, classifier.numClasses);
    const f = (v: tf.Tensor) => {
      const logits = hasOptions(run) ? classifier.forward(v, run).logits : classifier.logits(v);
      // Kept so one forward pass serves both the gradient and the returned scores.
      scores = tf.keep(tf.sum(tf.mul(logits, mask), 1) as tf.Tensor1D);
      return tf.sum(scores);
    };
    return tf.grad(f)(x) as tf.Tensor4D;
  });
  return { grad, scores: scores! };
}

function hasOptions(run: Omit<RunOptions, 'output' | 'until'>): boolean {
  return Boolean(run.override || run.capture || run.substitute);
}
