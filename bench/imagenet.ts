/**
 * `glasswing bench imagenet`: ms per image and peak memory of the explanation methods on
 * ImageNet-sized models (224×224×3, 1000 classes, seeded random weights — timing does not depend on
 * training): MobileNetV2-shaped, ResNet-50-shaped and ResNet-18 (the model of the PyTorch/Captum/
 * Zennit peer figures in issue 15), at batch 1 and 8.
 *
 * Methods (keys for --methods): forward, gradient, ig (integrated gradients, 50 steps), smoothgrad
 * (25 samples), grad-cam, guided-backprop, lrp (ε-plus-flat), occlusion (32×32 windows over all 3
 * channels, stride 16: 169 windows), occlusion-peer (16×16, stride 8: 729 windows, the peer's
 * configuration; only when asked for), lime (1000 samples).
 *
 * Options: quick (batch 1, small steps/samples, 2 models), models (comma list of mobilenetv2,
 * resnet50, resnet18), batch (comma list, default 1,8), methods (comma list), repeats (timed runs of
 * a fast method, default 3), size (input side, default 224; tests use a small one), peer (a JSON
 * file written by bench/peer/torch_shapes.py --json or ../shared/peer/torch_floor.py --json: adds
 * PyTorch's ms/image and the ratio to the forward and gradient rows).
 *
 * Timing: the model is warmed up once (forward and gradient: XNNPACK packs its weights, the flipped
 * filters are cached), then each method runs once (first_ms: with its one-time set-up, e.g. LRP's
 * BatchNorm folding and modified weights); single-pass methods (forward, gradient, Grad-CAM, guided
 * backprop, LRP) and any method whose first run took < 2 s are then timed over `repeats` more runs
 * and the median is reported; the sampling methods (IG, SmoothGrad, occlusion, LIME) report their
 * single run. Every option not named above is the method's default, so internal batches are what the
 * memory budget (src/engine/memory.ts) gives — e.g. one image per backward pass on ResNet-50 under
 * the default 1 GiB budget, so batch 8 costs about 8× batch 1 there.
 *
 * Memory per row: peak_tensor_mb is the highest tf.memory().numBytes seen during the row (model
 * weights included: every tensor the engine tracks), wasm_heap_mb the wasm heap's size after the row
 * (it only grows, so it is the peak of the process up to that row; kernel scratch buffers included).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { initBackend, wasmThreadCount } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { explain } from '../src/core/registry.js';
import { OptionError } from '../src/core/errors.js';
import { buildResNet18 } from '../src/models/resnet.js';
import { clearWeightCache } from '../src/attribution/propagation/weight-cache.js';
import { buildMobileNetV2Shaped, buildResNet50Shaped } from '../src/models/imagenet-shapes.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import '../src/attribution/index.js';
import '../src/attribution/propagation/index.js';

/** One method as benchmarked: a registered method with fixed options (or the plain forward pass). */
interface MethodCase {
  key: string;
  label: string;
  method: string;
  options: Record<string, unknown>;
}

/** The model builders by --models key. */
const MODELS: Record<string, { label: string; build: (size: number) => tfl.LayersModel }> = {
  mobilenetv2: { label: 'MobileNetV2-shaped', build: (size) => buildMobileNetV2Shaped({ inputShape: [size, size, 3], numClasses: 1000, seed: 0 }) },
  resnet50: { label: 'ResNet-50-shaped', build: (size) => buildResNet50Shaped({ inputShape: [size, size, 3], numClasses: 1000, seed: 0 }) },
  resnet18: { label: 'ResNet-18', build: (size) => buildResNet18({ inputShape: [size, size, 3], numClasses: 1000, seed: 0 }) },
};

/** Full-size cases; `quick` scales steps, samples and windows down. */
function methodCases(size: number, quick: boolean): MethodCase[] {
  const win = quick ? Math.max(1, Math.floor(size / 2)) : Math.min(32, size);
  const stride = quick ? win : Math.max(1, Math.floor(win / 2));
  return [
    { key: 'forward', label: 'forward', method: 'forward', options: {} },
    { key: 'gradient', label: 'input gradient', method: 'gradient', options: {} },
    { key: 'ig', label: `integrated-gradients (${quick ? 4 : 50} steps)`, method: 'integrated-gradients', options: { steps: quick ? 4 : 50 } },
    { key: 'smoothgrad', label: `smoothgrad (${quick ? 3 : 25} samples)`, method: 'smoothgrad', options: { samples: quick ? 3 : 25 } },
    { key: 'grad-cam', label: 'grad-cam', method: 'grad-cam', options: {} },
    { key: 'guided-backprop', label: 'guided-backprop', method: 'guided-backprop', options: {} },
    { key: 'lrp', label: 'lrp epsilon-plus-flat', method: 'lrp', options: { composite: 'epsilon-plus-flat' } },
    { key: 'occlusion', label: `occlusion (${win}×${win}, stride ${stride})`, method: 'occlusion', options: { window: win, stride } },
    { key: 'occlusion-peer', label: 'occlusion (16×16, stride 8)', method: 'occlusion', options: { window: Math.min(16, size), stride: 8 } },
    { key: 'lime', label: `lime (${quick ? 16 : 1000} samples)`, method: 'lime', options: { samples: quick ? 16 : 1000 } },
  ];
}

