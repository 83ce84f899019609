import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { getBenchmark } from '../src/tasks/registry.js';
import { wasmKernelsInstalled } from '../src/engine/wasm-kernels/index.js';
import { GRADIENT_FAMILY } from '../bench/engine.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('engine benchmark', () => {
  it('reports every MNIST case with finite ms/image and leaves the kernels installed', async () => {
    const before = tf.memory().numTensors;
    const r = await getBenchmark('engine').run({ quick: true, resnet: false, repeats: 1 });
    const cases = r.rows.map((row) => `${row.case}@${row.batch}`);
    expect(cases).toEqual([
      'mnist-cnn forward@1', 'mnist-cnn input gradient@1', 'mnist-cnn forward@32', 'mnist-cnn input gradient@32',
      'mnist-cnn Adam training step@64',
    ]);
    for (const row of r.rows) {
      expect(row.kernels).toBe('glasswing');
      expect(Number.isFinite(row.ms_per_image as number)).toBe(true);
      expect(row.ms_per_image as number).toBeGreaterThan(0);
    }
    expect((r.json.figures as unknown[]).length).toBe(r.rows.length);
    expect(wasmKernelsInstalled()).toBe(true);
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 1);
  }, 120_000);

  it('with methods: a finite row per gradient-family method at batch 1 and 32, no leaks', async () => {
    const before = tf.memory().numTensors;
    const r = await getBenchmark('engine').run({ quick: true, resnet: false, repeats: 1, methods: true });
    for (const name of GRADIENT_FAMILY) {
      for (const batch of [1, 32]) {
        const row = r.rows.find((x) => x.case === `mnist-cnn ${name}` && x.batch === batch);
        expect(row, `${name}@${batch}`).toBeDefined();
        expect(Number.isFinite(row!.ms_per_image as number) && (row!.ms_per_image as number) > 0).toBe(true);
        expect(Number.isFinite(row!.cpu_ms_per_image as number) && (row!.cpu_ms_per_image as number) > 0).toBe(true);
      }
    }
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 1);
  }, 180_000);
});
