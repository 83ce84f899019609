import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as os from 'node:os';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { initBackend } from '../src/engine/backend.js';
import {
  VAE, Autoencoder, WGAN, GaussianRBM, trainAutoencoder, attachClassifier, trainWgan, saveGenerator, loadGenerator, invertGenerator, renderContrast,
} from '../src/generative/index.js';
import { ModelLoadError } from '../src/core/errors.js';
import { loadMnist } from '../src/data/index.js';

let images: tf.Tensor4D;
beforeAll(async () => {
  await initBackend();
  const ds = await loadMnist({ split: 'train', limit: 600, seed: 4 });
  images = tf.clone(ds.images);
  ds.dispose();
});
afterAll(() => images.dispose());

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('generative models', () => {
  it('VAE: training lowers the loss and the reconstruction error; seeded training is reproducible', async () => {
    const make = () => new VAE({ latentDim: 4, hidden: [64], seed: 3 });
    const a = make();
    const before = await a.reconstructionError(images);
    const r = await trainAutoencoder(a, images, { epochs: 4, batchSize: 64, seed: 9, quiet: true });
    const after = await a.reconstructionError(images);
    expect(r.epochLosses[3]).toBeLessThan(r.epochLosses[0]);
    expect(after).toBeLessThan(before * 0.8);
    const b = make();
    await trainAutoencoder(b, images, { epochs: 4, batchSize: 64, seed: 9, quiet: true });
    const z = tf.randomNormal([3, 4], 0, 1, 'float32', 1) as tf.Tensor2D;
    const ga = a.decode(z);
    const gb = b.decode(z);
    expect(maxDiff(ga, gb)).toBe(0);
    expect(ga.shape).toEqual([3, 28, 28, 1]);
    expect(tf.min(ga).dataSync()[0]).toBeGreaterThanOrEqual(0);
    tf.dispose([z, ga, gb]);
    a.dispose();
    b.dispose();
  });

  it('attachClassifier: logits are the head applied to the frozen encoder mean; it learns labels carried by the code', async () => {
    const vae = new VAE({ latentDim: 2, hidden: [32], seed: 5 });
    // Labels that are a function of μ(x) alone (which side of the median of μ₁), so a head on μ can learn them.
    const mu = vae.encode(images);
    const m1 = Array.from(tf.tidy(() => tf.squeeze(tf.slice(mu, [0, 0], [-1, 1]))).dataSync());
    const median = [...m1].sort((a, b) => a - b)[m1.length >> 1];
    const labels = Int32Array.from(m1, (v) => (v > median ? 1 : 0));
    const before = vae.params.list().map((v) => v.dataSync().slice());
    const head = await attachClassifier(vae, { images, labels }, { epochs: 40, hidden: [16], quiet: true, seed: 2 });
    expect(head.trainAccuracy).toBeGreaterThan(0.9);
    // The VAE is untouched.
    vae.params.list().forEach((v, i) => expect(Array.from(v.dataSync())).toEqual(Array.from(before[i])));
    // The classifier of images agrees with the head on the codes; its input gradient flows through the encoder.
    const x = tf.slice(images, 0, 8);
    const preds = await head.classifier.predictClasses(x);
    expect(preds.filter((p, i) => p === labels[i]).length).toBeGreaterThanOrEqual(6);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(head.classifier.logits(xx as tf.Tensor4D)))(x);
    expect(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0])).toBeGreaterThan(0);
    tf.dispose([mu, x, g]);
    const gan = new WGAN({ latentDim: 2, variant: 'dense', hidden: [8] });
    await expect(attachClassifier(gan, { images, labels })).rejects.toThrow(/encoder/);
    gan.dispose();
    head.dispose();
    vae.dispose();
  });

  it('VAE reparameterisation: mean + σ·n with seeded noise', () => {
    const mean = tf.tensor2d([[1, 2]]);
    const logVar = tf.tensor2d([[0, Math.log(4)]]);
    const s1 = VAE.reparameterize(mean, logVar, 7);
    const s2 = VAE.reparameterize(mean, logVar, 7);
    const n = tf.randomNormal([1, 2], 0, 1, 'float32', 7);
    const expected = tf.add(mean, tf.mul(tf.tensor2d([[1, 2]]), n));
    expect(maxDiff(s1, s2)).toBe(0);
    expect(maxDiff(s1, expected)).toBeLessThan(1e-6);
    tf.dispose([mean, logVar, s1, s2, n, expected]);
  });

  it('save/load round-trips VAE, conv autoencoder and WGAN exactly; corrupt folders throw ModelLoadError', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gw-gen-'));
    const models = [
      new VAE({ latentDim: 3, hidden: [32], seed: 4 }),
      new Autoencoder({ latentDim: 5, variant: 'conv', filters: [4, 8], convDense: 16, seed: 2 }),
      new WGAN({ latentDim: 6, variant: 'conv', filters: [8, 4], seed: 3 }),
    ];
    models[0].info = { note: 'x' };
    for (const [i, m] of models.entries()) {
      await saveGenerator(m, path.join(dir, String(i)));
      const back = await loadGenerator(path.join(dir, String(i)));
      expect(back.kind).toBe(m.kind);
      const z = tf.randomNormal([2, m.latentDim], 0, 1, 'float32', 5) as tf.Tensor2D;
      const a = m.decode(z);
      const b = back.decode(z);
      expect(maxDiff(a, b)).toBe(0);
      tf.dispose([z, a, b]);
      back.dispose();
    }
    expect((await loadGenerator(path.join(dir, '0'))).info).toEqual({ note: 'x' });
    await fs.writeFile(path.join(dir, '0', 'weights.bin'), Buffer.alloc(12));
    await expect(loadGenerator(path.join(dir, '0'))).rejects.toThrow(ModelLoadError);
    await expect(loadGenerator(path.join(dir, 'missing'))).rejects.toThrow(ModelLoadError);
    models.forEach((m) => m.dispose());
    await fs.rm(dir, { recursive: true });
  });

  it('conv autoencoder forward shapes; WGAN training steps change the critic and keep weights clipped', async () => {
    const ae = new Autoencoder({ latentDim: 5, variant: 'conv', filters: [4, 8], convDense: 16 });
    const x = tf.slice(images, 0, 3);
    const code = ae.encode(x);
    expect(code.shape).toEqual([3, 5]);
    const rec = ae.reconstruct(x);
    expect(rec.shape).toEqual([3, 28, 28, 1]);
    const gan = new WGAN({ latentDim: 8, variant: 'dense', hidden: [32, 64], seed: 1 });
    const r = await trainWgan(gan, images, { iterations: 3, nCritic: 2, batchSize: 16, clip: 0.02, quiet: true });
    expect(r.iterations).toBe(3);
    for (const v of gan.criticVars()) expect(tf.max(tf.abs(v)).dataSync()[0]).toBeLessThanOrEqual(0.02 + 1e-7);
    const s = gan.sample(2, 1);
    expect(s.shape).toEqual([2, 28, 28, 1]);
    tf.dispose([x, code, rec, s]);
    ae.dispose();
    gan.dispose();
  });

  it('Gaussian RBM: free energy matches the formula; CD training raises log p of data relative to noise', async () => {
    const rbm = new GaussianRBM({ hidden: 16, sigma: 0.5, seed: 1 });
    const v = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 3);
    // hand formula with W, b, c
    const W = rbm.params.get('W');
    const f = rbm.freeEnergy(v).arraySync();
    const flat = tf.reshape(v, [2, 784]);
    const expected = tf.tidy(() => tf.sub(tf.div(tf.sum(tf.square(flat), 1), 0.5), tf.sum(tf.softplus(tf.div(tf.matMul(flat, W), 0.25)), 1))).arraySync() as number[];
    expect(f[0]).toBeCloseTo(expected[0], 2);
    expect(f[1]).toBeCloseTo(expected[1], 2);
    await rbm.train(images, { epochs: 3, batchSize: 64, quiet: true, learningRate: 3e-3 });
    const noise = tf.randomUniform([100, 28, 28, 1], 0, 1, 'float32', 11);
    const real = tf.slice(images, 0, 100);
    const lpReal = tf.mean(rbm.logDensity(real)).dataSync()[0];
    const lpNoise = tf.mean(rbm.logDensity(noise)).dataSync()[0];
    expect(lpReal).toBeGreaterThan(lpNoise);
    tf.dispose([v, flat, noise, real]);
    rbm.dispose();
  });

  it('Algorithm 2 inversion recovers a code the generator made; residual is G(z0) − I', async () => {
    const vae = new VAE({ latentDim: 3, hidden: [32], seed: 8 });
    const zTrue = tf.tensor2d([[0.5, -0.3, 0.8], [-1, 0.2, 0.1]]);
    const target = vae.decode(zTrue);
    const inv = await invertGenerator(vae, target, { method: 'optimize', steps: 400, learningRate: 0.05, tolerance: 1e-7, seed: 2 });
    expect(inv.method).toBe('optimize');
    expect(Math.max(...inv.mse)).toBeLessThan(1e-4);
    const g = vae.decode(inv.z0);
    expect(maxDiff(inv.residual, tf.sub(g, target))).toBeLessThan(1e-6);
    tf.dispose([zTrue, target, inv.z0, inv.residual, g]);
    vae.dispose();
  });

  it('renderContrast: red where the difference is positive, blue where negative, grey elsewhere', () => {
    const x = tf.fill([1, 2, 2, 1], 0.5);
    const d = tf.tensor4d([1, -1, 0, 0], [1, 2, 2, 1]);
    const img = renderContrast(x, d);
    expect([img.width, img.height]).toEqual([2, 2]);
    expect(img.data[0]).toBe(255);
    expect(img.data[2]).toBeLessThan(50);
    expect(img.data[6]).toBe(255);
    expect(img.data[4]).toBeLessThan(50);
    expect(img.data[8]).toBe(img.data[9]);
    tf.dispose([x, d]);
  });

  it('does not leak tensors in forward passes', () => {
    const vae = new VAE({ latentDim: 2, hidden: [16] });
    const x = tf.slice(images, 0, 2);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      tf.dispose([vae.reconstruct(x), vae.encode(x), vae.sample(2, i)]);
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    vae.dispose();
  });
});
