/**
 * Shared differentiation helpers: the score of the target class per image, and its gradient with
 * respect to the input or to an intermediate activation. Every gradient-based method goes through here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from './classifier.js';
import type { RunOptions } from './graph.js';
import { targetMask } from './target.js';

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
 * ops for this call only (guided backprop, LRP).
 */
export function inputGradient(
  classifier: Classifier,
  x: tf.Tensor,
  targets: number[],
  run: Omit<RunOptions, 'output' | 'until'> = {},
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
