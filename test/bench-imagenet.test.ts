// `glasswing bench imagenet --quick` at a reduced input size: it runs every quick method on both
// ImageNet-shaped models and emits one well-formed JSON line per row plus a summary line. No timing
// is asserted (the machine is shared); only that the figures exist, are finite and are positive.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { benchCommand } from '../src/cli/commands/tasks.js';
import { parseArgs } from '../src/cli/args.js';

let lines: string[] = [];
const write = process.stdout.write.bind(process.stdout);

beforeAll(async () => {
  await initBackend('wasm');
});

afterAll(() => {
  process.stdout.write = write;
});

describe('bench imagenet --quick', () => {
  it('prints a table and one JSON line per row plus a summary, every row finite, no tensor left behind', async () => {
    const before = tf.memory().numTensors;
    let out = '';
    process.stdout.write = ((chunk: string | Uint8Array) => {
      out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      return true;
    }) as typeof process.stdout.write;
    try {
      await benchCommand.run(parseArgs(['imagenet', '--quick', '--size', '32', '--repeats', '1', '--json']));
    } finally {
      process.stdout.write = write;
    }
    expect(out).toMatch(/model\s+method\s+batch\s+ms_per_image/);
    lines = out.split('\n').filter((l) => l.startsWith('{'));
    const json = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = json.pop()!;
    expect(summary.bench).toBe('imagenet');
    expect(summary.size).toBe(32);
    expect(summary.failed).toBe(0);
    expect(summary.rows).toBe(json.length);
    const methods = ['forward', 'input gradient', 'integrated-gradients (4 steps)', 'grad-cam', 'lrp epsilon-plus-flat', 'occlusion (16×16, stride 16)'];
    expect(json.map((r) => `${r.model}|${r.method}|${r.batch}`)).toEqual(
      ['MobileNetV2-shaped', 'ResNet-50-shaped'].flatMap((m) => methods.map((k) => `${m}|${k}|1`)),
    );
    for (const r of json) {
      expect(r.bench).toBe('imagenet');
      expect(r.note).toBe('');
      for (const k of ['ms_per_image', 'first_ms', 'peak_tensor_mb', 'wasm_heap_mb', 'runs']) {
        expect(typeof r[k]).toBe('number');
        expect(r[k] as number).toBeGreaterThan(0);
      }
      expect(Number.isFinite(r.load)).toBe(true);
    }
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
  }, 240_000);

  it('rejects an unknown model or method with a one-line error', async () => {
    await expect(benchCommand.run(parseArgs(['imagenet', '--models', 'vgg16']))).rejects.toThrow(/expected --models from mobilenetv2, resnet50, resnet18; got "vgg16"/);
    await expect(benchCommand.run(parseArgs(['imagenet', '--methods', 'nope']))).rejects.toThrow(/expected --methods from .*got "nope"/);
  });
});
