/**
 * The result of an explanation method: the attribution map (NHWC, same shape as the input, sign
 * kept — normalisation happens only in render/) plus its provenance.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface Explanation {
  /** Registered method name. */
  method: string;
  /** Attribution, NHWC, the input's shape; signed. */
  attribution: tf.Tensor4D;
  /** Options the method ran with, defaults filled in. */
  options: Record<string, unknown>;
  /** Explained class per image. */
  target: number[];
  /** Logits of the input, [N][K]. */
  logits: number[][];
  /** Logits of a modified input, where the method makes one (counterfactuals, attacks). */
  logitsAfter?: number[][];
  /** Wall time of the method in milliseconds (whole batch). */
  timeMs: number;
  /** Method-specific results: completeness error, masks, paths, latent codes… Tensors here are owned by the Explanation. */
  extras: Record<string, unknown>;
  /** Release every tensor the Explanation holds. */
  dispose(): void;
}

/** Dispose the attribution and every tensor found in extras. */
export function disposeExplanation(e: Pick<Explanation, 'attribution' | 'extras'>): void {
  const seen = new Set<unknown>();
  const visit = (v: unknown) => {
    if (v == null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v instanceof tf.Tensor) {
      if (!v.isDisposed) v.dispose();
      return;
    }
    if (ArrayBuffer.isView(v)) return;
    for (const item of Array.isArray(v) ? v : Object.values(v)) visit(item);
  };
  visit(e.attribution);
  visit(e.extras);
}
