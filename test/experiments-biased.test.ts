import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, getExperiment, hasDefaultModel } from '../src/index.js';
import { hasDefaultGenerator, loadDefaultGenerator } from '../src/generative/io.js';
import { squareMassShare, squarePointingHit, squarePeaks, pixelMaps } from '../src/experiments/biased-metrics.js';
import { DataError } from '../src/core/errors.js';
import '../src/experiments/index.js';

/** The 6×6 top-left square on a 28×28 grid, as the experiment's mask. */
const inside = Uint8Array.from({ length: 784 }, (_, p) => (Math.floor(p / 28) < 6 && p % 28 < 6 ? 1 : 0));
const at = (r: number, c: number) => r * 28 + c;

describe('square scores (hand-computed cases)', () => {
  it('all mass inside the square: share 1, pointing hit', () => {
    const m = new Float32Array(784);
    m[at(2, 3)] = 0.5;
    m[at(5, 5)] = -2; // signed: |−2| is the largest
    expect(squareMassShare(m, inside)).toBe(1);
    expect(squarePointingHit(m, inside)).toBe(true);
  });

  it('a uniform map: share = area 36/784; its argmax tie breaks to pixel 0, inside the top-left square', () => {
    const m = new Float32Array(784).fill(0.3);
    expect(squareMassShare(m, inside)).toBeCloseTo(36 / 784, 6);
    // The first maximal pixel is (0, 0), inside a top-left square: a constant map is a hit here,
    // which is why the experiment states the uniform baseline as the area (chance), not as this.
    expect(squarePointingHit(m, inside)).toBe(true);
  });

  it('an all-zero map explains nothing: share 0, miss', () => {
    const m = new Float32Array(784);
    expect(squareMassShare(m, inside)).toBe(0);
    expect(squarePointingHit(m, inside)).toBe(false);
  });

  it('most mass inside but the peak outside: share 0.75, miss; |negative| counts', () => {
    const m = new Float32Array(784);
    for (let r = 0; r < 6; r++) for (let c = 0; c < 6; c++) m[at(r, c)] = -1 / 12; // Σ|·| = 3 inside
    m[at(20, 20)] = 1; // Σ|·| = 1 outside, and the single largest magnitude
    expect(squareMassShare(m, inside)).toBeCloseTo(0.75, 6);
    expect(squarePointingHit(m, inside)).toBe(false);
    const pk = squarePeaks(m, inside);
    expect(pk.inside).toBeCloseTo(1 / 12, 6);
    expect(pk.outside).toBe(1);
  });

  it('pixelMaps sums channels per pixel and checks sizes; mismatched mask throws', () => {
    // 2 images, 2 pixels, 3 channels.
    const v = [1, 2, 3, 0, 0, 1, -1, -1, -1, 4, 0, 0];
    const maps = pixelMaps(v, 2, 2, 3);
    expect(Array.from(maps[0])).toEqual([6, 1]);
    expect(Array.from(maps[1])).toEqual([-3, 4]);
    expect(() => pixelMaps(v, 2, 3, 3)).toThrow(DataError);
    expect(() => squareMassShare(new Float32Array(10), inside)).toThrow(DataError);
  });
});

const pctOf = (s: string | number) => Number(String(s).replace('%', '').trim()) / 100;
const shipped = hasDefaultModel('mnist-cnn-biased') && hasDefaultGenerator('mnist-vae-10d-biased');

describe.skipIf(!shipped)('cdeepex-bias --quick on the shipped biased net', () => {
  beforeAll(async () => {
    await initBackend();
    // Shipped generators are loaded once per process and kept: load them before counting tensors.
    for (const g of ['mnist-vae-10d-biased', 'mnist-dcgan-biased']) if (hasDefaultGenerator(g)) await loadDefaultGenerator(g);
  });

  it('rows per generator and method plus the uniform baseline, scores in [0, 1], seed claims, figures, no leaks', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-bias-'));
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    const r = await getExperiment('cdeepex-bias').run({ quick: true, outDir: dir });
    const secs = (performance.now() - t0) / 1000;
    expect(tf.memory().numTensors).toBe(before);
    const gens = ['mnist-vae-10d-biased', 'mnist-dcgan-biased'].filter(hasDefaultGenerator);
    const methods = r.rows.map((row) => String(row.method));
    expect(methods.slice(0, 2 * gens.length)).toEqual(gens.flatMap((g) => [`CDeepEx, ${g}`, `xGEMs, ${g}`]));
    expect(methods).toContain('contrast Grad-CAM');
    expect(methods[methods.length - 1]).toMatch(/^uniform/);
    const uniform = r.rows[r.rows.length - 1];
    expect(pctOf(uniform['mass in square'])).toBeCloseTo(36 / 784, 3);
    for (const row of r.rows) {
      for (const k of ['mass in square', 'pointing game']) {
        expect(pctOf(row[k])).toBeGreaterThanOrEqual(0);
        expect(pctOf(row[k])).toBeLessThanOrEqual(1);
      }
    }
    // Per-image scores: 3 digits, each share in [0, 1], the row's mean equal to their mean.
    const cd = r.json[`CDeepEx, ${gens[0]}`] as { massInSquare: number[]; pointing: boolean[] };
    expect(cd.massInSquare.length).toBe(3);
    expect(pctOf(r.rows[0]['mass in square'])).toBeCloseTo(cd.massInSquare.reduce((a, b) => a + b, 0) / 3, 3);
    const claims = r.claims ?? [];
    expect(claims.map((c) => c.seedFigure).slice(0, 2)).toEqual(['5 %', '77 %']);
    expect(claims.filter((c) => c.claim.startsWith('CDeepEx')).length).toBe(gens.length);
    expect(claims.some((c) => c.claim.startsWith('xGEMs and contrastive'))).toBe(true);
    for (const c of claims) expect(c.measured).toMatch(/%/);
    const rates = r.json as { clean8Recognised: number; othersWithSquareCalled8: number };
    expect(rates.othersWithSquareCalled8).toBeGreaterThan(0.3); // the biased net does use the square
    for (const f of r.files ?? []) expect(fs.statSync(f).size).toBeGreaterThan(100);
    expect(r.files?.some((f) => f.endsWith('why-not-8.png'))).toBe(true);
    expect(secs).toBeLessThan(120);
  }, 240_000);
});
