/**
 * Issue 13's adversarial-accuracy pieces: the Madry MNIST builder, PGD adversarial training, float16
 * weight files, and `experiment madry-accuracy --quick` checked against an independent evaluation of
 * the models it saved.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, Classifier, getExperiment } from '../src/index.js';
import '../src/experiments/index.js';
import { adversarialTrain } from '../src/robustness/adversarial-training.js';
import { fgsm } from '../src/robustness/fgsm.js';
import { runAttack, attacks } from '../src/robustness/attack-runner.js';
import { buildMadryCnn, loadMadryClassifier, MADRY_VARIANTS, madryModelDir } from '../src/models/madry.js';
import { float16Bits, toFloat16, convertFolderToFloat16 } from '../src/models/madry-float16.js';
import { saveModel, loadModel } from '../src/models/io.js';
import { countParams } from '../src/models/architectures.js';
import { loadMnist } from '../src/data/index.js';
import { toyData, trainToy, toyMlpModel } from './support/geometry-fixtures.js';
import { runNode } from './support/run-node.js';

beforeAll(async () => {
  await initBackend();
});

describe('Madry MNIST network', () => {
  it('has Madry\'s layers: conv 32 5×5 → pool → conv 64 5×5 → pool → fc 1024 → fc 10', () => {
    const m = buildMadryCnn({ seed: 1 });
    // 5·5·1·32+32 + 5·5·32·64+64 + 3136·1024+1024 + 1024·10+10
    expect(countParams(m)).toBe(832 + 51264 + 3212288 + 10250);
    const c = Classifier.fromModel(m);
    expect(c.convLayers()).toEqual(['conv1', 'conv2']);
    const x = tf.zeros([2, 28, 28, 1]) as tf.Tensor4D;
    expect(c.logits(x).shape).toEqual([2, 10]);
    expect(() => buildMadryCnn({ dense: 0 })).toThrow(/dense/);
    tf.dispose(x);
    m.dispose();
  });
});

describe('PGD adversarial training (Madry)', () => {
  it('with ε = 0 it is natural training: the same weights as the FGSM scheme with α = 0, ε = 0', async () => {
    const d = toyData(60, 4);
    const a = toyMlpModel(7);
    const b = toyMlpModel(7);
    await adversarialTrain(a, { images: d.x, labels: d.y }, { scheme: 'pgd', epsilon: 0, pgdSteps: 2, pgdStepSize: 0.1, epochs: 1, batchSize: 20, learningRate: 0.01, seed: 3 });
    await adversarialTrain(b, { images: d.x, labels: d.y }, { scheme: 'fgsm', epsilon: 0, alpha: 0, epochs: 1, batchSize: 20, learningRate: 0.01, seed: 3 });
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = b.getWeights().map((w) => Array.from(w.dataSync()));
    for (let i = 0; i < wa.length; i++) for (let j = 0; j < wa[i].length; j++) expect(wa[i][j]).toBeCloseTo(wb[i][j], 5);
    d.x.dispose();
  });

  it('raises PGD accuracy over standard training, decays the step size, and leaks nothing', async () => {
    const train = toyData(240, 11);
    const test = toyData(90, 12);
    const yt = Array.from(test.y);
    const pgd = attacks.pgd({ epsilon: 0.3, stepSize: 0.05, steps: 10, seed: 0 });
    const standard = toyMlpModel(20);
    await trainToy(standard, 30, 11);
    const before = await runAttack(Classifier.fromModel(standard), test.x, yt, pgd);
    const m = toyMlpModel(20);
    await trainToy(m, 10, 11);
    const n0 = tf.memory().numTensors;
    const r = await adversarialTrain(m, { images: train.x, labels: train.y }, {
      scheme: 'pgd', epsilon: 0.3, pgdSteps: 5, pgdStepSize: 0.1, epochs: 12, batchSize: 60, learningRate: 0.01, lrDecay: 0.9, seed: 1,
    });
    expect(tf.memory().numTensors).toBe(n0);
    expect(r.loss.length).toBe(12);
    const after = await runAttack(Classifier.fromModel(m), test.x, yt, pgd);
    expect(after.cleanAccuracy).toBeGreaterThan(0.7);
    expect(after.adversarialAccuracy).toBeGreaterThan(before.adversarialAccuracy + 0.1);
    await expect(adversarialTrain(m, { images: train.x, labels: train.y }, { scheme: 'pgd', pgdSteps: 0 })).rejects.toThrow(/pgdSteps/);
    await expect(adversarialTrain(m, { images: train.x, labels: train.y }, { scheme: 'fgsm', lrDecay: 0 })).rejects.toThrow(/lrDecay/);
    tf.dispose([train.x, test.x]);
  });
});

describe('float16 weight files', () => {
  it('rounds to the nearest binary16, ties to even, with subnormals and overflow', () => {
    expect(float16Bits(1)).toBe(0x3c00);
    expect(float16Bits(-2)).toBe(0xc000);
    expect(float16Bits(65504)).toBe(0x7bff);
    expect(float16Bits(1e6)).toBe(0x7c00);
    expect(float16Bits(2 ** -24)).toBe(0x0001);
    expect(float16Bits(2 ** -26)).toBe(0x0000);
    expect(float16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(float16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(float16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(float16Bits(0.1)).toBe(0x2e66);
  });

  it('tfjs decodes what we encode to within half a unit in the last place', () => {
    const v = new Float32Array([0.1, -0.37, 3.14159, 1e-5, -6e-8, 0.0004, 12.5, -0.99951171875]);
    const bits = toFloat16(v);
    const [t] = Object.values(tf.io.decodeWeights(bits.buffer as ArrayBuffer, [{ name: 'w', shape: [v.length], dtype: 'float32', quantization: { dtype: 'float16' } }]));
    const back = t.dataSync();
    for (let i = 0; i < v.length; i++) {
      const ulp = Math.abs(v[i]) >= 2 ** -14 ? 2 ** (Math.floor(Math.log2(Math.abs(v[i]))) - 10) : 2 ** -24;
      expect(Math.abs(back[i] - v[i])).toBeLessThanOrEqual(ulp / 2 + 1e-12);
    }
    t.dispose();
  });

  it('a converted model folder halves its weights and predicts as before', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-f16-'));
    const m = buildMadryCnn({ filters: [4, 8], dense: 16, seed: 2 });
    await saveModel(m, dir);
    const b32 = fs.statSync(path.join(dir, 'weights.bin')).size;
    const { weightBytes } = convertFolderToFloat16(dir);
    expect(weightBytes).toBe(b32 / 2);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    expect(json.weightsManifest[0].weights.every((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === 'float16')).toBe(true);
    expect(() => convertFolderToFloat16(dir)).toThrow(/unquantized float32/);
    const m16 = await loadModel(dir);
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(m.predict(x) as tf.Tensor, m16.predict(x) as tf.Tensor))).dataSync()[0]);
    expect(d).toBeGreaterThan(0); // the weights did change …
    expect(d).toBeLessThan(5e-3); // … by half-precision rounding only
    tf.dispose(x);
    m.dispose();
    m16.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('experiment madry-accuracy (quick: tiny models trained in-process)', () => {
  it('its table matches an independent evaluation, and attacks only lower the natural model\'s accuracy', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-madry-'));
    const n = 60;
    const before = tf.memory().numTensors;
    const r = await getExperiment('madry-accuracy').run({ quick: true, images: n, trainImages: 20, outDir: out });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.rows.map((row) => row.model)).toEqual(MADRY_VARIANTS.map((v) => `mnist-madry-${v}`));
    const res = (r.json.results as Record<string, { clean: number; fgsm: Record<string, number>; pgd: number; n: number }>);
    // Independent evaluation on the same digits: reload every saved model, FGSM by hand, argmax by hand.
    const test = await loadMnist({ split: 'test', seed: 0, limit: n });
    const labels = Array.from(test.labels);
    for (const v of MADRY_VARIANTS) {
      const c = await loadMadryClassifier(v, path.join(out, 'models'));
      const xa = fgsm(c, test.images, labels, { epsilon: 0.3 });
      const [p0, p1] = await Promise.all([c.predictClasses(test.images), c.predictClasses(xa)]);
      xa.dispose();
      c.model?.dispose();
      const acc = (p: number[]) => p.filter((k, i) => k === labels[i]).length / n;
      expect(res[v].n).toBe(n);
      expect(res[v].clean).toBeCloseTo(acc(p0), 10);
      expect(res[v].fgsm['0.3']).toBeCloseTo(acc(p1), 10);
    }
    test.dispose();
    const nat = res.natural;
    expect(nat.clean).toBeGreaterThan(0.5); // a trained (if tiny) model, so the attack has something to take away
    expect(nat.fgsm['0.1']).toBeLessThan(nat.clean);
    expect(nat.fgsm['0.3']).toBeLessThanOrEqual(nat.fgsm['0.1']);
    expect(nat.pgd).toBeLessThanOrEqual(nat.fgsm['0.3']);
    expect(r.claims?.length).toBe(6);
    for (const c of r.claims!) expect(c.measured).toMatch(/%/);
    for (const f of r.files ?? []) expect(fs.statSync(f).size).toBeGreaterThan(100);
    expect(fs.existsSync(madryModelDir('pgd', path.join(out, 'models')))).toBe(true);
    fs.rmSync(out, { recursive: true, force: true });
  }, 180_000);
});

describe('train-defaults --quick for the Madry models', () => {
  it('trains natural then warm-starts pgd from it, and keeps float16 only within 0.1 pt', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-madry-train-'));
    const script = path.resolve(__dirname, '..', 'dist', 'scripts', 'train-defaults.js');
    const r = await runNode([script, '--quick', '--only', 'mnist-madry-natural,mnist-madry-pgd', '--out', out], { timeout: 240_000 });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    for (const v of ['natural', 'pgd'] as const) {
      const json = JSON.parse(fs.readFileSync(path.join(madryModelDir(v, out), 'model.json'), 'utf8'));
      const meta = json.userDefinedMetadata;
      const f16 = json.weightsManifest[0].weights.every((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === 'float16');
      // The stored form follows the measured difference, and the metadata says which it is.
      expect(meta.weightDtype).toBe(Math.abs(meta.float16.clean - meta.float32.clean) <= 0.001 + 1e-9 ? 'float16' : 'float32');
      expect(f16).toBe(meta.weightDtype === 'float16');
      expect(meta.recipe.warmStart).toBe(v === 'natural' ? null : 'mnist-madry-natural');
      const c = await loadMadryClassifier(v, out);
      expect(c.numClasses).toBe(10);
      c.model?.dispose();
    }
    fs.rmSync(out, { recursive: true, force: true });
  }, 300_000);
});
