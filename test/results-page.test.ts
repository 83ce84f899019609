/**
 * The results page (`glasswing experiment all`): two fake experiments (one with claims and a figure,
 * one that throws) and one real registered experiment in quick mode, run through the same runner the
 * CLI uses; then the CLI itself on the real one. Every claim is a row, the failure is a row that says
 * so, every link on the page resolves to a file that exists, and the published copy holds PNGs only.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { getExperiment, hasDefaultModel, type TaskDefinition } from '../src/index.js';
import '../src/experiments/index.js';
import { runAllExperiments, writeResultsPage, claimRows, claimsText, machineInfo, type PageInfo } from '../src/experiments/results-page.js';
import { writePng, renderMap } from '../src/render/index.js';
import { runNode } from './support/run-node.js';

const CLI = path.resolve(__dirname, '../dist/src/cli/main.js');
const shipped = hasDefaultModel('mnist-cnn') && hasDefaultModel('mnist-mlp');

const fakeOk: TaskDefinition = {
  name: 'aaa-fake-claims',
  description: 'a fake experiment with two claims and one figure',
  async run(o) {
    const dir = String(o.outDir);
    const png = path.join(dir, 'fake.png');
    const m = tf.tensor4d([0, 1, 2, 3], [1, 2, 2, 1]);
    writePng(png, renderMap(m, { scale: 4 }));
    m.dispose();
    const md = path.join(dir, 'fake.md');
    fs.writeFileSync(md, '# fake\n');
    return {
      rows: [{ a: 1, b: 'x | y' }],
      json: {},
      files: [png, md, path.join(dir, 'never-written.png')],
      claims: [
        { claim: 'first claim', seed: '000 §1', seedFigure: '0.10', measured: '0.36', note: 'a measured reason' },
        { claim: 'second claim', seed: '004 Table 1', seedFigure: '< 10 %', measured: `quick=${String(o.quick)}` },
      ],
    };
  },
};
const fakeFail: TaskDefinition = {
  name: 'aab-fake-fails',
  description: 'a fake experiment that throws',
  async run() {
    throw new Error('the model "nope" is missing\nsecond line of the stack');
  },
};

const info = (): PageInfo => ({ command: 'test', date: new Date().toISOString(), machine: machineInfo(), backend: 'wasm', loadStart: 1, loadEnd: 1, totalSeconds: 1 });

/** Every relative link target (images and files) in a markdown page, resolved against its folder. */
function links(page: string): string[] {
  const text = fs.readFileSync(page, 'utf8');
  return [...text.matchAll(/\]\(([^)#][^)]*)\)/g)].map((m) => path.resolve(path.dirname(page), m[1]));
}

beforeAll(async () => {
  await initBackend();
});

describe('experiment all: the results page', () => {
  it.skipIf(!shipped)('fakes + one real quick experiment: a row per claim, the failure as a failed row, links that resolve', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-all-'));
    const lines: string[] = [];
    const runs = await runAllExperiments({
      outDir: dir, quick: true, experiments: [getExperiment('deepfool-rho'), fakeFail, fakeOk], extra: { images: 4 }, log: (l) => lines.push(l),
    });
    // Name order, whatever order they were given in; the failure did not stop the next one.
    expect(runs.map((r) => r.name)).toEqual(['aaa-fake-claims', 'aab-fake-fails', 'deepfool-rho']);
    expect(runs.map((r) => r.status)).toEqual(['ok', 'failed', 'ok']);
    expect(runs[1].error).toBe('the model "nope" is missing');
    expect(runs[0].figures).toEqual([path.join(dir, 'aaa-fake-claims', 'fake.png')]); // PNGs that exist only
    expect(runs[2].claims.length).toBeGreaterThanOrEqual(1);
    expect(runs[2].command).toBe(`glasswing experiment deepfool-rho --out ${path.join(dir, 'deepfool-rho')} --quick --images 4`);
    // One progress line before and one after each, with the elapsed time.
    expect(lines.filter((l) => /elapsed \d+\.\d s/.test(l)).length).toBe(3);
    expect(lines.some((l) => l.includes('aab-fake-fails: FAILED (the model "nope" is missing)'))).toBe(true);

    const page = writeResultsPage(runs, info(), path.join(dir, 'results.md'), dir);
    const text = fs.readFileSync(page.page, 'utf8');
    const claims = runs.flatMap((r) => r.claims);
    for (const c of claims) expect(text).toContain(`| ${c.claim.replace(/\|/g, '\\|')} | ${c.seed} | ${c.seedFigure} |`);
    expect(text).toMatch(/\| \[aab-fake-fails\]\(#aab-fake-fails\) \| \(experiment failed\) \|.*\| FAILED \| the model "nope" is missing \|/);
    expect(text).toContain('- **failed**: the model "nope" is missing');
    expect(text).toContain('x \\| y'); // a pipe inside a cell does not break the table
    for (const r of runs) expect(text).toContain(`- command: \`${r.command}\``);
    const targets = links(page.page);
    expect(targets.length).toBe(runs[0].figures.length + runs[2].figures.length);
    for (const t of targets) expect(fs.existsSync(t)).toBe(true);
    // The CLI's table holds the same rows.
    const rows = claimRows(runs);
    expect(rows.length).toBe(claims.length + 1);
    const table = claimsText(runs);
    for (const c of claims) expect(table).toContain(c.claim);

    // Published copy (docs/results.md + docs/results/NAME/*.png): PNGs only, links resolve, big figures left out.
    const docs = path.join(dir, 'docs');
    const pub = writeResultsPage(runs, info(), path.join(docs, 'results.md'), path.join(docs, 'results'), 200 * 1024);
    for (const t of links(pub.page)) {
      expect(fs.existsSync(t)).toBe(true);
      expect(t.startsWith(path.join(docs, 'results'))).toBe(true);
    }
    const published = fs.readdirSync(path.join(docs, 'results'), { recursive: true }).map(String).filter((f) => path.extname(f));
    expect(published.length).toBeGreaterThan(0);
    expect(published.every((f) => f.endsWith('.png'))).toBe(true);
    const tiny = writeResultsPage(runs, info(), path.join(docs, 'tiny.md'), path.join(docs, 'tiny'), 10);
    expect(tiny.figures).toEqual([]);
    expect(tiny.skipped.length).toBe(runs[0].figures.length + runs[2].figures.length);
    expect(fs.readFileSync(tiny.page, 'utf8')).toContain('left out (over 0 KiB)');
  }, 240_000);

  it('resume: an ok result with the same command is reused (and said so on the page), a failed one runs again, rerun forces', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-all-resume-'));
    let calls = 0;
    const counted: TaskDefinition = { ...fakeOk, name: 'counted', run: async (o) => ((calls += 1), fakeOk.run(o)) };
    const first = await runAllExperiments({ outDir: dir, experiments: [counted, fakeFail] });
    expect(calls).toBe(1);
    expect(fs.existsSync(path.join(dir, 'counted', 'run.json'))).toBe(true);
    const lines: string[] = [];
    const again = await runAllExperiments({ outDir: dir, experiments: [counted, fakeFail], resume: true, log: (l) => lines.push(l) });
    expect(calls).toBe(1);
    expect(again[1].reused).toBe(true);
    expect(again[1].claims).toEqual(first[1].claims);
    expect(again[0].status).toBe('failed'); // failures are never reused: it ran again
    expect(lines.some((l) => l.includes('counted: reused the run of'))).toBe(true);
    const page = writeResultsPage(again, info(), path.join(dir, 'results.md'), dir);
    expect(fs.readFileSync(page.page, 'utf8')).toContain('1 of them reused from an earlier run');
    await runAllExperiments({ outDir: dir, experiments: [counted, fakeFail], resume: true, rerun: ['counted'] });
    expect(calls).toBe(2);
    // Another quick flag is another command: not reused.
    await runAllExperiments({ outDir: dir, experiments: [counted], resume: true, quick: true });
    expect(calls).toBe(3);
  });

  it('unknown names in only/skip are an OptionError before anything runs', async () => {
    let ran = false;
    const spy: TaskDefinition = { name: 'spy', description: '', run: async () => ((ran = true), { rows: [], json: {} }) };
    await expect(runAllExperiments({ outDir: os.tmpdir(), experiments: [spy], only: ['nope'] })).rejects.toThrow(/expected experiment names among spy; got "nope"/);
    expect(ran).toBe(false);
  });

  it.skipIf(!shipped)('CLI: glasswing experiment all --quick prints the combined table, progress lines and writes DIR/results.md', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-all-cli-'));
    const r = await runNode([CLI, 'experiment', 'all', '--out', dir, '--quick', '--only', 'deepfool-rho', '--images', '4'], { env: { ...process.env, GLASSWING_QUIET: '1' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/experiment all \(backend \w+\): 1 experiments, 0 failed/);
    expect(r.stdout).toMatch(/experiment\s+claim\s+seed\s+seed's figure\s+ours\s+note\s+s/);
    expect(r.stdout).toContain('DeepFool ρ_adv');
    expect(r.stderr).toMatch(/\[1\/1\] deepfool-rho: ok, \d+ claim row\(s\) in [\d.]+ s \(elapsed [\d.]+ s\)/);
    const page = path.join(dir, 'results.md');
    expect(fs.existsSync(page)).toBe(true);
    for (const t of links(page)) expect(fs.existsSync(t)).toBe(true);
    const bad = await runNode([CLI, 'experiment', 'all', '--quick'], { env: { ...process.env, GLASSWING_QUIET: '1' } });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('expected --out DIR');
  }, 240_000);
});
