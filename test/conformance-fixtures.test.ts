import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, currentBackend } from '../src/index.js';
import { readBundle, writeBundle, runConformance, loadFixtureModel, listReferences, type ConformanceResult } from '../src/conformance/index.js';
import { DataError } from '../src/core/errors.js';

/** The vendored fixtures (test/fixtures/conformance, synced from ../shared/conformance by npm run sync:conformance). */
const ROOT = path.resolve(__dirname, 'fixtures', 'conformance');
const TOL = 1e-4;

/**
 * Known float32 coincidence (reported to the lead): on the wasm backend, mnist_cnn image 4 at the
 * trapezoid point α = 40/49 has an fc1 pre-activation of ±9e-9; XNNPACK's float32 summation order
 * gives it the opposite sign to float64 (and to the cpu backend, which matches the reference to 5e-8),
 * so one ReLU gate flips at one of 50 steps. Only that image of those two maps may exceed 1e-4, and by
 * less than 1e-2.
 */
// gradient_shap_fixed: FORMAT.md §4.1's documented pool2 near-tie (image 1, sample 19: 7e-8 apart in
// float64, one float32 ulp here) swaps in float32 on cpu and wasm alike (8.8e-3 on that image only).
const KNOWN: Record<string, string[]> = { mnist_cnn: ['ig_riemann_trapezoid', 'ig_riemann_trapezoid_delta', 'gradient_shap_fixed'] };

function check(r: ConformanceResult, model: string) {
  const table = r.rows.map((row) => `${row.method.padEnd(28)} ${row.error.toExponential(2)} ≤ ${row.tolerance.toExponential(1)} ${row.pass ? 'pass' : 'FAIL'}`).join('\n');
  console.log(`${model} (${currentBackend()}):\n${table}\nskipped: ${r.skipped.join(', ') || '-'}`);
  for (const row of r.rows) {
    if (currentBackend() === 'wasm' && KNOWN[model]?.includes(row.method) && !row.pass) {
      expect(row.perImage.filter((v) => v > TOL).length, row.method).toBeLessThanOrEqual(1);
      expect(row.relL2, row.method).toBeLessThan(1e-2);
    } else {
      expect(row.error, row.method).toBeLessThanOrEqual(row.tolerance);
      expect(row.pass, row.method).toBe(true);
    }
  }
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'glasswing-conf-'));
}

function copyBundle(src: string, dst: string) {
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dst, f));
  for (const f of fs.readdirSync(dst)) fs.chmodSync(path.join(dst, f), 0o644);
}

beforeAll(async () => {
  await initBackend();
});

describe('conformance against Captum/Zennit references', () => {
  it('mnist_cnn: every known map within 1e-4 relative L2 per image', async () => {
    const r = await runConformance(path.join(ROOT, 'mnist_cnn'));
    expect(r.images).toBe(4);
    const names = r.rows.map((x) => x.method);
    for (const n of ['gradient', 'saliency', 'input_x_gradient', 'ig_riemann_trapezoid', 'ig_gausslegendre', 'ig_riemann_trapezoid_delta', 'ig_gausslegendre_delta', 'guided_backprop', 'deconvolution', 'gradcam', 'gradcam_raw', 'gradcam_preact', 'gradcam_preact_raw', 'occlusion', 'logits']) {
      expect(names).toContain(n);
    }
    check(r, 'mnist_cnn');
  });
  it('mnist_mlp: every known map within 1e-4 relative L2 per image', async () => {
    const r = await runConformance(path.join(ROOT, 'mnist_mlp'));
    expect(r.rows.length).toBeGreaterThanOrEqual(12);
    check(r, 'mnist_mlp');
    expect(r.pass).toBe(true);
  });
  it('works on an unseen fixture: other N, no target (argmax), unknown names skipped and listed', async () => {
    const dir = tmpDir();
    const src = path.join(ROOT, 'mnist_mlp');
    copyBundle(path.join(src, 'weights'), path.join(dir, 'weights'));
    const att = readBundle(path.join(src, 'attributions'));
    // image 2 is the one whose argmax equals its reference target, so the reference maps stay valid
    const pick = (name: string) => {
      const t = att.tensor(name);
      const s = tf.slice(t, [2, ...new Array(t.rank - 1).fill(0)], [1, ...t.shape.slice(1)]);
      t.dispose();
      return s;
    };
    const names = ['input', 'logits', 'gradient', 'saliency', 'guided_backprop', 'occlusion', 'ig_gausslegendre'];
    const tensors: Array<[string, tf.Tensor]> = names.map((n) => [n, pick(n)]);
    tensors.push(['some_future_method', pick('gradient')]);
    await writeBundle(path.join(dir, 'attributions'), 'attributions', tensors, { model: 'mnist_mlp', attrs: att.manifest.attrs });
    tf.dispose(tensors.map(([, t]) => t));
    const r = await runConformance(dir);
    expect(r.images).toBe(1);
    expect(r.skipped).toEqual(['some_future_method']);
    expect(r.rows.map((x) => x.method).sort()).toEqual(names.filter((n) => n !== 'input').sort());
    check(r, 'mnist_mlp subset');
    // The check can fail: a wrong map is reported as a failure.
    const wrong = tmpDir();
    copyBundle(path.join(dir, 'weights'), path.join(wrong, 'weights'));
    const g = pick('gradient');
    const g2 = tf.mul(g, 1.001);
    await writeBundle(path.join(wrong, 'attributions'), 'attributions', [['input', pick('input')], ['gradient', g2]], { model: 'mnist_mlp' });
    const rw = await runConformance(wrong);
    expect(rw.pass).toBe(false);
    expect(rw.rows[0].relL2).toBeCloseTo(1e-3, 5);
    tf.dispose([g, g2]);
  });
  it('the reference table lists the maps it knows and is extensible', () => {
    const known = listReferences();
    for (const n of ['gradient', 'gradcam_preact_raw', 'occlusion', 'ig_gausslegendre_delta']) expect(known).toContain(n);
  });
});

