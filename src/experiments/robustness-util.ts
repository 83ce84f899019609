/** Shared helpers of the robustness / decision-geometry experiments. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Classifier } from '../core/classifier.js';
import { DataError } from '../core/errors.js';
import type { TaskOptions } from '../tasks/registry.js';
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

export function outDir(options: TaskOptions, name: string): string {
  const dir = typeof options.outDir === 'string' && options.outDir ? options.outDir : path.join('out', 'experiments', name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Write the markdown and the json next to the figures; return their paths. */
export function writeReport(dir: string, name: string, markdown: string, json: Record<string, unknown>): string[] {
  const md = path.join(dir, `${name}.md`);
  const js = path.join(dir, `${name}.json`);
  fs.writeFileSync(md, markdown);
  fs.writeFileSync(js, JSON.stringify(json, null, 2));
  return [md, js];
}

export function markdownTable(rows: Array<Record<string, string | number>>): string {
  if (rows.length === 0) return '';
  const keys = Object.keys(rows[0]);
  const cell = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v);
  return [`| ${keys.join(' | ')} |`, `| ${keys.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${keys.map((k) => cell(r[k])).join(' | ')} |`)].join('\n');
}

/** Train a copy of default model `name` adversarially (one recipe shared by the experiments). */
export async function adversariallyTrainedCopy(name: string, train: Labelled, opts: AdversarialTrainingOptions): Promise<Classifier> {
  const model = await freshDefaultModel(name);
  await adversarialTrain(model, train, opts);
  return Classifier.fromModel(model, { name: `${name}-adv-${opts.scheme ?? 'fgsm'}` });
}

export const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
