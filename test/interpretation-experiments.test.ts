// The interpretation experiments' --quick modes (seed 003 Fig. 3.1, seed 004 Figs. 2-4) on the shipped
// MNIST models: they write their PNGs and markdown, their tables carry sane figures, and their seed
// claims rows are filled from the run. No timing is asserted (the machine is shared).
import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, getExperiment, hasDefaultModel } from '../src/index.js';
import { decodePng } from '../src/render/png.js';
import { hasDefaultGenerator, loadDefaultGenerator } from '../src/generative/io.js';
import { defaultDensityExpert } from '../src/interpretation/activation-max-expert.js';
import '../src/experiments/index.js';

beforeAll(async () => {
  await initBackend();
});

const shipped = hasDefaultModel('mnist-cnn') && hasDefaultGenerator('mnist-vae-10d');

describe.skipIf(!shipped)('interpretation experiments (quick)', () => {
  it('activation-max: three variants × ten classes, confidences and densities, a prototype grid, claims; no leaks', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-am-'));
    // The expert and the generator are cached per process (kept on purpose): loaded before counting.
    await defaultDensityExpert();
    await loadDefaultGenerator('mnist-vae-10d');
    const before = tf.memory().numTensors;
    const r = await getExperiment('activation-max').run({ quick: true, outDir: dir });
    expect(tf.memory().numTensors).toBe(before);
    const names = ['plain', 'expert β=1', 'expert β=0.1', 'code space'];
    expect(r.rows.map((row) => row.variant)).toEqual(names);
    const v = r.json.variants as Record<string, { probability: number[]; rbmLogDensity: number[]; priorLogDensity?: number[]; nearestL2: number[] }>;
    const m = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    for (const name of names) {
      expect(v[name].probability).toHaveLength(10);
      for (const p of v[name].probability) expect(p).toBeGreaterThan(0.01);
      for (const d of v[name].nearestL2) expect(d).toBeGreaterThan(0);
      expect(v[name].rbmLogDensity.every(Number.isFinite)).toBe(true);
    }
    // The plain ascent makes the classifier sure; a smaller β leaves the classifier more say.
    expect(m(v.plain.probability)).toBeGreaterThan(0.9);
    expect(m(v['expert β=0.1'].probability)).toBeGreaterThan(m(v['expert β=1'].probability));
    // Eq. 3.2 pulls the prototypes up the expert's density, far above the plain ones.
    expect(m(v['expert β=1'].rbmLogDensity)).toBeGreaterThan(m(v.plain.rbmLogDensity));
    expect(v['code space'].priorLogDensity).toHaveLength(10);
    expect(v.plain.priorLogDensity).toBeUndefined();
    const png = r.files!.find((f) => f.endsWith('prototypes.png'))!;
    const img = decodePng(fs.readFileSync(png));
    expect(img.width).toBeGreaterThan(10 * 28 * 2);
    expect(img.height).toBeGreaterThan(4 * 28 * 2);
    expect(r.markdown).toContain('prototypes.png');
    expect(r.claims!.length).toBeGreaterThanOrEqual(2);
    for (const c of r.claims!) expect(c.measured).toMatch(/\d/);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('neuron-views: top real vs adversarial images and receptive fields per channel, PNGs, claims; no leaks', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-nv-'));
    const before = tf.memory().numTensors;
    const r = await getExperiment('neuron-views').run({ quick: true, outDir: dir });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.rows).toHaveLength(2);
    const per = r.json.perChannel as Array<{ real: Array<{ label: number }>; adversarial: Array<{ label: number; target: number }>; realPurity: number }>;
    for (const p of per) {
      // top 5 % of 120 real images and of 120 adversarial ones
      expect(p.real).toHaveLength(6);
      expect(p.adversarial).toHaveLength(6);
      expect(p.realPurity).toBeGreaterThan(0);
      for (const a of p.adversarial) expect(a.target).not.toBe(a.label);
    }
    const pngs = r.files!.filter((f) => f.endsWith('.png'));
    expect(pngs).toHaveLength(3);
    for (const f of pngs) expect(decodePng(fs.readFileSync(f)).width).toBeGreaterThan(100);
    expect(r.claims).toHaveLength(1);
    expect(r.markdown).toContain('receptive-fields.png');
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
