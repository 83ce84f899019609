// glasswing metrics / metrics run / report as a user runs them (the built CLI): JSON output, the
// self-contained offline report, one-line errors.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runNode } from './support/run-node.js';

const CLI = resolve(__dirname, '../dist/src/cli/main.js');
let dir: string;

async function run(...args: string[]) {
  const r = await runNode([CLI, ...args], { env: { ...process.env, GLASSWING_QUIET: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'glasswing-metrics-cli-'));
});

describe('glasswing metrics', () => {
  it('lists the fifteen metrics with their direction', async () => {
    const r = await run('metrics', '--json');
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as Array<{ name: string; higherIsBetter: boolean }>;
    expect(list.map((m) => m.name)).toHaveLength(15);
    expect(list.find((m) => m.name === 'deletion')!.higherIsBetter).toBe(false);
    expect(list.find((m) => m.name === 'insertion')!.higherIsBetter).toBe(true);
    expect((await run('metrics')).stdout).toMatch(/pixel-flipping\s+↑/);
  });

  it('runs one metric with one method and prints JSON', async () => {
    const r = await run('metrics', 'run', '--metric', 'pixel-flipping', '--method', 'gradient-x-input', '--count', '2', '--opt.steps', '10', '--opt.order', 'both', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.scores).toHaveLength(2);
    expect(j.curves.map((c: { name: string }) => c.name)).toEqual(['MoRF', 'LeRF']);
    expect(j.curves[0].mean).toHaveLength(11);
    expect(j.options.order).toBe('both');
    const loc = JSON.parse((await run('metrics', 'run', '--metric', 'mass-in-region', '--method', 'gradient', '--count', '2', '--json')).stdout);
    expect(loc.model).toBe('mnist-cnn-biased');
    expect(loc.images).toMatch(/square/);
  });

  it('fails with one line on a bad metric, method or option', async () => {
    for (const args of [['--metric', 'nope'], ['--metric', 'deletion', '--method', 'nope'], ['--metric', 'deletion', '--opt.stepz', '3']]) {
      const r = await run('metrics', 'run', ...args, '--count', '1');
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n').pop()).toMatch(/^glasswing: (UnknownMethodError|OptionError): expected/);
    }
  });
});

describe('glasswing report', () => {
  it('writes one self-contained offline HTML file', async () => {
    const out = join(dir, 'r.html');
    const r = await run('report', '--quick', '--count', '2', '--methods', 'gradient,gradient-x-input,grad-cam', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(out)).toBe(true);
    const html = readFileSync(out, 'utf8');
    // maps and colour bars inline, plots as SVG, nothing fetched
    expect((html.match(/src="data:image\/png;base64,/g) ?? []).length).toBeGreaterThanOrEqual(2 + 3 * 2 + 3);
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(4);
    expect(html).not.toMatch(/(src|href)="https?:/);
    for (const name of ['pixel-flipping', 'randomization', 'input-invariance', 'black box', 'white box', 'gradient-x-input', 'ms / image']) expect(html).toContain(name);
    expect(html).toContain('★');
    expect(html).toContain("addEventListener('click'");
    expect(html).not.toContain('mass-in-region'); // no square on clean MNIST
  });
});
