// The CLI on a user's own colour models (layers and graph model folders with glasswing.json) and
// photos of any size: explain and predict, folders of photos, one-line errors, no partial files.
import { beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { loadClassifier } from '../src/models/load.js';
import { loadPhoto } from '../src/data/photo.js';
import { pngSize } from '../src/render/plots.js';
import { buildPhotoModel, CLASS_NAMES, writePhoto, writePhotoModels } from './support/photo-models.js';
import { GraphModelBuilder } from './support/graph-model-builder.js';
import { buildMobileNetV2Shaped } from '../src/models/imagenet-shapes.js';
import { saveModel } from '../src/models/io.js';
import { exportGraphModel, saveGraphModel } from '../src/models/graph-model-export.js';
import { runNode } from './support/run-node.js';

const CLI = resolve(__dirname, '../dist/src/cli/main.js');
let dir: string;
let dirs: { layers: string; graph: string };
let photos: string;

async function run(...args: string[]) {
  const r = await runNode([CLI, ...args], { env: { ...process.env, GLASSWING_QUIET: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  await initBackend();
  dir = fs.mkdtempSync(join(tmpdir(), 'glasswing-cli-photos-'));
  dirs = await writePhotoModels(dir, buildPhotoModel());
  photos = join(dir, 'photos');
  fs.mkdirSync(photos);
  writePhoto(join(photos, 'wide.jpg'), 300, 200);
  writePhoto(join(photos, 'tall.png'), 120, 160);
  writePhoto(join(photos, 'tiny.jpeg'), 40, 30);
  fs.writeFileSync(join(photos, 'notes.txt'), 'not an image');
});

describe('glasswing explain / predict on photos', () => {
  it('explain --model GRAPH_DIR --image photo.jpg --method grad-cam --target "CLASS NAME" writes a panel and a JSON line', async () => {
    const out = join(dir, 'gc.png');
    const r = await run('explain', '--model', dirs.graph, '--image', join(photos, 'wide.jpg'), '--method', 'grad-cam', '--target', 'tiger shark', '--out', out, '--json');
    expect(r.stderr.split('\n').filter((l) => /Error/.test(l))).toEqual([]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(s).toMatchObject({ method: 'grad-cam', model: 'graph', target: 2, targetName: 'tiger shark' });
    expect(CLASS_NAMES[s.predicted]).toBe(s.predictedName);
    const size = pngSize(fs.readFileSync(out));
    expect(size.width).toBeGreaterThan(4 * 200); // photo, map over photo, input map, top-k
  });

  it('explain on the layers model folder with a target index; the same photo gives the same logits as the graph model', async () => {
    const a = await run('explain', '--model', dirs.layers, '--image', join(photos, 'wide.jpg'), '--method', 'gradient', '--target', '3', '--out', join(dir, 'l.png'), '--json');
    const b = await run('explain', '--model', dirs.graph, '--image', join(photos, 'wide.jpg'), '--method', 'gradient', '--target', 'goldfish', '--out', join(dir, 'g.png'), '--json');
    expect([a.code, b.code]).toEqual([0, 0]);
    const [sa, sb] = [a, b].map((r) => JSON.parse(r.stdout.trim().split('\n').pop()!));
    expect(sa.target).toBe(3);
    expect(sb.target).toBe(3);
    sa.logits.forEach((v: number, i: number) => expect(v).toBeCloseTo(sb.logits[i], 3));
  });

  it('predict --top 3 lists class names with probabilities equal to the library\'s', async () => {
    const r = await run('predict', '--model', dirs.graph, '--image', join(photos, 'tall.png'), '--top', '3', '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout.trim());
    expect(s.top).toHaveLength(3);
    const c = await loadClassifier(dirs.graph);
    const { input } = await loadPhoto(join(photos, 'tall.png'), c);
    const p = c.probabilities(input).dataSync();
    const order = Array.from(p.keys()).sort((x, y) => p[y] - p[x]);
    expect(s.top.map((t: { index: number }) => t.index)).toEqual(order.slice(0, 3));
    expect(s.top.map((t: { name: string }) => t.name)).toEqual(order.slice(0, 3).map((i) => CLASS_NAMES[i]));
    s.top.forEach((t: { index: number; probability: number }) => expect(t.probability).toBeCloseTo(p[t.index], 4));
    tf.dispose(input);
    c.dispose();
    const text = await run('predict', '--model', dirs.layers, '--images', photos);
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n')).toHaveLength(3);
    expect(text.stdout).toMatch(/^tall\.png: 1\. .+ \d+\.\d%, 2\./m);
  });

  it('--images DIR writes one PNG per photo into --out DIR', async () => {
    const out = join(dir, 'maps');
    const r = await run('explain', '--model', dirs.graph, '--images', photos, '--method', 'guided-backprop', '--out', out, '--json');
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['tall.png', 'tiny.png', 'wide.png']);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.image.split('/').pop()).sort()).toEqual(['tall.png', 'tiny.jpeg', 'wide.jpg']);
  });

  it('layers lists a graph model\'s TF node names with kinds, ops and shapes', async () => {
    const r = await run('layers', '--model', dirs.graph, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout.trim());
    expect(s).toMatchObject({ model: 'graph', input: [64, 64, 3], classes: 5, preprocessing: { range: [0, 255], resize: 'center-crop' } });
    expect(s.layers[0]).toMatchObject({ name: 'preprocess', kind: 'batchnorm', op: 'Preprocessing' });
    expect(s.layers.find((l: { name: string }) => l.name === 'out_relu')).toMatchObject({ kind: 'activation', activation: 'relu6', op: '_FusedConv2D' });
    const text = await run('layers', '--model', dirs.graph);
    expect(text.stdout).toMatch(/^graph: input \[64, 64, 3\], 5 classes, \d+ nodes/);
    expect(text.stdout).toMatch(/out_relu\/preact\s+conv2d\s+_FusedConv2D\s+\[2, 2, 32\]/);
  });

  const bad: Array<[string, () => string[], RegExp, string]> = [
    ['unknown class name', () => ['explain', '--model', dirs.graph, '--image', join(photos, 'wide.jpg'), '--target', 'tabby'], /TargetError.*"tabby".*did you mean "tabby, tabby cat"/, 'bad-target.png'],
    ['a corrupt photo in --images', () => {
      const d = join(dir, 'with-corrupt');
      fs.mkdirSync(d, { recursive: true });
      writePhoto(join(d, 'a.jpg'), 50, 50);
      fs.writeFileSync(join(d, 'b.png'), Buffer.from('\x89PNG\r\n\x1a\nbroken'));
      return ['explain', '--model', dirs.graph, '--images', d];
    }, /ImageLoadError.*b\.png/, 'corrupt-out'],
    ['an unsupported op in a graph model', () => {
      const g = new GraphModelBuilder();
      g.op('weird', 'Cumsum', [g.input('x', [-1, 8, 8, 3]), g.const('ax', [1], [], 'int32')]);
      const { modelJson, weights } = g.build();
      const d = join(dir, 'unsupported');
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(join(d, 'model.json'), JSON.stringify(modelJson));
      fs.writeFileSync(join(d, 'group1-shard1of1.bin'), weights);
      return ['explain', '--model', d, '--image', join(photos, 'wide.jpg')];
    }, /UnsupportedLayerError.*node "weird" has op Cumsum/, 'unsupported.png'],
    ['a bad glasswing.json', () => {
      const d = join(dir, 'bad-json');
      fs.cpSync(dirs.graph, d, { recursive: true });
      fs.writeFileSync(join(d, 'glasswing.json'), JSON.stringify({ inputSize: [64, 64], mean: [1, 2], std: [1, 1, 1] }));
      return ['predict', '--model', d, '--image', join(photos, 'wide.jpg')];
    }, /expected 3 mean values/, 'none'],
  ];
  for (const [what, args, re, outName] of bad) {
    it(`${what}: one-line error, exit code 1, no output file`, async () => {
      const out = join(dir, outName);
      const a = args();
      const r = await run(...a, ...(a[0] === 'explain' ? ['--out', out] : []));
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n').filter((l) => !/backend/.test(l));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(re);
      expect(fs.existsSync(out)).toBe(false);
    });
  }
});

describe('ImageNet-size model folders', () => {
  it('a 224×224 graph model and layers model (1000 classes, labels file with a background line, range [-1, 1]) explain and predict photos of any size alike', async () => {
    const net = buildMobileNetV2Shaped({ inputShape: [224, 224, 3], alpha: 0.35, numClasses: 1000, seed: 6 });
    const names = Array.from({ length: 1000 }, (_, i) => (i === 207 ? 'golden retriever' : i === 281 ? 'tabby, tabby cat' : `class ${i}`));
    const root = join(dir, 'imagenet');
    const graphDir = join(root, 'graph');
    const layersDir = join(root, 'layers');
    await saveGraphModel(exportGraphModel(net, { foldBatchNorm: true, dynamicSize: true }), graphDir);
    await saveModel(net, layersDir);
    for (const d of [graphDir, layersDir]) {
      fs.writeFileSync(join(d, 'labels.txt'), ['background', ...names].join('\n'));
      fs.writeFileSync(join(d, 'glasswing.json'), JSON.stringify({ inputSize: [224, 224], range: [-1, 1], resize: 'center-crop', cropFraction: 0.875, labels: 'labels.txt', labelsOffset: 1 }));
    }
    net.dispose();
    const big = join(root, 'big.jpg');
    writePhoto(big, 640, 480);
    const g = await run('explain', '--model', graphDir, '--image', big, '--method', 'grad-cam', '--target', 'golden retriever', '--out', join(root, 'g.png'), '--json');
    const l = await run('explain', '--model', layersDir, '--image', big, '--method', 'grad-cam', '--target', '207', '--out', join(root, 'l.png'), '--json');
    expect([g.code, l.code], g.stderr + l.stderr).toEqual([0, 0]);
    const [sg, sl] = [g, l].map((r) => JSON.parse(r.stdout.trim().split('\n').pop()!));
    expect(sg).toMatchObject({ target: 207, targetName: 'golden retriever' });
    expect(sl).toMatchObject({ target: 207, targetName: 'golden retriever', predicted: sg.predicted });
    sg.logits.forEach((v: number, i: number) => expect(Math.abs(v - sl.logits[i])).toBeLessThan(1e-3 * (1 + Math.abs(v))));
    const ig = await run('explain', '--model', graphDir, '--image', join(photos, 'tall.png'), '--method', 'integrated-gradients', '--opt.steps', '8', '--target', 'tabby, tabby cat', '--out', join(root, 'ig.png'), '--json');
    expect(ig.code, ig.stderr).toBe(0);
    expect(JSON.parse(ig.stdout.trim().split('\n').pop()!).target).toBe(281);
    const p = await run('predict', '--model', graphDir, '--images', photos, '--top', '5', '--json');
    expect(p.code).toBe(0);
    const rows = p.stdout.trim().split('\n').map((r) => JSON.parse(r));
    expect(rows).toHaveLength(3);
    for (const r of rows) {
      expect(r.top).toHaveLength(5);
      expect(r.top.every((t: { name: string; index: number }) => t.name === names[t.index])).toBe(true);
    }
  }, 180_000);
});
