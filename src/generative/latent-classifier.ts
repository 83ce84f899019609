/**
 * A classifier "attached to the variational auto encoder and trained without updating the weights of
 * the VAE" (seed 000 §3.1): the frozen encoder's posterior mean μ(x) feeds a small MLP head, and the
 * pair is wrapped as a Classifier so every method can explain it. This is the classifier seed 000's
 * LSE figures were measured on; its decisions live in the generator's latent space, which is why a
 * small latent step ε changes them (a pixel-space CNN needs larger steps; docs/contrastive.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Classifier } from '../core/classifier.js';
import { OptionError, DataError } from '../core/errors.js';
import { ParamStore, dense, makeDense } from './params.js';
import type { Generator } from './types.js';
import { EncoderDecoder } from './autoencoder.js';
import type { Graph, GraphNode } from '../core/graph.js';
import { createRng, shuffle } from '../util/random.js';
import { progress } from '../util/progress.js';

export interface LatentClassifierOptions {
  /** Hidden widths of the head on μ(x). Default [64]. */
  hidden?: number[];
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  quiet?: boolean;
  name?: string;
}

export interface LatentClassifier {
  classifier: Classifier;
  /** Accuracy of the head on the training images after training. */
  trainAccuracy: number;
  trainSeconds: number;
  /** Frees the head's weights (not the generator's). */
  dispose(): void;
}

type Encoding = Generator & { encode(x: tf.Tensor4D): tf.Tensor2D };

function encodeAll(gen: Encoding, images: tf.Tensor4D, batch = 500): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (let i = 0; i < images.shape[0]; i += batch) {
    const n = Math.min(batch, images.shape[0] - i);
    parts.push(tf.tidy(() => gen.encode(tf.slice(images, i, n))));
  }
  const all = tf.concat(parts);
  tf.dispose(parts);
  return all;
}

function headLogits(p: ParamStore, depth: number, z: tf.Tensor2D): tf.Tensor2D {
  let a = z;
  for (let i = 0; i < depth; i++) a = dense(p, `h${i}`, a, 'relu');
  return dense(p, 'out', a);
}

/**
 * The latent classifier as a node graph — input → the encoder's trunk → its code head (μ for a VAE)
 * → the MLP head — when the generator is one of Glasswing's encoder-decoders: the very ops of
 * `headLogits(p, depth, gen.encode(x))` in the same order (so the same logits), with weights read from
 * the generator's and the head's parameter stores on every call. A graph classifier, unlike a
 * function classifier, can be sent to the worker pool's threads (docs/parallel.md) and walked layer
 * by layer (Grad-CAM, LRP, …).
 */
function latentGraph(gen: EncoderDecoder, head: ParamStore, hidden: number[], numClasses: number): Graph {
  const { inputShape, variant, hidden: encHidden, filters, convDense, latentDim } = gen.config;
  const nodes: GraphNode[] = [{ name: 'input', kind: 'input', layerName: 'input', layerClass: 'InputLayer', inputs: [], params: {}, shape: [...inputShape] }];
  let last = 'input';
  const add = (n: Omit<GraphNode, 'inputs' | 'layerName'>) => {
    nodes.push({ ...n, layerName: n.name, inputs: [last] });
    last = n.name;
  };
  const dense = (name: string, store: ParamStore, key: string, units: number, relu: boolean) => {
    add({ name, kind: 'dense', layerClass: 'Dense', params: { kernel: () => store.get(`${key}/w`), bias: () => store.get(`${key}/b`) }, shape: [units] });
    if (relu) add({ name: `${name}/relu`, kind: 'activation', layerClass: 'Activation', params: { activation: 'relu' }, shape: [units] });
  };
  const flatten = (size: number) => add({ name: 'encoder/flatten', kind: 'flatten', layerClass: 'Flatten', params: {}, shape: [size] });
  const g = gen.params;
  if (variant === 'dense') {
    flatten(inputShape[0] * inputShape[1] * inputShape[2]);
    encHidden.forEach((u, i) => dense(`encoder/enc${i}`, g, `enc${i}`, u, true));
  } else {
    let [h, w] = inputShape;
    [0, 1].forEach((i) => {
      [h, w] = [Math.ceil(h / 2), Math.ceil(w / 2)];
      const name = `encoder/encConv${i}`;
      add({ name, kind: 'conv2d', layerClass: 'Conv2D', params: { kernel: () => g.get(`encConv${i}/w`), bias: () => g.get(`encConv${i}/b`), strides: [2, 2], padding: 'same', dilation: [1, 1] }, shape: [h, w, filters[i]] });
      add({ name: `${name}/relu`, kind: 'activation', layerClass: 'Activation', params: { activation: 'relu' }, shape: [h, w, filters[i]] });
    });
    flatten(h * w * filters[1]);
    dense('encoder/encDense', g, 'encDense', convDense, true);
  }
  dense(gen.kind === 'vae' ? 'encoder/mu' : 'encoder/code', g, gen.kind === 'vae' ? 'mu' : 'code', latentDim, false);
  hidden.forEach((u, i) => dense(`head/h${i}`, head, `h${i}`, u, true));
  dense('head/out', head, 'out', numClasses, false);
  return { nodes, byName: new Map(nodes.map((n) => [n.name, n])), output: last };
}