/** Methods that are one pass over the network (plus set-up): always timed over repeats after the first run. */
const SINGLE_PASS = new Set(['forward', 'gradient', 'grad-cam', 'guided-backprop', 'lrp']);

const DEFAULT_METHODS = ['forward', 'gradient', 'ig', 'smoothgrad', 'grad-cam', 'guided-backprop', 'lrp', 'occlusion', 'lime'];
const QUICK_METHODS = ['forward', 'gradient', 'ig', 'grad-cam', 'lrp', 'occlusion'];

/**
 * PyTorch + Captum + Zennit on this machine (2 threads), ResNet-18 224², batch 1, ms/image (issue 15).
 * The occlusion figure is for 16×16 windows at stride 8 (729 windows), compared with occlusion-peer.
 */
const ISSUE_PEER_RESNET18: Record<string, number> = {
  forward: 60, gradient: 140, ig: 6424, 'grad-cam': 80, lrp: 429, 'occlusion-peer': 46645, lime: 70782,
};

export type ImagenetRow = {
  model: string;
  method: string;
  batch: number;
  ms_per_image: number;
  /** The first run (one-time set-up included), per image. */
  first_ms: number;
  runs: number;
  peak_tensor_mb: number;
  wasm_heap_mb: number;
  peer_ms: number | string;
  ratio: number | string;
  load: number;
  note: string;
};

/** Peer ms/image keyed `model|what|batch` from the JSON line of a peer script. */
function readPeer(file: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (!file) return out;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new OptionError(`expected --peer to name a readable JSON file from the peer script; got ${file} (${(e as Error).message})`);
  }
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    let parsed: { rows?: Array<{ model: string; what: string; batch: number; ms_per_image: number }> };
    try {
      parsed = JSON.parse(t);
    } catch {
      continue;
    }
    for (const r of parsed.rows ?? []) {
      const what = r.what === 'forward' ? 'forward' : r.what === 'forward+input_grad' ? 'gradient' : r.what;
      out.set(`${r.model}|${what}|${r.batch}`, r.ms_per_image);
    }
  }
  if (out.size === 0) throw new OptionError(`expected --peer ${file} to hold a JSON line with "rows" (torch_shapes.py --json); found none`);
  return out;
}

/**
 * Track the highest tf.memory().numBytes while `fn` runs: the engine's byte counter is watched
 * through an accessor on its state object (put back as a plain value afterwards), so every tensor
 * allocation is seen without tf.profile's per-kernel records.
 */
async function withPeakBytes<T>(fn: () => Promise<T>): Promise<{ value: T; peakBytes: number }> {
  const state = (tf.engine() as unknown as { state: { numBytes: number } }).state;
  let current = state.numBytes;
  let peak = current;
  Object.defineProperty(state, 'numBytes', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (v: number) => {
      current = v;
      if (v > peak) peak = v;
    },
  });
  try {
    const value = await fn();
    return { value, peakBytes: peak };
  } finally {
    Object.defineProperty(state, 'numBytes', { configurable: true, enumerable: true, writable: true, value: current });
  }
}

/** Size of the wasm heap in bytes (0 on other backends). */
function wasmHeapBytes(): number {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength ?? 0;
}

function list(v: unknown, fallback: string[]): string[] {
  if (v === undefined || v === true || v === '') return fallback;
  return String(v).split(',').map((s) => s.trim()).filter(Boolean);
}

function mb(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}

/**
 * Run one method once on x through `explain` — as a user calls it, so per-image methods (LRP) are
 * chunked to the memory budget — and return the method's own time (explain's timeMs: without input
 * validation and the logits pass explain makes first; the attribution is read back, so the work is done).
 */
async function runOnce(clf: Classifier, c: MethodCase, x: tf.Tensor4D, targets: number[]): Promise<number> {
  if (c.method === 'forward') {
    const t = performance.now();
    const y = clf.logits(x);
    await y.data();
    y.dispose();
    return performance.now() - t;
  }
  const e = await explain(c.method, clf, x, { target: targets, options: c.options });
  const ms = e.timeMs;
  e.dispose();
  return ms;
}

