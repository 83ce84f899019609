import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, getExperiment, getBenchmark, hasDefaultModel } from '../src/index.js';
import '../src/experiments/index.js';
import '../bench/index.js';

beforeAll(async () => {
  await initBackend();
});

// The experiments need the shipped default models; they are trained once per release.
describe.skipIf(!hasDefaultModel('mnist-mlp'))('robustness experiments (quick, on the shipped mnist-mlp)', () => {
  it('geosal-figures writes its figures and a table whose numbers are sane', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-geosal-'));
    const before = tf.memory().numTensors;
    const r = await getExperiment('geosal-figures').run({ quick: true, images: 3, outDir: dir });
    expect(tf.memory().numTensors).toBe(before);
    for (const f of r.files ?? []) expect(fs.statSync(f).size).toBeGreaterThan(100);
    expect(r.rows.length).toBe(4);
    for (const row of r.rows) expect(Number(row['mean L2'])).toBeGreaterThan(0);
    const t4 = r.json.test4 as { comparisons: number[]; closestL2: number };
    expect(t4.comparisons.length).toBe(9);
    expect(t4.closestL2).toBeGreaterThan(0);
  });

  it('deepfool-rho reports ρ_adv in a plausible range for the MLP', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-rho-'));
    const before = tf.memory().numTensors;
    const r = await getExperiment('deepfool-rho').run({ quick: true, images: 6, outDir: dir });
    expect(tf.memory().numTensors).toBe(before);
    const mlp = r.rows.find((row) => row.model === 'mnist-mlp')!;
    expect(Number(mlp['DeepFool ρ_adv'])).toBeGreaterThan(0.01);
    expect(Number(mlp['DeepFool ρ_adv'])).toBeLessThan(0.5);
    expect(Number(mlp['DeepFool fooled'])).toBe(1);
  });

  it('bench robustness is registered', () => {
    expect(getBenchmark('robustness').name).toBe('robustness');
  });
});