/**
 * Train an MLP head on the frozen encoder's μ(x) and return it as a Classifier of images (a graph
 * classifier for Glasswing's VAEs and autoencoders, else a function classifier).
 *
 * @example
 * const vae = await loadGenerator('mnist-vae-2d');
 * const { classifier } = await attachClassifier(vae, await loadMnist({ split: 'train' }));
 * const e = await explain('lse', classifier, x, { target: trueLabels, options: { generator: vae } });
 */
export async function attachClassifier(
  gen: Generator,
  data: { images: tf.Tensor4D; labels: Int32Array; classNames?: string[] },
  opts: LatentClassifierOptions = {},
): Promise<LatentClassifier> {
  if (!gen.encode) throw new OptionError(`attachClassifier needs a generator with an encoder (a VAE or autoencoder); "${gen.name}" has none`);
  const enc = gen as Encoding;
  const n = data.images.shape[0];
  if (n === 0 || data.labels.length !== n) throw new DataError(`expected as many labels as images (> 0); got ${data.labels.length} labels for ${n} images`);
  const numClasses = Math.max(...data.labels) + 1;
  const hidden = opts.hidden ?? [64];
  const epochs = opts.epochs ?? 20;
  const batchSize = opts.batchSize ?? 128;
  const rng = createRng(opts.seed ?? 1);
  const p = new ParamStore(opts.seed ?? 1);
  let prev = gen.latentDim;
  hidden.forEach((u, i) => {
    makeDense(p, `h${i}`, prev, u);
    prev = u;
  });
  makeDense(p, 'out', prev, numClasses);

  // The encoder is frozen, so its codes are computed once.
  const codes = encodeAll(enc, data.images);
  const onehot = tf.tidy(() => tf.oneHot(tf.tensor1d(data.labels, 'int32'), numClasses));
  const optimizer = tf.train.adam(opts.learningRate ?? 1e-3);
  const perEpoch = Math.ceil(n / batchSize);
  const bar = opts.quiet ? undefined : progress(opts.name ?? `head on ${gen.name}`, epochs * perEpoch);
  const start = performance.now();
  for (let e = 0; e < epochs; e++) {
    const order = shuffle(Array.from({ length: n }, (_, i) => i), rng);
    for (let b = 0; b < perEpoch; b++) {
      const idx = tf.tensor1d(order.slice(b * batchSize, (b + 1) * batchSize), 'int32');
      const z = tf.gather(codes, idx) as tf.Tensor2D;
      const y = tf.gather(onehot, idx);
      optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, headLogits(p, hidden.length, z)) as tf.Scalar, false, p.list());
      tf.dispose([idx, z, y]);
      bar?.tick();
    }
  }
  bar?.done();
  optimizer.dispose();
  const correct = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(headLogits(p, hidden.length, codes), 1), tf.argMax(onehot, 1)), 'float32')));
  const trainAccuracy = (await correct.data())[0] / n;
  tf.dispose([codes, onehot, correct]);
  const name = opts.name ?? `${gen.name}+head`;
  const graph = gen instanceof EncoderDecoder ? latentGraph(gen, p, hidden, numClasses) : undefined;
  const classifier = graph
    ? Classifier.fromGraph(graph, { name, classNames: data.classNames })
    : Classifier.fromFunction((x) => headLogits(p, hidden.length, enc.encode(x)), { name, inputShape: gen.outputShape, numClasses, classNames: data.classNames });
  return { classifier, trainAccuracy, trainSeconds: (performance.now() - start) / 1000, dispose: () => p.dispose() };
}