export async function runImagenetBenchmark(options: TaskOptions = {}, onRow?: (row: ImagenetRow) => void): Promise<{ rows: ImagenetRow[]; json: Record<string, unknown> }> {
  const backend = await initBackend();
  const quick = Boolean(options.quick);
  const size = options.size === undefined ? 224 : Number(options.size);
  if (!Number.isInteger(size) || size < 32) throw new OptionError(`expected --size to be an integer ≥ 32; got ${String(options.size)}`);
  const repeats = options.repeats === undefined ? 3 : Number(options.repeats);
  if (!Number.isInteger(repeats) || repeats < 0) throw new OptionError(`expected --repeats to be an integer ≥ 0; got ${String(options.repeats)}`);
  const modelKeys = list(options.models, quick ? ['mobilenetv2', 'resnet50'] : ['mobilenetv2', 'resnet50', 'resnet18']);
  for (const m of modelKeys) if (!MODELS[m]) throw new OptionError(`expected --models from ${Object.keys(MODELS).join(', ')}; got "${m}"`);
  const batches = list(options.batch, quick ? ['1'] : ['1', '8']).map(Number);
  for (const b of batches) if (!Number.isInteger(b) || b < 1) throw new OptionError(`expected --batch to list positive integers; got ${String(options.batch)}`);
  const cases = methodCases(size, quick);
  const methodKeys = list(options.methods, quick ? QUICK_METHODS : DEFAULT_METHODS);
  for (const k of methodKeys) if (!cases.some((c) => c.key === k)) throw new OptionError(`expected --methods from ${cases.map((c) => c.key).join(', ')}; got "${k}"`);
  const peer = readPeer(options.peer === undefined ? undefined : String(options.peer));

  const rows: ImagenetRow[] = [];
  const started = Date.now();
  for (const modelKey of modelKeys) {
    const spec = MODELS[modelKey];
    const model = spec.build(size);
    const clf = Classifier.fromModel(model, { name: modelKey });
    try {
      for (const batch of batches) {
        const x = tf.randomUniform([batch, size, size, 3], 0, 1, 'float32', 11 + batch) as tf.Tensor4D;
        const targets = Array.from({ length: batch }, (_, i) => (i * 97 + 3) % clf.numClasses);
        // Warm-up: weight packing and derived-filter caches, shared by every method below.
        await runOnce(clf, cases[0], x, targets);
        await runOnce(clf, cases[1], x, targets);
        for (const key of methodKeys) {
          const c = cases.find((k) => k.key === key)!;
          const load = +loadavg()[0].toFixed(2);
          let row: ImagenetRow;
          try {
            const { value: first, peakBytes } = await withPeakBytes(() => runOnce(clf, c, x, targets));
            const times = [first];
            if ((SINGLE_PASS.has(c.key) || first < 2000) && repeats > 0) {
              times.length = 0;
              for (let i = 0; i < repeats; i++) times.push(await runOnce(clf, c, x, targets));
            }
            times.sort((a, b) => a - b);
            const ms = times[Math.floor(times.length / 2)] / batch;
            const peerMs = peer.get(`${modelKey}|${c.key}|${batch}`) ?? (modelKey === 'resnet18' && batch === 1 && size === 224 ? ISSUE_PEER_RESNET18[c.key] : undefined);
            row = {
              model: spec.label, method: c.label, batch, ms_per_image: +ms.toFixed(1), first_ms: +(first / batch).toFixed(1), runs: times.length,
              peak_tensor_mb: mb(peakBytes), wasm_heap_mb: mb(wasmHeapBytes()),
              peer_ms: peerMs ?? '', ratio: peerMs ? +(ms / peerMs).toFixed(2) : '', load, note: '',
            };
          } catch (e) {
            row = {
              model: spec.label, method: c.label, batch, ms_per_image: NaN, first_ms: NaN, runs: 0, peak_tensor_mb: NaN, wasm_heap_mb: mb(wasmHeapBytes()),
              peer_ms: '', ratio: '', load, note: `failed: ${String((e as Error).message ?? e).slice(0, 100)}`,
            };
          }
          rows.push(row);
          onRow?.(row);
          process.stderr.write(`  ${row.model} b${batch} ${row.method}: ${row.ms_per_image} ms/image, peak ${row.peak_tensor_mb} MB, heap ${row.wasm_heap_mb} MB (load ${load})${row.note ? ' ' + row.note : ''}\n`);
        }
        x.dispose();
      }
    } finally {
      // LRP keeps folded and modified weights per graph (the model's and its canonized copy): release them with the model.
      clearWeightCache();
      model.dispose();
    }
  }
  const json: Record<string, unknown> = {
    backend, wasm_threads: await wasmThreadCount(), size, quick, models: modelKeys, batches, methods: methodKeys, rows: rows.length,
    failed: rows.filter((r) => r.note).length, seconds: Math.round((Date.now() - started) / 1000),
    max_wasm_heap_mb: Math.max(0, ...rows.map((r) => r.wasm_heap_mb)), loadavg1: +loadavg()[0].toFixed(2),
  };
  return { rows, json };
}

registerBenchmark({
  name: 'imagenet',
  description: 'ms/image and peak memory of forward, gradient, IG-50, SmoothGrad-25, Grad-CAM, guided backprop, LRP ε-plus-flat, occlusion, LIME-1000 on 224² MobileNetV2-/ResNet-50-shaped models and ResNet-18, batch 1 and 8',
  run: async (options) => {
    const r = await runImagenetBenchmark(options);
    return { rows: r.rows, json: r.json, jsonLines: r.rows.map((row) => ({ ...row })) };
  },
});
