// The CLI as a user runs it: exit codes, one-line errors, no partial output files.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, saveModel, encodePng } from '../src/index.js';
import { runNode } from './support/run-node.js';

const CLI = resolve(__dirname, '../dist/src/cli/main.js');
let dir: string;
let modelDir: string;

function run(...args: string[]) {
  return runWith({}, ...args);
}

async function runWith(env: Record<string, string>, ...args: string[]) {
  const r = await runNode([CLI, ...args], { env: { ...process.env, GLASSWING_QUIET: '1', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'glasswing-cli-'));
  modelDir = join(dir, 'model');
  const model = tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 2, kernelSize: 3, activation: 'relu', name: 'conv' }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 10, name: 'out' }),
  ] });
  await saveModel(model, modelDir);
  // A real 28×28 greyscale PNG with a bright bar.
  const data = new Uint8ClampedArray(28 * 28 * 4);
  for (let i = 0; i < 28 * 28; i++) {
    const v = i % 28 > 10 && i % 28 < 16 ? 255 : 0;
    data.set([v, v, v, 255], i * 4);
  }
  writeFileSync(join(dir, 'digit.png'), encodePng({ width: 28, height: 28, data }));
  writeFileSync(join(dir, 'corrupt.png'), Buffer.from('this is not a png'));
});

describe('glasswing CLI', () => {
  it('explain writes a heatmap PNG and prints JSON', async () => {
    const out = join(dir, 'ok.png');
    const r = await run('explain', '--model', modelDir, '--image', join(dir, 'digit.png'), '--method', 'gradient', '--target', '3', '--out', out, '--json');
    expect(r.stderr).toContain('backend');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary.target).toBe(3);
    expect(summary.method).toBe('gradient');
    expect(readFileSync(out).subarray(1, 4).toString()).toBe('PNG');
  });

  const bad: Array<[string, string[], RegExp]> = [
    ['missing image', ['--image', '/nonexistent/x.png'], /ImageLoadError/],
    ['corrupt image', ['--image', 'CORRUPT'], /ImageLoadError/],
    ['missing model', ['--model', '/nonexistent/model', '--image', 'DIGIT'], /ModelLoadError/],
    ['unknown method', ['--image', 'DIGIT', '--method', 'nope'], /UnknownMethodError.*got "nope"/],
    ['target out of range', ['--image', 'DIGIT', '--target', '10'], /TargetError.*0\.\.9.*got 10/],
  ];
  for (const [name, extra, pattern] of bad) {
    it(`${name}: non-zero exit, one-line message, no output file`, async () => {
      const out = join(dir, `${name.replace(/ /g, '-')}.png`);
      const args = extra.map((a) => (a === 'DIGIT' ? join(dir, 'digit.png') : a === 'CORRUPT' ? join(dir, 'corrupt.png') : a));
      const withModel = args.includes('--model') ? args : ['--model', modelDir, ...args];
      const r = await run('explain', ...withModel, '--out', out);
      expect(r.code).not.toBe(0);
      const lines = r.stderr.trim().split('\n').filter((l) => !l.includes('backend'));
      expect(lines.length).toBe(1);
      expect(lines[0]).toMatch(pattern);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('unknown command and missing --out fail with a message', async () => {
    expect((await run('frobnicate')).code).not.toBe(0);
    const r = await run('explain', '--model', modelDir, '--image', join(dir, 'digit.png'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/expected --out/);
  });

  it('GLASSWING_BACKEND selects the backend and the CLI says which runs', async () => {
    expect((await runWith({ GLASSWING_BACKEND: '' }, 'methods')).stderr).toMatch(/backend (wasm|tensorflow|node)/);
    const cpu = await runWith({ GLASSWING_BACKEND: 'cpu' }, 'methods');
    expect(cpu.code).toBe(0);
    expect(cpu.stderr).toContain('backend cpu');
    const bad = await runWith({ GLASSWING_BACKEND: 'gpu' }, 'methods');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/GLASSWING_BACKEND must be one of node, wasm, cpu; got "gpu"/);
  });

  it('demo writes an HTML report with a map per method and digit (shipped models)', async () => {
    const out = join(dir, 'demo');
    const r = await run('demo', '--quick', '--count', '2', '--methods', 'gradient,lrp,visual-backprop', '--out', out, '--json');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary.methods.map((m: { method: string }) => m.method).sort()).toEqual(['gradient', 'lrp', 'visual-backprop']);
    expect(summary.methods.every((m: { error?: string }) => !m.error)).toBe(true);
    // VisualBackProp's showcase is the bias-free offset network.
    expect(summary.methods.find((m: { method: string }) => m.method === 'visual-backprop').model).toBe('mnist-cnn-nobias');
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    for (const m of ['gradient', 'lrp', 'visual-backprop']) {
      for (const i of [0, 1]) {
        expect(html).toContain(`maps/${m}-${i}.png`);
        expect(existsSync(join(out, 'maps', `${m}-${i}.png`))).toBe(true);
      }
    }
    expect(existsSync(join(out, 'overview.png'))).toBe(true);
    // The quick metric report sits beside it, linked from the page.
    expect(html).toContain('href="metrics.html"');
    expect(readFileSync(join(out, 'metrics.html'), 'utf8')).toMatch(/pixel-flipping/);
  });

  it('methods lists the registered methods', async () => {
    const r = await run('methods', '--json');
    expect(r.code).toBe(0);
    const names = JSON.parse(r.stdout.trim().split('\n').pop()!).map((m: { name: string }) => m.name);
    expect(names).toContain('gradient');
    expect(names).toContain('gradient-x-input');
  });
});
