/**
 * `glasswing bench smoke`: every registered method with its default options on ImageNet-shaped
 * models (224×224×3, 1000 classes, seeded weights: MobileNetV2- and ResNet-50-shaped) at batch 4 —
 * issue 15's "Done when". Per method: the outcome (ok, a typed refusal such as a latent method that
 * needs a generator of the classifier's image size, another error, a timeout, or a crash of the
 * process), ms per image, the peak of the bytes the backend held during the call (above what was
 * held before it: model weights not included), the wasm heap's size after it, tensors leaked, and
 * whether the backend still computes correctly afterwards.
 *
 * Each (model, method) runs in a child process by default (`isolate`), so a hard crash or a timeout
 * is recorded instead of ending the run; `isolate false` runs everything in this process (what the
 * quick test does).
 *
 * Options: models (mobilenetv2,resnet50), batch (4), size (224), methods (comma list; default all
 * registered), timeout (seconds per method, default 1800), alpha / width (channel multipliers of the
 * MobileNetV2- / ResNet-50-shaped model, default 1), small (use SMALL_OPTIONS: a few steps/samples
 * per method, for tests), warm (run each method once before the measured call, so per-classifier
 * caches do not count as leaks), quick (size 96, alpha 0.35, width 0.25, batch 2, small, warm,
 * in-process).
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { explain, listMethods } from '../src/core/registry.js';
import { GlasswingError, OptionError } from '../src/core/errors.js';
import { buildMobileNetV2Shaped, buildResNet50Shaped } from '../src/models/imagenet-shapes.js';
import { backendHealthy, backendResetCount } from '../src/engine/recovery.js';
import { measurePeakAsync } from '../src/engine/memory.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import '../src/attribution/index.js';
import '../src/attribution/propagation/index.js';
import '../src/counterfactual/index.js';
import '../src/robustness/index.js';
import '../src/interpretation/index.js';

/** Options that keep each method to a few evaluations (tests); methods not listed run with defaults. */
export const SMALL_OPTIONS: Record<string, Record<string, unknown>> = {
  'integrated-gradients': { steps: 4 },
  smoothgrad: { samples: 2 },
  occlusion: { window: 32, stride: 32 },
  lime: { samples: 12, segmentation: 'grid', cellSize: 24 },
  'prediction-difference': { windowSize: 8, padding: 2, stride: 32, samples: 2, maxPatches: 400 },
  pgd: { steps: 2 },
  fgsm: {},
  deepfool: { maxIterations: 2, candidates: 3 },
  geosal: { maxIterations: 2, maxComparisons: 2 },
  'geosal-signed': { maxIterations: 2, maxComparisons: 2 },
  contrast: { weightStep: 0.5 },
  // Captum-parity methods (issue 16)
  'deeplift-shap': { numBaselines: 2 },
  'gradient-shap': { samples: 4 },
  'feature-ablation': { patchSize: 32 },
  'feature-permutation': { patchSize: 32 },
  'shapley-exact': { gridSize: [2, 2] },
  'shapley-sampling': { samples: 2, gridSize: [2, 2] },
  'kernel-shap': { samples: 16, featureMask: 'grid', gridSize: [3, 3] },
  'layer-integrated-gradients': { steps: 4 },
  'layer-conductance': { steps: 4 },
  'neuron-integrated-gradients': { steps: 4 },
  'score-cam': { maxChannels: 8 },
  'activation-max': { steps: 2 },
  'activation-max-code': { steps: 2 },
  'activation-max-expert': { steps: 2 },
};

export type SmokeModel = 'mobilenetv2' | 'resnet50';

export interface SmokeRow {
  model: string;
  method: string;
  /** 'ok', 'refused' (a typed GlasswingError: the method says why it cannot apply), 'error', 'timeout' or 'crash'. */
  outcome: 'ok' | 'refused' | 'error' | 'timeout' | 'crash';
  msPerImage: number;
  peakMB: number;
  heapMB: number;
  leakedTensors: number;
  healthy: boolean;
  resets: number;
  message: string;
}

function buildModel(model: SmokeModel, size: number, alpha: number, width: number) {
  const inputShape: [number, number, number] = [size, size, 3];
  return model === 'mobilenetv2' ? buildMobileNetV2Shaped({ inputShape, alpha }) : buildResNet50Shaped({ inputShape, width });
}

function wasmHeapBytes(): number {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } | null };
  return b.wasm?.HEAPU8?.length ?? 0;
}

