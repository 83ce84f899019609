import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, getExperiment, hasDefaultModel } from '../src/index.js';
import { hasDefaultGenerator, loadDefaultGenerator } from '../src/generative/io.js';
import '../src/experiments/index.js';

const GENERATORS = ['mnist-vae-2d', 'mnist-vae-10d', 'mnist-vae-conv-10d', 'mnist-gan', 'mnist-dcgan'];
beforeAll(async () => {
  await initBackend();
  // Shipped generators are loaded once per process and kept: load them before counting tensors.
  for (const g of GENERATORS) if (hasDefaultGenerator(g)) await loadDefaultGenerator(g);
});

const pctOf = (s: string | number) => Number(String(s).replace('%', '').trim()) / 100;
const shipped = hasDefaultModel('mnist-cnn') && hasDefaultGenerator('mnist-vae-2d') && hasDefaultGenerator('mnist-vae-10d');

describe.skipIf(!shipped)('contrastive experiments (quick, on the shipped models)', () => {
  it('lse: both classifiers per VAE, rates in [0, 1], ‖ε‖ > 0 where searches succeed, the head on μ(x) learned its labels', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-lse-'));
    const before = tf.memory().numTensors;
    const r = await getExperiment('lse').run({ quick: true, outDir: dir });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.rows.map((row) => `${row.generator}/${row.classifier === 'mnist-cnn' ? 'cnn' : 'head'}/${row.preset}`)).toEqual([
      'mnist-vae-2d/cnn/seed', 'mnist-vae-2d/cnn/glasswing', 'mnist-vae-2d/head/seed', 'mnist-vae-2d/head/glasswing',
      'mnist-vae-10d/cnn/seed', 'mnist-vae-10d/cnn/glasswing', 'mnist-vae-10d/head/seed', 'mnist-vae-10d/head/glasswing',
    ]);
    // The same descent: the default preset's bisected ε is never longer than the seed's.
    for (let i = 0; i < r.rows.length; i += 2) {
      expect(r.rows[i + 1]['LSE success']).toBe(r.rows[i]['LSE success']);
      if (pctOf(r.rows[i]['LSE success']) > 0) expect(Number(r.rows[i + 1]['LSE mean ‖ε‖'])).toBeLessThanOrEqual(Number(r.rows[i]['LSE mean ‖ε‖']) + 1e-9);
    }
    // Seed claim rows for the results page: success and ‖ε‖ per VAE, with the seed's figures.
    expect(r.claims?.map((c) => c.seedFigure)).toEqual(expect.arrayContaining(['0.217', '0.10']));
    for (const row of r.rows) {
      const rate = pctOf(row['LSE success']);
      expect(rate).toBeGreaterThanOrEqual(0);
      expect(rate).toBeLessThanOrEqual(1);
      if (rate > 0) expect(Number(row['LSE mean ‖ε‖'])).toBeGreaterThan(0);
    }
    // A head on the 10-D code is far better than chance even in quick mode (1000 training digits).
    expect(pctOf(r.rows[6]['test accuracy'])).toBeGreaterThan(0.5);
    for (const f of r.files ?? []) expect(fs.statSync(f).size).toBeGreaterThan(100);
  });

  it('cdeepex-generators: a row per generator and method, cosine consistency in [−1, 1] for GANs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-cgen-'));
    const before = tf.memory().numTensors;
    const r = await getExperiment('cdeepex-generators').run({ quick: true, images: 2, outDir: dir });
    expect(tf.memory().numTensors).toBe(before);
    const gens = (r.json.generators as string[]);
    expect(r.rows.length).toBe(2 * gens.length);
    for (const row of r.rows) {
      expect(Number(row['G(z0) vs I, MSE/pixel'])).toBeGreaterThan(0);
      const cons = row['consistency across starts (cosine)'];
      if (String(row['z0 from']).startsWith('Algorithm 2')) {
        expect(Number(cons)).toBeGreaterThanOrEqual(-1);
        expect(Number(cons)).toBeLessThanOrEqual(1);
      } else expect(cons).toBe('—');
    }
    for (const f of r.files ?? []) expect(fs.statSync(f).size).toBeGreaterThan(100);
  });
});