describe('bundle reader', () => {
  it('rejects malformed bundles with a DataError that says what was expected', async () => {
    const src = path.join(ROOT, 'mnist_mlp', 'input');
    const mk = () => {
      const d = path.join(tmpDir(), 'b');
      copyBundle(src, d);
      return d;
    };
    const editManifest = (d: string, f: (m: any) => void) => {
      const m = JSON.parse(fs.readFileSync(path.join(d, 'manifest.json'), 'utf8'));
      f(m);
      fs.writeFileSync(path.join(d, 'manifest.json'), JSON.stringify(m));
    };
    let d = mk();
    editManifest(d, (m) => (m.format = 'other'));
    expect(() => readBundle(d)).toThrow(/expected format "xai-anchors-tensors"/);
    d = mk();
    editManifest(d, (m) => (m.version = 2));
    expect(() => readBundle(d)).toThrow(DataError);
    d = mk();
    const buf = fs.readFileSync(path.join(d, 'input.bin'));
    buf[100] ^= 0xff;
    fs.writeFileSync(path.join(d, 'input.bin'), buf);
    expect(() => readBundle(d)).toThrow(/sha256/);
    d = mk();
    fs.writeFileSync(path.join(d, 'input.bin'), buf.subarray(0, 100));
    expect(() => readBundle(d)).toThrow(/expected 12544 bytes/);
    d = mk();
    editManifest(d, (m) => (m.tensors[0].shape = [4, 28, 28, 2]));
    expect(() => readBundle(d)).toThrow(/byteLength/);
    expect(() => readBundle(path.join(tmpDir(), 'none'))).toThrow(/manifest.json/);
    expect(() => readBundle(src, { kind: 'weights' })).toThrow(/kind "weights"/);
    const ok = readBundle(src);
    expect(ok.manifest.kind).toBe('input');
    const t = ok.tensor('target');
    expect(Array.from(await t.data())).toEqual([0, 1, 2, 3]);
    t.dispose();
  });
  it('a fixture for an unknown model gives a clear error', () => {
    const d = path.join(tmpDir(), 'w');
    copyBundle(path.join(ROOT, 'mnist_mlp', 'weights'), d);
    const m = JSON.parse(fs.readFileSync(path.join(d, 'manifest.json'), 'utf8'));
    m.model = 'resnet_1000';
    fs.writeFileSync(path.join(d, 'manifest.json'), JSON.stringify(m));
    expect(() => loadFixtureModel(d)).toThrow(/unknown model "resnet_1000"; expected one of mnist_cnn, mnist_mlp/);
    expect(() => loadFixtureModel(path.join(ROOT, 'mnist_mlp', 'weights'), 'mnist_cnn')).toThrow(DataError);
  });
  it('writeBundle round-trips through readBundle', async () => {
    const d = path.join(tmpDir(), 'rt');
    const a = tf.tensor2d([[1.5, -2], [3, 4]]);
    const b = tf.tensor1d([7, 8], 'int32');
    await writeBundle(d, 'input', [['x/a b', a], ['target', b]]);
    const r = readBundle(d, { kind: 'input' });
    expect(r.manifest.tensors[0].file).toBe('x__a_b.bin');
    expect(Array.from(r.data('x/a b').data)).toEqual([1.5, -2, 3, 4]);
    expect(r.data('target').dtype).toBe('int32');
    tf.dispose([a, b]);
  });
});
