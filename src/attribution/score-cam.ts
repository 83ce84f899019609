/**
 * `score-cam` (Wang et al. 2020; tf-keras-vis Scorecam): gradient-free. Each channel A_c of the layer
 * is upsampled to the input size (bilinear, half-pixel centres), min-max normalised to a mask M_c in
 * [0, 1] (M = (A − min)/(max − min + 1e-7), as tf-keras-vis), and the image is masked with it; the
 * channel's weight is the target score of x ⊙ M_c (softmax probability by default, as the
 * authors' code; or the logit). cam = relu(Σ_c w_c A_c), upsampled like grad-cam. The masked inputs
 * are evaluated in batches that fit the memory budget.
 *
 * One forward pass per channel is costly on wide layers (MobileNetV2's 1280); `maxChannels` keeps
 * only the channels with the largest spatial standard deviation per image (tf-keras-vis max_N,
 * "Faster Score-CAM"). extras: channels[i] (indices used) and channelWeights[i] (their weights).
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '../core/registry.js';
import { targetMask } from '../core/target.js';
import { batchSizeFor } from '../engine/memory.js';
import { camLayer, camResult, needsConvGraph } from './cam.js';
import { chunks, oneOf, positiveInt, upsampleBilinear } from './math.js';

export interface ScoreCamOptions {
  layer: string | null;
  /** Score of a masked input: the target's softmax probability (default) or its logit. */
  score: 'probability' | 'logit';
  /** Keep only this many channels per image (largest spatial std); null: all. */
  maxChannels: number | null;
  /** Normalise the channel weights with a softmax over channels (pytorch-grad-cam's variant). */
  channelSoftmax: boolean;
  upsample: 'bilinear' | 'nearest';
  /** Masked images per forward call, at most (fewer when the memory budget says so). */
  batchSize: number;
}

/** Masks [k,H,W,1] of the given channels of one image's activation a [1,h,w,C]. */
export function scoreCamMasks(a: tf.Tensor4D, channels: number[], size: [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const sel = tf.gather(a, tf.tensor1d(channels, 'int32'), 3); // [1,h,w,k]
    const up = upsampleBilinear(sel as tf.Tensor4D, size); // [1,H,W,k]
    const mn = tf.min(up, [1, 2], true);
    const mx = tf.max(up, [1, 2], true);
    const m = tf.div(tf.sub(up, mn), tf.add(tf.sub(mx, mn), 1e-7));
    return tf.transpose(m, [3, 1, 2, 0]) as tf.Tensor4D; // [k,H,W,1]
  });
}

registerMethod<ScoreCamOptions>({
  name: 'score-cam',
  family: 'attribution',
  description: 'Score-CAM: channels weighted by the target score of the input masked with each upsampled channel (tf-keras-vis Scorecam; maxChannels = Faster Score-CAM)',
  signed: true,
  memory: 'forward',
  perImageExtras: ['raw', 'channels', 'channelWeights'],
  parallel: 'images',
  defaults: { layer: null, score: 'probability', maxChannels: null, channelSoftmax: false, upsample: 'bilinear', batchSize: 128 },
  requires: needsConvGraph,
  async run(classifier, x, targets, options, context) {
    const layer = camLayer(classifier, options.layer);
    const upsample = oneOf('upsample', options.upsample, ['bilinear', 'nearest'] as const);
    const score = oneOf('score', options.score, ['probability', 'logit'] as const);
    const maxChannels = options.maxChannels == null ? null : positiveInt('maxChannels', options.maxChannels);
    const bs = batchSizeFor(classifier, 'forward', positiveInt('batchSize', options.batchSize), { shape: x.shape.slice(1) });
    const [n, H, W] = x.shape;
    const split = classifier.split(layer);
    const raws: tf.Tensor4D[] = [];
    const channelsUsed: number[][] = [];
    const channelWeights: number[][] = [];
    try {
      for (let i = 0; i < n; i++) {
        const xi = tf.slice(x, i, 1);
        const a = tf.tidy(() => split.head(xi) as tf.Tensor4D);
        const depth = a.shape[3];
        let chans = Array.from({ length: depth }, (_, c) => c);
        if (maxChannels !== null && maxChannels < depth) {
          const std = tf.tidy(() => tf.sqrt(tf.reshape(tf.moments(a, [0, 1, 2]).variance, [depth])));
          const top = tf.topk(std, maxChannels);
          chans = Array.from(await top.indices.data()).sort((p, q) => p - q);
          tf.dispose([std, top.values, top.indices]);
        }
        const weights: number[] = [];
        const mask = targetMask([targets[i]], classifier.numClasses);
        for (const [c0, k] of chunks(chans.length, bs)) {
          const s = tf.tidy(() => {
            const m = scoreCamMasks(a, chans.slice(c0, c0 + k), [H, W]);
            const logits = classifier.logits(tf.mul(xi, m)); // [k, classes]
            const out = score === 'probability' ? tf.softmax(logits) : logits;
            return tf.sum(tf.mul(out, mask), 1);
          });
          weights.push(...((await s.data()) as Float32Array));
          s.dispose();
          context.progress?.((i + (c0 + k) / chans.length) / n, 'score-cam');
        }
        let w = weights;
        if (options.channelSoftmax) {
          const mx = Math.max(...w);
          const e = w.map((v) => Math.exp(v - mx));
          const z = e.reduce((p, q) => p + q, 0);
          w = e.map((v) => v / z);
        }
        raws.push(tf.tidy(() => {
          const sel = tf.gather(a, tf.tensor1d(chans, 'int32'), 3);
          return tf.relu(tf.sum(tf.mul(sel, tf.tensor1d(w)), 3, true)) as tf.Tensor4D;
        }));
        channelsUsed.push(chans);
        channelWeights.push(w);
        tf.dispose([xi, a, mask]);
      }
    } catch (e) {
      tf.dispose(raws);
      throw e;
    }
    const raw = raws.length === 1 ? raws[0] : tf.concat(raws, 0);
    if (raws.length > 1) tf.dispose(raws);
    return camResult(raw, x, layer, upsample, { channels: channelsUsed, channelWeights });
  },
});
