import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { ModelLoadError, OptionError } from '../src/core/errors.js';
import { buildCnn, buildMlp } from '../src/models/architectures.js';
import {
  saveModel, loadModel, readModelMetadata, loadDefaultClassifier, DEFAULT_MODELS, packageRoot, defaultModelDir,
} from '../src/models/io.js';

let tmp: string;

beforeAll(async () => {
  await initBackend();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'glasswing-models-io-'));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function predictions(m: { predict(x: tf.Tensor): tf.Tensor | tf.Tensor[] }, x: tf.Tensor): Promise<Float32Array> {
  const y = m.predict(x) as tf.Tensor;
  const d = (await y.data()) as Float32Array;
  y.dispose();
  return d;
}

describe('saveModel / loadModel', () => {
  it('round trip gives identical predictions (CNN with bias-free layers and an input transform)', async () => {
    const m = buildCnn({ convs: [{ filters: 4, kernelSize: 3, pool: 2 }, { filters: 6, kernelSize: 3, pool: 2 }], dense: [12], bias: false, transform: { offset: -0.5, scale: 2 }, seed: 9 });
    const dir = path.join(tmp, 'cnn');
    const info = await saveModel(m, dir, { metadata: { testAccuracy: 0.5, classNames: ['a'] } });
    expect(fs.existsSync(path.join(dir, 'model.json'))).toBe(true);
    expect(fs.statSync(path.join(dir, 'weights.bin')).size).toBe(info.weightBytes);
    expect(info.weightBytes).toBe(4 * (3 * 3 * 4 + 3 * 3 * 4 * 6 + 7 * 7 * 6 * 12 + 12 * 10));
    // TF.js layers format: what tfjs' own loaders read.
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    expect(json.weightsManifest[0].weights.map((w: { name: string }) => w.name)).toEqual(['conv1/kernel', 'conv2/kernel', 'fc1/kernel', 'fc2/kernel']);
    expect(readModelMetadata(dir)).toEqual({ testAccuracy: 0.5, classNames: ['a'] });
    // No temporary folders left next to it.
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);

    const loaded = await loadModel(dir);
    expect(loaded.layers.map((l) => l.name)).toEqual(m.layers.map((l) => l.name));
    const x = tf.randomUniform([5, 28, 28, 1], 0, 1, 'float32', 4);
    expect(await predictions(loaded, x)).toEqual(await predictions(m, x));
    expect(Classifier.fromModel(loaded).domain.transform).toEqual({ offset: -0.5, scale: 2, invert: false });
    x.dispose();
    loaded.dispose();
    m.dispose();
  });

  it('overwrites an existing model atomically and loads from a model.json path too', async () => {
    const dir = path.join(tmp, 'mlp');
    const a = buildMlp({ hidden: [8], seed: 1 });
    const b = buildMlp({ hidden: [8], seed: 2 });
    await saveModel(a, dir);
    await saveModel(b, dir);
    await expect(saveModel(a, dir, { overwrite: false })).rejects.toThrow(OptionError);
    const loaded = await loadModel(path.join(dir, 'model.json'));
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 5);
    expect(await predictions(loaded, x)).toEqual(await predictions(b, x));
    expect(await predictions(loaded, x)).not.toEqual(await predictions(a, x));
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    [x, loaded, a, b].forEach((t) => t.dispose());
  });

  it('missing folder, missing model.json, corrupt JSON, wrong JSON, truncated or missing weights → ModelLoadError', async () => {
    await expect(loadModel(path.join(tmp, 'nope'))).rejects.toThrow(/does not exist/);
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    await expect(loadModel(empty)).rejects.toThrow(/no model\.json in/);

    const m = buildMlp({ hidden: [8], seed: 1 });
    const good = path.join(tmp, 'good');
    await saveModel(m, good);
    m.dispose();
    const copy = (name: string) => {
      const d = path.join(tmp, name);
      fs.cpSync(good, d, { recursive: true });
      return d;
    };

    const corrupt = copy('corrupt');
    fs.writeFileSync(path.join(corrupt, 'model.json'), '{"modelTopology": {');
    await expect(loadModel(corrupt)).rejects.toThrow(ModelLoadError);
    await expect(loadModel(corrupt)).rejects.toThrow(/expected valid JSON/);

    const wrong = copy('wrong');
    fs.writeFileSync(path.join(wrong, 'model.json'), '{"hello": 1}');
    await expect(loadModel(wrong)).rejects.toThrow(/modelTopology.*got keys \[hello\]/);

    const truncated = copy('truncated');
    const bin = fs.readFileSync(path.join(truncated, 'weights.bin'));
    fs.writeFileSync(path.join(truncated, 'weights.bin'), bin.subarray(0, bin.length - 100));
    const expected = 4 * (784 * 8 + 8 + 8 * 10 + 10);
    await expect(loadModel(truncated)).rejects.toThrow(new RegExp(`expected ${expected} bytes.*got ${expected - 100} bytes`));

    const noWeights = copy('noweights');
    fs.rmSync(path.join(noWeights, 'weights.bin'));
    await expect(loadModel(noWeights)).rejects.toThrow(/weights\.bin.*no such file/);

    const badTopology = copy('badtopology');
    const j = JSON.parse(fs.readFileSync(path.join(badTopology, 'model.json'), 'utf8'));
    j.modelTopology.config.layers[1].class_name = 'NoSuchLayer';
    fs.writeFileSync(path.join(badTopology, 'model.json'), JSON.stringify(j));
    await expect(loadModel(badTopology)).rejects.toThrow(ModelLoadError);
  });

  it('save and load release every tensor they make', async () => {
    const m = buildMlp({ hidden: [8], seed: 3 });
    const dir = path.join(tmp, 'leak');
    await saveModel(m, dir);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await saveModel(m, dir);
      const l = await loadModel(dir);
      l.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});

describe('default models registry', () => {
  it('lists the five defaults and resolves their folder under the package root', () => {
    expect(DEFAULT_MODELS.map((m) => m.name)).toEqual(['mnist-cnn', 'mnist-mlp', 'mnist-cnn-nobias', 'fashion-cnn', 'mnist-cnn-biased']);
    expect(fs.existsSync(path.join(packageRoot(), 'package.json'))).toBe(true);
    expect(defaultModelDir('mnist-cnn')).toBe(path.join(packageRoot(), 'models', 'mnist-cnn'));
    expect(DEFAULT_MODELS.find((m) => m.name === 'fashion-cnn')!.classNames[9]).toBe('Ankle boot');
  });

  it('unknown default name → OptionError listing the names', async () => {
    await expect(loadDefaultClassifier('mnist-resnet')).rejects.toThrow(/expected a default model name \(mnist-cnn, mnist-mlp/);
  });

  it('a missing default model says how to train it', async () => {
    const saved = process.env.GLASSWING_MODELS_DIR;
    process.env.GLASSWING_MODELS_DIR = path.join(tmp, 'no-models-here');
    try {
      await expect(loadDefaultClassifier('mnist-mlp')).rejects.toThrow(/train:defaults -- --only mnist-mlp/);
    } finally {
      if (saved === undefined) delete process.env.GLASSWING_MODELS_DIR;
      else process.env.GLASSWING_MODELS_DIR = saved;
    }
  });
});