/** Run methods on one model in this process. */
export async function smokeInProcess(
  model: SmokeModel, methods: string[],
  o: { batch: number; size: number; alpha: number; width: number; small: boolean; warm?: boolean },
): Promise<SmokeRow[]> {
  await initBackend();
  const m = buildModel(model, o.size, o.alpha, o.width);
  const clf = Classifier.fromModel(m, { name: model });
  const x = tf.randomUniform([o.batch, o.size, o.size, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  const rows: SmokeRow[] = [];
  for (const method of methods) {
    const options = o.small ? SMALL_OPTIONS[method] ?? {} : {};
    if (o.warm) {
      // A first call fills per-classifier caches (e.g. LRP's canonized weights), which are not leaks.
      try {
        (await explain(method, clf, x, { options })).dispose();
      } catch {
        // the measured call records the error
      }
    }
    const before = tf.memory().numTensors;
    const resetsBefore = backendResetCount();
    let outcome: SmokeRow['outcome'] = 'ok';
    let message = '';
    let ms = NaN;
    let peak = 0;
    try {
      const t0 = performance.now();
      const { result, peakBytes } = await measurePeakAsync(() => explain(method, clf, x, { options }));
      ms = (performance.now() - t0) / o.batch;
      peak = peakBytes;
      result.dispose();
    } catch (err) {
      outcome = err instanceof GlasswingError ? (err instanceof OptionError ? 'refused' : 'error') : 'error';
      message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    rows.push({
      model, method, outcome, msPerImage: Math.round(ms), peakMB: Math.round(peak / 2 ** 20), heapMB: Math.round(wasmHeapBytes() / 2 ** 20),
      leakedTensors: tf.memory().numTensors - before, healthy: backendHealthy(), resets: backendResetCount() - resetsBefore, message: message.slice(0, 400),
    });
  }
  x.dispose();
  m.dispose();
  return rows;
}

/** Run one (model, method) in a child process; a crash or timeout becomes a row. */
function smokeChild(model: SmokeModel, method: string, o: { batch: number; size: number; alpha: number; width: number; small: boolean; timeout: number }): Promise<SmokeRow> {
  const self = fileURLToPath(import.meta.url);
  const script = `import(${JSON.stringify(self)}).then(async (m) => { const rows = await m.smokeInProcess(${JSON.stringify(model)}, [${JSON.stringify(method)}], ${JSON.stringify(o)}); console.log('SMOKE ' + JSON.stringify(rows[0])); })`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeout * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('SMOKE '));
      if (line) return resolve(JSON.parse(line.slice(6)) as SmokeRow);
      const timedOut = signal === 'SIGKILL';
      resolve({
        model, method, outcome: timedOut ? 'timeout' : 'crash', msPerImage: NaN, peakMB: NaN, heapMB: NaN, leakedTensors: NaN, healthy: false, resets: 0,
        message: timedOut ? `no result within ${o.timeout} s` : `exit ${code ?? signal}: ${err.trim().split('\n').slice(-3).join(' | ').slice(0, 400)}`,
      });
    });
  });
}

registerBenchmark({
  name: 'smoke',
  description: 'every registered method, default options, on MobileNetV2- and ResNet-50-shaped 224×224 models at batch 4: outcome, ms/image, peak memory, leaks, backend health',
  async run(options: TaskOptions) {
    const quick = Boolean(options.quick);
    const models = String(options.models ?? 'mobilenetv2,resnet50').split(',').map((s) => s.trim()) as SmokeModel[];
    for (const m of models) if (m !== 'mobilenetv2' && m !== 'resnet50') throw new OptionError(`expected models from mobilenetv2, resnet50; got "${m}"`);
    const o = {
      batch: Number(options.batch ?? (quick ? 2 : 4)),
      size: Number(options.size ?? (quick ? 96 : 224)),
      alpha: Number(options.alpha ?? (quick ? 0.35 : 1)),
      width: Number(options.width ?? (quick ? 0.25 : 1)),
      small: quick || options.small === true || options.small === 'true',
      warm: quick || options.warm === true || options.warm === 'true',
      timeout: Number(options.timeout ?? 1800),
    };
    const isolate = options.isolate === undefined ? !quick : options.isolate !== false && options.isolate !== 'false';
    const all = listMethods().map((d) => d.name);
    const methods = options.methods ? String(options.methods).split(',').map((s) => s.trim()) : all;
    const rows: SmokeRow[] = [];
    for (const model of models) {
      if (isolate) {
        for (const method of methods) {
          const row = await smokeChild(model, method, o);
          rows.push(row);
          // One line per row as it finishes (a long run can be read before it ends).
          if (!quick) console.error(`${model} ${method}: ${row.outcome}, ${row.msPerImage} ms/image, peak ${row.peakMB} MB, heap ${row.heapMB} MB, leaked ${row.leakedTensors}, healthy ${row.healthy}, resets ${row.resets}${row.message ? `: ${row.message.slice(0, 160)}` : ''}`);
        }
      } else {
        rows.push(...(await smokeInProcess(model, methods, o)));
      }
    }
    return {
      rows: rows.map((r) => ({
        model: r.model, method: r.method, outcome: r.outcome, 'ms/image': Number.isFinite(r.msPerImage) ? r.msPerImage : '-',
        'peak MB': Number.isFinite(r.peakMB) ? r.peakMB : '-', 'heap MB': Number.isFinite(r.heapMB) ? r.heapMB : '-',
        leaked: Number.isFinite(r.leakedTensors) ? r.leakedTensors : '-', healthy: r.healthy ? 'yes' : 'no', message: r.message.slice(0, 160),
      })),
      json: { options: o, rows },
      jsonLines: rows as unknown as Array<Record<string, unknown>>,
    };
  },
});
