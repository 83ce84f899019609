// `glasswing interpret top --percent/--adversarial`, `field`, `neighbours`, `filters`, `maps` through the
// built CLI (async children), checked against the functions; and `glasswing bench interpretation
// --quick` at a small colour size: every figure finite and positive (no timing asserted: shared machine).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, hasDefaultModel, loadDefaultClassifier, loadMnist, type Classifier } from '../src/index.js';
import { topActivations } from '../src/interpretation/top-activations.js';
import { nearestNeighbours } from '../src/interpretation/nearest-neighbours.js';
import { decodePng } from '../src/render/png.js';
import { benchCommand } from '../src/cli/commands/tasks.js';
import { parseArgs } from '../src/cli/args.js';
import { runNode } from './support/run-node.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const shipped = hasDefaultModel('mnist-cnn');
const env = { ...process.env, GLASSWING_QUIET: '1' };
let cnn: Classifier;
let dir: string;

beforeAll(async () => {
  await initBackend();
  if (shipped) cnn = await loadDefaultClassifier('mnist-cnn');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-icli-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

describe.skipIf(!shipped)('CLI: glasswing interpret', () => {
  it('top --percent equals the function; --adversarial writes real vs adversarial rows with least-likely targets', async () => {
    const out = path.join(dir, 'top.png');
    const r = await runNode([CLI, 'interpret', 'top', '--layer', 'conv2', '--channel', '6', '--limit', '120', '--percent', '5', '--out', out, '--json'], { env });
    expect(r.status, r.stderr).toBe(0);
    const ds = await loadMnist({ split: 'test', limit: 120 });
    const f = await topActivations(cnn, ds, { layer: 'conv2', channel: 6, percent: 5 });
    expect(lastJson(r.stdout).top.map((t: { index: number }) => t.index)).toEqual(f.top.map((t) => t.index));
    expect(f.top).toHaveLength(6);
    f.dispose();
    ds.dispose();
    expect(decodePng(fs.readFileSync(out)).width).toBeGreaterThan(6 * 28);
    const adv = path.join(dir, 'adv.png');
    const a = await runNode([CLI, 'interpret', 'top', '--layer', 'conv2', '--channel', '6', '--limit', '40', '--k', '4', '--adversarial', 'pgd', '--steps', '3', '--out', adv, '--json'], { env });
    expect(a.status, a.stderr).toBe(0);
    const j = lastJson(a.stdout);
    expect(j.real).toHaveLength(4);
    expect(j.adversarial).toHaveLength(4);
    for (const t of j.adversarial) expect(t.target).not.toBe(t.label);
    expect(decodePng(fs.readFileSync(adv)).height).toBeGreaterThan(4 * 28);
    const bad = await runNode([CLI, 'interpret', 'top', '--layer', 'conv2', '--channel', '1', '--adversarial', 'cw', '--json'], { env });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/expected --adversarial pgd or fgsm; got cw/);
  }, 120_000);

  it('field, neighbours, filters and maps write their pictures; neighbours equal the function', async () => {
    const field = path.join(dir, 'field.png');
    const f = await runNode([CLI, 'interpret', 'field', '--layer', 'conv2', '--channel', '4', '--limit', '60', '--k', '2', '--stride', '2', '--out', field, '--json'], { env });
    expect(f.status, f.stderr).toBe(0);
    const fj = lastJson(f.stdout);
    expect(fj.theoretical.rows.size).toBe(14);
    expect(fj.support.rows).toBeGreaterThan(0);
    expect(fj.support.rows).toBeLessThanOrEqual(14 + 2 * 2);
    const nnOut = path.join(dir, 'nn.png');
    const n = await runNode([CLI, 'interpret', 'neighbours', '--layer', 'fc1', '--metric', 'cosine', '--k', '3', '--queries', '0,5', '--limit', '300', '--out', nnOut, '--json'], { env });
    expect(n.status, n.stderr).toBe(0);
    const train = await loadMnist({ split: 'train', limit: 300 });
    const test = await loadMnist({ split: 'test' });
    const q = tf.gather(test.images, [0, 5]) as tf.Tensor4D;
    const nn = await nearestNeighbours(cnn, q, train, { layer: 'fc1', metric: 'cosine', k: 3 });
    expect(lastJson(n.stdout).neighbours.map((l: Array<{ index: number }>) => l.map((x) => x.index))).toEqual(nn.map((l) => l.map((x) => x.index)));
    tf.dispose(q);
    train.dispose();
    test.dispose();
    for (const [sub, extra] of [['filters', []], ['maps', ['--layer', 'conv1', '--mnist', '3']]] as const) {
      const out = path.join(dir, `${sub}.png`);
      const r = await runNode([CLI, 'interpret', sub, ...extra, '--out', out], { env });
      expect(r.status, r.stderr).toBe(0);
      expect(decodePng(fs.readFileSync(out)).width).toBeGreaterThan(100);
    }
    for (const f2 of [field, nnOut]) expect(decodePng(fs.readFileSync(f2)).width).toBeGreaterThan(50);
  }, 120_000);
});

describe('bench interpretation --quick', () => {
  it('prints a row per figure, every figure finite and positive, with the load average', async () => {
    const write = process.stdout.write.bind(process.stdout);
    let out = '';
    process.stdout.write = ((chunk: string | Uint8Array) => {
      out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    }) as typeof process.stdout.write;
    try {
      await benchCommand.run(parseArgs(['interpretation', '--quick', '--size', '32', '--steps', '2', '--json']));
    } finally {
      process.stdout.write = write;
    }
    const j = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(j.bench).toBe('interpretation');
    expect(Number.isFinite(j.loadStart)).toBe(true);
    const figures = Object.entries(j).filter(([k, v]) => k.includes(' | ') && v !== null);
    // 3 prototypes + 3 per-unit figures + 2 fields on the colour model, and 8 on the MNIST CNN when shipped
    expect(figures.length).toBe(shipped ? 14 : 6);
    for (const [k, v] of figures) {
      expect(typeof v, k).toBe('number');
      expect(v as number, k).toBeGreaterThan(0);
    }
  }, 240_000);
});
