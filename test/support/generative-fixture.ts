/** A small trained MLP classifier and a small trained dense VAE on a MNIST subset, shared by the generative and contrastive tests. */
import * as tf from '@tensorflow/tfjs-core';
import { Classifier } from '../../src/core/classifier.js';
import { loadMnist } from '../../src/data/index.js';
import { buildMlp, trainModel } from '../../src/models/index.js';
import { VAE } from '../../src/generative/vae.js';
import { trainAutoencoder } from '../../src/generative/train.js';

export interface Fixture {
  classifier: Classifier;
  vae: VAE;
  images: tf.Tensor4D;
  labels: Int32Array;
  dispose(): void;
}

export async function makeFixture(opts: { latentDim?: number; n?: number } = {}): Promise<Fixture> {
  const ds = await loadMnist({ split: 'train', limit: opts.n ?? 1500, seed: 3 });
  const model = buildMlp({ hidden: [64], seed: 2 });
  await trainModel(model, ds, { epochs: 4, batchSize: 64, seed: 2, label: 'fixture mlp' });
  const classifier = Classifier.fromModel(model, { name: 'fixture-mlp' });
  const vae = new VAE({ latentDim: opts.latentDim ?? 4, hidden: [128], seed: 5 });
  await trainAutoencoder(vae, ds.images, { epochs: 6, batchSize: 64, seed: 5, quiet: true });
  return {
    classifier, vae, images: ds.images, labels: ds.labels,
    dispose() {
      vae.dispose();
      model.dispose();
      ds.dispose();
    },
  };
}
