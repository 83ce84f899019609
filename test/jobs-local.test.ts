// Dataset-scale jobs run in this process: shards equal to explain(), numpy-readable, resumable
// (checksums), atomic under a crash, and a corrupt image failing with one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initBackend, explain, loadMnist, encodePng, renderImage } from '../src/index.js';
import { metrics, methodExplainer } from '../src/metrics/index.js';
import { loadDefaultClassifier } from '../src/models/index.js';
import type { Classifier } from '../src/core/classifier.js';
import {
  buildSpec, runLocal, runShard, decodeNpy, encodeNpy, readSpec, scanRun, readIndexRows, verifyRecord, releaseSplits, TMP_MARK, type JobSpec,
} from '../src/jobs/index.js';

const CLI = resolve(__dirname, '../dist/src/cli/main.js');
let dir: string;
let classifier: Classifier;
let spec: JobSpec;
let out: string;

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

beforeAll(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'glasswing-jobs-'));
  classifier = await loadDefaultClassifier('mnist-mlp');
  spec = await buildSpec({ model: 'mnist-mlp', dataset: 'mnist', split: 'test', limit: 300, methods: ['gradient', 'saliency'], shardSize: 128, batch: 32 });
  out = join(dir, 'run');
  await runLocal(out, spec, classifier);
});

afterAll(() => {
  releaseSplits();
  rmSync(dir, { recursive: true, force: true });
});

describe('npy writer', () => {
  it('writes the documented NPY v1.0 header, 64-byte aligned, and reads back', () => {
    const data = Float32Array.from([1, -2.5, 3, 0, 1e-30, 7]);
    const bytes = encodeNpy(data, [2, 3]);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('\x93NUMPY\x01\x00');
    const headerLen = bytes.readUInt16LE(8);
    expect((10 + headerLen) % 64).toBe(0);
    expect(bytes.toString('latin1', 10, 10 + headerLen)).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    expect(decodeNpy(bytes)).toEqual({ shape: [2, 3], data });
    const one = encodeNpy(new Float32Array(4), [4]);
    expect(one.toString('latin1', 10, 10 + one.readUInt16LE(8))).toContain("'shape': (4,)");
    expect(() => encodeNpy(data, [4, 2])).toThrow(/expected 8 values/);
  });
});

