/** The shipped default models and generators as experiments need them, with errors that say how to make them. */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Classifier } from '../core/classifier.js';
import { DataError } from '../core/errors.js';
import { loadDefaultGenerator } from '../generative/io.js';
import type { Generator } from '../generative/types.js';
import { adversarialTrain, type AdversarialTrainingOptions } from '../robustness/adversarial-training.js';

export interface Labelled {
  images: tf.Tensor4D;
  labels: Int32Array;
  dispose(): void;
}

/** The shipped default model NAME as a classifier, or a DataError saying how to make it. */
export async function requireDefault(name: string): Promise<Classifier> {
  const models = await import('../models/index.js');
  if (!models.hasDefaultModel(name)) {
    throw new DataError(`expected the default model "${name}" (models/${name}/model.json); got none — run \`npm run train:defaults\` first`);
  }
  return models.loadDefaultClassifier(name);
}

export async function hasDefault(name: string): Promise<boolean> {
  const models = await import('../models/index.js');
  return models.hasDefaultModel(name);
}

/** A fresh, trainable copy of default model NAME (weights loaded from disk). */
export async function freshDefaultModel(name: string): Promise<tfl.LayersModel> {
  const models = await import('../models/index.js');
  return models.loadModel(models.defaultModelDir(name));
}

export async function mnistSplit(split: 'train' | 'test', limit: number, seed = 0): Promise<Labelled> {
  const data = await import('../data/index.js');
  return data.loadMnist({ split, limit, seed });
}

/** Train a copy of default model `name` adversarially (one recipe shared by the experiments). */
export async function adversariallyTrainedCopy(name: string, train: Labelled, opts: AdversarialTrainingOptions): Promise<Classifier> {
  const model = await freshDefaultModel(name);
  await adversarialTrain(model, train, opts);
  return Classifier.fromModel(model, { name: `${name}-adv-${opts.scheme ?? 'fgsm'}` });
}

/** The first shipped default classifier among `names`. */
export async function firstDefault(names: string[]): Promise<{ c: Classifier; name: string }> {
  const io = await import('../models/io.js');
  for (const name of names) if (io.hasDefaultModel(name)) return { c: await io.loadDefaultClassifier(name), name };
  throw new DataError(`expected one of the default models ${names.join(', ')} under models/; got none — run \`npm run train:defaults\` first`);
}

export async function generator(name: string): Promise<Generator> {
  try {
    return await loadDefaultGenerator(name);
  } catch (err) {
    throw new DataError(`expected the default generator "${name}" under models/; got ${(err as Error).message} — run \`npm run train:defaults\``);
  }
}

/** The MNIST test split (split seed 0) with the classifier's predictions; the caller disposes `test`. */
export async function predictedTestSplit(c: Classifier): Promise<{ test: Labelled; labels: number[]; preds: number[] }> {
  const { loadMnist } = await import('../data/index.js');
  const test = await loadMnist({ split: 'test', seed: 0 });
  return { test, labels: Array.from(test.labels), preds: await c.predictClasses(test.images) };
}

/** Indices of correctly classified images, every `stride`-th of them (a spread over the classes), at most k. */
export function spreadCorrect(preds: number[], labels: number[], k: number, stride = 50): number[] {
  return preds.flatMap((p, i) => (p === labels[i] ? [i] : [])).filter((_, j) => j % stride === 0).slice(0, k);
}
