/** Fixtures for the counterfactual-geometry and robustness tests: conformance nets and tiny trained nets. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Classifier } from '../../src/core/classifier.js';
import { createRng, gaussian } from '../../src/util/random.js';
import { defaultConformanceDir, readBundle as readConformanceBundle } from '../../src/conformance/index.js';

const CONF = defaultConformanceDir();

export function readBundle(dir: string): Map<string, tf.Tensor> {
  const b = readConformanceBundle(dir);
  return new Map(b.names.map((n) => [n, b.tensor(n)]));
}

export function hasConformance(): boolean {
  return fs.existsSync(path.join(CONF, 'mnist_mlp', 'weights', 'manifest.json'));
}

function setNamed(model: tfl.LayersModel, w: Map<string, tf.Tensor>): void {
  for (const layer of model.layers) {
    const k = w.get(`${layer.name}/kernel`);
    if (k) layer.setWeights([k, w.get(`${layer.name}/bias`)!]);
  }
  tf.dispose([...w.values()]);
}

export function conformanceMlp(): Classifier {
  const m = tfl.sequential({ layers: [
    tfl.layers.flatten({ inputShape: [28, 28, 1] }),
    tfl.layers.dense({ units: 256, activation: 'relu', name: 'fc1' }),
    tfl.layers.dense({ units: 128, activation: 'relu', name: 'fc2' }),
    tfl.layers.dense({ units: 10, name: 'fc3' }),
  ] });
  setNamed(m, readBundle(path.join(CONF, 'mnist_mlp', 'weights')));
  return Classifier.fromModel(m, { name: 'conformance-mlp' });
}

export function conformanceCnn(): Classifier {
  const m = tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 5, padding: 'same', activation: 'relu', name: 'conv1' }),
    tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
    tfl.layers.conv2d({ filters: 64, kernelSize: 5, padding: 'same', activation: 'relu', name: 'conv2' }),
    tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 128, activation: 'relu', name: 'fc1' }),
    tfl.layers.dense({ units: 10, name: 'fc2' }),
  ] });
  setNamed(m, readBundle(path.join(CONF, 'mnist_cnn', 'weights')));
  return Classifier.fromModel(m, { name: 'conformance-cnn' });
}

export function conformanceInput(model: 'mnist_mlp' | 'mnist_cnn'): tf.Tensor4D {
  const b = readBundle(path.join(CONF, model, 'input'));
  const x = b.get('input')! as tf.Tensor4D;
  b.get('target')?.dispose();
  return x;
}

/**
 * A synthetic 3-class problem on 8×8 images: class c is a bright bar (horizontal, vertical,
 * diagonal) plus noise, values in [0, 1]. Easy to learn in a second, with real decision boundaries.
 */
export function toyData(n: number, seed: number): { x: tf.Tensor4D; y: Int32Array } {
  const rng = createRng(seed);
  const data = new Float32Array(n * 64);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    const off = 1 + Math.floor(rng() * 6);
    for (let r = 0; r < 8; r++) {
      for (let q = 0; q < 8; q++) {
        const on = c === 0 ? r === off : c === 1 ? q === off : r === q;
        const v = (on ? 0.8 : 0.1) + 0.08 * gaussian(rng);
        data[i * 64 + r * 8 + q] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return { x: tf.tensor4d(data, [n, 8, 8, 1]), y };
}

/** Train a model on toy data with Adam (dense-only training works on stock wasm). */
export async function trainToy(model: tfl.LayersModel, epochs = 30, seed = 1): Promise<void> {
  const { x, y } = toyData(240, seed);
  const yOh = tf.oneHot(tf.tensor1d(y, 'int32'), 3);
  const opt = tf.train.adam(0.01);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const c = Classifier.fromModel(model);
  for (let e = 0; e < epochs; e++) {
    for (let b = 0; b < 240; b += 60) {
      tf.tidy(() => {
        const xb = tf.slice(x, b, 60);
        const yb = tf.slice(yOh, b, 60);
        const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(yb, c.logits(xb)) as tf.Scalar, vars);
        opt.applyGradients(grads);
      });
    }
  }
  opt.dispose();
  tf.dispose([x, yOh]);
}

/** The toy MLP (8×8×1 → 32 → 16 → 3, ReLU), seeded and untrained. */
export function toyMlpModel(seed = 1): tfl.LayersModel {
  return tfl.sequential({ layers: [
    tfl.layers.flatten({ inputShape: [8, 8, 1] }),
    tfl.layers.dense({ units: 32, activation: 'relu', name: 'h1', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
    tfl.layers.dense({ units: 16, activation: 'relu', name: 'h2', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
    tfl.layers.dense({ units: 3, name: 'out', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }) }),
  ] });
}

/** The toy MLP trained on toyData. */
export async function toyMlp(seed = 1): Promise<Classifier> {
  const m = toyMlpModel(seed);
  await trainToy(m, 30, seed);
  return Classifier.fromModel(m, { name: 'toy-mlp' });
}

/** Small CNN with random (seeded) weights; conv training needs the patched wasm kernels, so it is not trained. */
export function toyCnn(seed = 1): Classifier {
  const m = tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1', kernelInitializer: tfl.initializers.glorotUniform({ seed }), biasInitializer: tfl.initializers.constant({ value: 0.05 }) }),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 16, activation: 'relu', name: 'fc', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
    tfl.layers.dense({ units: 3, name: 'out', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }) }),
  ] });
  return Classifier.fromModel(m, { name: 'toy-cnn' });
}
