/**
 * Every shipped default model (models/NAME/) loads as a Classifier and reaches its accuracy bar on
 * its seeded test split. A model not yet trained is skipped with a message saying how to train it.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { loadMnist, loadFashionMnist, biasedMnist, type Dataset } from '../src/data/index.js';
import { DEFAULT_MODELS, hasDefaultModel, loadDefaultClassifier, readModelMetadata, defaultModelDir } from '../src/models/io.js';
import { evaluate } from '../src/models/evaluate.js';

const sets = new Map<string, Dataset>();

async function testSet(name: string): Promise<Dataset> {
  if (!sets.has(name)) {
    if (name === 'fashion') sets.set(name, await loadFashionMnist({ split: 'test' }));
    else if (name === 'mnist') sets.set(name, await loadMnist({ split: 'test' }));
    else sets.set(name, biasedMnist(await testSet('mnist')));
  }
  return sets.get(name)!;
}

beforeAll(async () => {
  await initBackend();
});

afterAll(() => {
  for (const d of sets.values()) d.dispose();
});

describe('shipped default models', () => {
  for (const info of DEFAULT_MODELS) {
    const present = hasDefaultModel(info.name);
    const title = `${info.name} loads and reaches ${(info.accuracyBar * 100).toFixed(1)} % on its test split`;
    if (!present) {
      it.skip(`${title} — SKIPPED: models/${info.name}/ is missing (run \`npm run build && node dist/scripts/train-defaults.js --only ${info.name}\`)`, () => {});
      continue;
    }
    it(title, async () => {
      const c = await loadDefaultClassifier(info.name);
      expect(c.inputShape).toEqual([28, 28, 1]);
      expect(c.numClasses).toBe(10);
      expect(c.classNames).toEqual(info.classNames);
      expect(c.strippedSoftmax).toBe(false);
      if (info.name === 'mnist-cnn-nobias') {
        expect(c.model!.weights.some((w) => w.originalName.endsWith('/bias'))).toBe(false);
        expect(c.domain.transform).toEqual({ offset: -0.5, scale: 1, invert: false });
      }
      const ds = await testSet(info.name === 'mnist-cnn-biased' ? 'biased-mnist' : info.dataset);
      const before = tf.memory().numTensors;
      const r = await evaluate(c, ds);
      expect(tf.memory().numTensors).toBe(before);
      expect(r.count).toBe(info.dataset === 'fashion' ? 10_000 : 1_500);
      expect(r.accuracy).toBeGreaterThanOrEqual(info.accuracyBar);
      // The accuracy recorded in the model's metadata is the one measured here.
      const meta = readModelMetadata(defaultModelDir(info.name));
      expect(meta.testAccuracy as number).toBeCloseTo(r.accuracy, 3);
      c.model!.dispose();
    });
  }
});
