import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { initBackend } from '../src/index.js';
import '../src/attribution/index.js';
import { defaultConformanceDir, runConformance } from '../src/conformance/index.js';
import { clearWeightCache } from '../src/attribution/propagation/index.js';

const ROOT = defaultConformanceDir();
const LRP = ['lrp_epsilon', 'lrp_zplus', 'lrp_alpha2beta1'];

describe('propagation: Zennit conformance (FORMAT.md §4)', () => {
  beforeAll(async () => {
    await initBackend();
  });
  for (const model of ['mnist_cnn', 'mnist_mlp']) {
    it.skipIf(!fs.existsSync(path.join(ROOT, model)))(`${model}: lrp_epsilon, lrp_zplus, lrp_alpha2beta1 within 1e-4 relative L2 per image`, async () => {
      const before = tf.memory().numTensors;
      const r = await runConformance(path.join(ROOT, model), { only: LRP, tolerance: 1e-4 });
      for (const row of r.rows) console.log(model, row.method, row.relL2.toExponential(2), `${row.ms.toFixed(0)} ms`);
      expect(r.rows.map((row) => row.method).sort()).toEqual([...LRP].sort());
      for (const row of r.rows) expect(row.relL2, row.method).toBeLessThanOrEqual(1e-4);
      clearWeightCache(); // the fixture model is disposed; drop its cached derived weights
      expect(tf.memory().numTensors).toBe(before);
    }, 60_000);
  }
});