describe('glasswing run (local)', () => {
  it('writes every shard, and the attributions and index equal direct explain() calls', async () => {
    const state = scanRun(out, spec, { verify: true });
    expect(state.missing).toEqual([]);
    expect(state.done.map((r) => r.shard)).toEqual(['gradient-00000', 'gradient-00001', 'gradient-00002', 'saliency-00000', 'saliency-00001', 'saliency-00002']);
    const rows = readIndexRows(out, state.done);
    expect(rows.length).toBe(600);
    const jsonl = readFileSync(join(out, 'index.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(jsonl).toEqual(rows);
    const csv = readFileSync(join(out, 'index.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('id,position,label,prediction,target,method,shard,file,row,time_ms');
    expect(csv.length).toBe(601);

    const ds = await loadMnist({ split: 'test', limit: 300 });
    const before = tf.memory().numTensors;
    for (const method of spec.methods) {
      const mine = rows.filter((r) => r.method === method);
      expect(mine.map((r) => r.position)).toEqual(Array.from({ length: 300 }, (_, i) => i));
      expect(mine.map((r) => r.label)).toEqual(Array.from(ds.labels));
      expect(mine.map((r) => r.id)).toEqual(Array.from(ds.sourceIndices!, (k) => `mnist:${k}`));
      for (const rec of state.done.filter((r) => r.method === method)) {
        const npy = decodeNpy(readFileSync(join(out, rec.npy.file)));
        expect(npy.shape).toEqual([rec.end - rec.start, 28, 28, 1]);
        for (let s = rec.start; s < rec.end; s += 32) {
          const b = Math.min(32, rec.end - s);
          const x = tf.slice(ds.images, [s, 0, 0, 0], [b, -1, -1, -1]) as tf.Tensor4D;
          const e = await explain(method, classifier, x, { target: 'predicted' });
          const want = (await e.attribution.data()) as Float32Array;
          const got = npy.data.subarray((s - rec.start) * 784, (s - rec.start + b) * 784);
          expect(Array.from(got)).toEqual(Array.from(want));
          for (let i = 0; i < b; i++) {
            const row = mine[s + i];
            expect(row.target).toBe(e.target[i]);
            expect(row.prediction).toBe(e.logits[i].indexOf(Math.max(...e.logits[i])));
            expect(row.file).toBe(rec.npy.file);
            expect(row.row).toBe(s - rec.start + i);
          }
          e.dispose();
          x.dispose();
        }
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    ds.dispose();
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.shards.length).toBe(6);
    for (const r of manifest.shards) expect(verifyRecord(out, r)).toBeUndefined();
    const html = readFileSync(join(out, 'report', 'index.html'), 'utf8');
    expect(html).toContain(`Glasswing run ${spec.key}`);
    expect(html).toContain('gradient-0.png');
    expect(existsSync(join(out, 'report', 'saliency-7.png'))).toBe(true);
  });

  it('keeps no tensors: a whole run (shards, index, report) leaves the tensor count as it was', async () => {
    const before = tf.memory().numTensors;
    const r = await runLocal(join(dir, 'leaks'), spec, classifier);
    expect(r.written).toBe(6);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('two writers of the same shard (a job taken over while its worker still runs): one commits, the other removes its files', async () => {
    const race = join(dir, 'race');
    const shard = spec.shards[0];
    const ctx = { outDir: race, spec, classifier };
    const [a, b] = await Promise.all([runShard(ctx, shard), runShard(ctx, shard)]);
    expect([a.outcome, b.outcome].sort()).toEqual(['present', 'written']);
    expect(a.record).toEqual(b.record);
    const files = readdirSync(join(race, 'shards', 'gradient')).sort();
    expect(files).toEqual([a.record.index.file, a.record.npy.file].map((f) => f.split('/').pop()!).concat('gradient-00000.done.json').sort());
    expect(verifyRecord(race, a.record)).toBeUndefined();
    // A third attempt finds it finished and writes nothing.
    expect((await runShard(ctx, shard)).outcome).toBe('present');
    expect(readdirSync(join(race, 'shards', 'gradient')).length).toBe(3);
  });

  it("puts each image's own extras in its index row, and method options reach the method", async () => {
    const igSpec = await buildSpec({ model: 'mnist-mlp', dataset: 'mnist', limit: 6, methods: ['integrated-gradients', 'gradient'], shardSize: 6, options: { steps: 4 } });
    expect(igSpec.options).toEqual({ 'integrated-gradients': { steps: 4 }, gradient: {} });
    const ig = join(dir, 'ig');
    await runLocal(ig, igSpec, classifier);
    const rows = readIndexRows(ig, scanRun(ig, igSpec).done).filter((r) => r.method === 'integrated-gradients');
    const ds = await loadMnist({ split: 'test', limit: 6 });
    const e = await explain('integrated-gradients', classifier, ds.images, { options: { steps: 4 } });
    const ce = e.extras.completenessError as number[];
    expect(ce.length).toBe(6);
    rows.forEach((r, i) => expect(r.extras.completenessError).toBeCloseTo(ce[i], 4));
    expect(new Set(rows.map((r) => r.extras.completenessError)).size).toBeGreaterThan(1);
    e.dispose();
    ds.dispose();
    await expect(buildSpec({ model: 'mnist-mlp', dataset: 'mnist', methods: ['gradient'], options: { stepz: 4 } })).rejects.toThrow(/no method has "stepz"/);
  });

  it('--metrics scores every attribution: index scores equal metrics.evaluate on the same images', async () => {
    const mSpec = await buildSpec({ model: 'mnist-mlp', dataset: 'mnist', limit: 8, methods: ['gradient'], shardSize: 8, metrics: ['sparseness', 'deletion'], metricOptions: { steps: 5 } });
    expect(mSpec.metricOptions).toEqual({ sparseness: {}, deletion: { steps: 5 } });
    const md = join(dir, 'metrics');
    const r = await runLocal(md, mSpec, classifier);
    const rows = readIndexRows(md, scanRun(md, mSpec).done);
    const ds = await loadMnist({ split: 'test', limit: 8 });
    const e = await explain('gradient', classifier, ds.images);
    for (const [metric, options] of [['sparseness', {}], ['deletion', { steps: 5 }]] as const) {
      const want = await metrics.evaluate(metric, classifier, ds.images, e.attribution, { target: e.target, options, explain: methodExplainer('gradient') });
      rows.forEach((row, i) => expect(row.metrics![metric]).toBeCloseTo(want.scores[i], 4));
      const mean = want.scores.reduce((a, b) => a + b, 0) / want.scores.length;
      expect(r.summary.perMethod[0].metrics[metric]).toBeCloseTo(mean, 4);
    }
    expect(readFileSync(join(md, 'index.csv'), 'utf8').split('\n')[0]).toBe('id,position,label,prediction,target,method,shard,file,row,time_ms,metric.sparseness,metric.deletion');
    e.dispose();
    ds.dispose();
    await expect(buildSpec({ model: 'mnist-mlp', dataset: 'mnist', methods: ['gradient'], metrics: ['nope'] })).rejects.toThrow(/got "nope"/);
  });

  it("a layer method's shards keep the layer's shape; the report draws them on the input grid", async () => {
    const cnn = await loadDefaultClassifier('mnist-cnn');
    const lSpec = await buildSpec({ model: 'mnist-cnn', dataset: 'mnist', limit: 4, methods: ['layer-gradient-x-activation'], shardSize: 4 });
    const ld = join(dir, 'layer');
    await runLocal(ld, lSpec, cnn);
    const rec = scanRun(ld, lSpec).done[0];
    const npy = decodeNpy(readFileSync(join(ld, rec.npy.file)));
    const x = (await loadMnist({ split: 'test', limit: 4 }));
    const e = await explain('layer-gradient-x-activation', cnn, x.images);
    expect(npy.shape).toEqual(e.attribution.shape);
    expect(npy.shape.slice(1)).not.toEqual([28, 28, 1]);
    expect(Array.from(npy.data)).toEqual(Array.from(await e.attribution.data()));
    expect(existsSync(join(ld, 'report', 'layer-gradient-x-activation-3.png'))).toBe(true);
    e.dispose();
    x.dispose();
  });

  it('shards are readable by numpy', () => {
    const rec = scanRun(out, spec).done[0];
    const file = join(out, rec.npy.file);
    const js = decodeNpy(readFileSync(file));
    const sum = js.data.reduce((a, v) => a + Math.abs(v), 0);
    if (!hasNumpy) {
      // No numpy here: the header is what numpy.load parses.
      expect(readFileSync(file).toString('latin1', 0, 80)).toMatch(/^\x93NUMPY\x01\x00.{2}\{'descr': '<f4', 'fortran_order': False, 'shape': \(128, 28, 28, 1\), \}/s);
      return;
    }
    const r = spawnSync('python3', ['-c', `import numpy as np, sys; a = np.load(sys.argv[1]); print(a.dtype, a.shape, float(np.abs(a.astype(np.float64)).sum()))`, file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [dtype, ...rest] = r.stdout.trim().split(' ');
    expect(dtype).toBe('float32');
    expect(rest.slice(0, -1).join(' ')).toBe('(128, 28, 28, 1)');
    expect(Number(rest.at(-1))).toBeCloseTo(sum, 2);
  });

  it('a restarted run skips verified shards, redoes a corrupt one and a missing one, and removes leftovers', async () => {
    const copy = join(dir, 'resume');
    await runLocal(copy, spec, classifier);
    const first = scanRun(copy, spec).done;
    const shaBefore = first.map((r) => r.npy.sha256);
    // Corrupt one shard's data (same size), delete another's record, leave a dead writer's temp file.
    const victim = join(copy, first[1].npy.file);
    const bytes = readFileSync(victim);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(victim, bytes);
    unlinkSync(join(copy, 'shards', 'saliency', 'saliency-00002.done.json'));
    const stray = join(copy, 'shards', 'gradient', `gradient-00000.npy${TMP_MARK}host-1-abcd`);
    writeFileSync(stray, 'half a file');
    const r = await runLocal(copy, spec, classifier);
    expect(r).toMatchObject({ written: 2, skipped: 4, redone: 1 });
    const after = scanRun(copy, spec, { verify: true });
    expect(after.missing).toEqual([]);
    expect(after.done.map((x) => x.npy.sha256)).toEqual(shaBefore);
    expect(existsSync(stray)).toBe(false);
    expect(existsSync(victim)).toBe(false);
    // One data file pair per shard, nothing else.
    for (const m of spec.methods) {
      const files = readdirSync(join(copy, 'shards', m)).sort();
      expect(files.filter((f) => f.endsWith('.npy')).length).toBe(3);
      expect(files.length).toBe(9);
    }
    // A different job in the same folder is refused.
    const other = await buildSpec({ model: 'mnist-mlp', dataset: 'mnist', limit: 300, methods: ['gradient'], shardSize: 128 });
    await expect(runLocal(copy, other, classifier)).rejects.toThrow(/holds job/);
    expect(readSpec(copy)!.key).toBe(spec.key);
  });

  it('a run killed with SIGKILL leaves only whole files, and the restarted run completes equal to an uninterrupted one', async () => {
    const killed = join(dir, 'killed');
    const args = ['run', '--model', 'mnist-cnn', '--dataset', 'mnist', '--methods', 'gradient', '--limit', '640', '--shard-size', '64', '--out', killed];
    const env = { ...process.env, GLASSWING_QUIET: '1' };
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let childErr = '';
    child.stderr!.on('data', (d) => (childErr += d));
    const dirOf = join(killed, 'shards', 'gradient');
    const records = () => (existsSync(dirOf) ? readdirSync(dirOf).filter((f) => f.endsWith('.done.json') && !f.includes(TMP_MARK)).length : 0);
    const exited = new Promise((ok) => child.once('exit', ok));
    while (records() < 3 && child.exitCode === null) await new Promise((ok) => setTimeout(ok, 20));
    child.kill('SIGKILL');
    await exited;
    const doneAtKill = records();
    expect(doneAtKill, childErr).toBeGreaterThanOrEqual(3);
    expect(doneAtKill).toBeLessThan(10);
    // Every file under a final name is whole: data files decode, records parse.
    for (const f of readdirSync(dirOf).filter((f) => !f.includes(TMP_MARK))) {
      const bytes = readFileSync(join(dirOf, f));
      if (f.endsWith('.npy')) expect(decodeNpy(bytes).shape).toEqual([64, 28, 28, 1]);
      else if (f.endsWith('.jsonl')) expect(bytes.toString().trim().split('\n').map((l) => JSON.parse(l)).length).toBe(64);
      else expect(JSON.parse(bytes.toString()).rows).toBe(64);
    }
    const r2 = spawnSync(process.execPath, [CLI, ...args, '--json'], { env, encoding: 'utf8' });
    expect(r2.status, r2.stderr).toBe(0);
    expect(r2.stderr).toContain(`${10 - doneAtKill} shards computed, ${doneAtKill} already finished`);
    const whole = join(dir, 'whole');
    const r3 = spawnSync(process.execPath, [CLI, ...args.slice(0, -1), whole], { env, encoding: 'utf8' });
    expect(r3.status, r3.stderr).toBe(0);
    const s = readSpec(killed)!;
    const a = scanRun(killed, s, { verify: true }).done.map((r) => r.npy.sha256);
    const b = scanRun(whole, s, { verify: true }).done.map((r) => r.npy.sha256);
    expect(a.length).toBe(10);
    expect(a).toEqual(b);
    expect(readdirSync(dirOf).length).toBe(30);
  });

  it('a corrupt image in a folder dataset fails the local run with one line naming the file', async () => {
    const folder = join(dir, 'folder');
    const ds = await loadMnist({ split: 'test', limit: 6 });
    for (let i = 0; i < 6; i++) {
      const cls = join(folder, String(ds.labels[i]));
      mkdirSync(cls, { recursive: true });
      writeFileSync(join(cls, `img${i}.png`), encodePng(renderImage(ds.images, { index: i })));
    }
    ds.dispose();
    mkdirSync(join(folder, '7'), { recursive: true });
    writeFileSync(join(folder, '7', 'broken.png'), Buffer.from('not an image at all'));
    const r = spawnSync(process.execPath, [CLI, 'run', '--model', 'mnist-mlp', '--dataset', folder, '--methods', 'gradient', '--out', join(dir, 'folder-run')], { encoding: 'utf8', env: { ...process.env, GLASSWING_QUIET: '1' } });
    expect(r.status).toBe(1);
    const last = r.stderr.trim().split('\n').at(-1)!;
    expect(last).toMatch(/^glasswing: ImageLoadError: cannot decode image ".*broken\.png": expected PNG or JPEG data/);
  });
});
