/**
 * `glasswing bench engine`: ms per image of forward passes, input gradients and a training step on
 * the current backend, with Glasswing's replacement wasm kernels (default) or the stock tfjs ones.
 *
 * Options: quick (fewer repeats, no ResNet-18, no method rows), stock (run with the stock wasm
 * kernels), compare (run both, stock first), resnet (false skips ResNet-18), methods (false skips the
 * gradient family's rows: saliency, gradient × input, guided backprop, deconvnet, Grad-CAM and
 * guided Grad-CAM with their default options on the same MNIST CNN, batch 1 and 32 — the issue 14
 * comparison; run /work/shared/peer/torch_floor.py in the same minutes), repeats (number).
 * GLASSWING_STOCK_KERNELS=1 also gives the stock kernels (they are then never installed).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../src/engine/backend.js';
import { installWasmKernels, stockKernelsRequested, uninstallWasmKernels, wasmKernelsInstalled } from '../src/engine/wasm-kernels/index.js';
import { Classifier } from '../src/core/classifier.js';
import { inputGradient } from '../src/core/scores.js';
import { getMethod } from '../src/core/registry.js';
import '../src/attribution/index.js';
import { buildResNet18 } from '../src/models/resnet.js';
import { registerBenchmark, type TaskOptions } from '../src/tasks/registry.js';
import { loadavg } from 'node:os';

type Row = { case: string; batch: number; backend: string; kernels: string; ms_per_image: number; min_ms_per_image: number; cpu_ms_per_image: number; note: string };

/** Process CPU time in ms (Node), NaN elsewhere. */
function cpuMs(): number {
  return typeof process !== 'undefined' && typeof process.cpuUsage === 'function' ? (() => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; })() : NaN;
}

/**
 * Median and minimum wall time, and median process CPU time, in ms over `repeats` runs after
 * `warmup` runs. On a shared machine the CPU time (one wasm thread: the per-core cost) is far less
 * disturbed by other jobs than the wall time; it also counts V8's garbage-collector threads.
 */
async function timeRuns(fn: () => void, repeats: number, warmup: number): Promise<{ median: number; min: number; cpu: number }> {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const c = cpuMs();
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
    cpu.push(cpuMs() - c);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], min: times[0], cpu: cpu[Math.floor(cpu.length / 2)] };
}

/** The MNIST CNN of conformance FORMAT.md §2.1, seeded. */
export function mnistCnn(seed = 0): tfl.Sequential {
  const init = (k: number) => tfl.initializers.glorotUniform({ seed: seed * 10 + k });
  return tfl.sequential({ layers: [
    tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 5, padding: 'same', activation: 'relu', name: 'conv1', kernelInitializer: init(1) }),
    tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool1' }),
    tfl.layers.conv2d({ filters: 64, kernelSize: 5, padding: 'same', activation: 'relu', name: 'conv2', kernelInitializer: init(2) }),
    tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool2' }),
    tfl.layers.flatten({ name: 'flatten' }),
    tfl.layers.dense({ units: 128, activation: 'relu', name: 'fc1', kernelInitializer: init(3) }),
    tfl.layers.dense({ units: 10, name: 'fc2', kernelInitializer: init(4) }),
  ] });
}

function targetsFor(n: number, classes: number): number[] {
  return Array.from({ length: n }, (_, i) => i % classes);
}

type Mode = 'stock' | 'glasswing';

function setMode(backend: string, mode: Mode): void {
  if (backend !== 'wasm') return;
  if (mode === 'stock') uninstallWasmKernels();
  else installWasmKernels();
}

/**
 * Every case runs in each mode back to back (stock, then Glasswing), so both see the same machine
 * load; rows come out grouped by mode.
 */
/** The gradient family of issue 14, each with its registered default options. */
export const GRADIENT_FAMILY = ['saliency', 'gradient-x-input', 'guided-backprop', 'deconvnet', 'grad-cam', 'guided-grad-cam'];

async function measure(modes: Mode[], backend: string, o: { repeats: number; resnet: boolean; methods: boolean }): Promise<Row[]> {
  const rows: Row[] = [];
  const reps = o.repeats;
  const add = async (c: string, batch: number, fn: () => void, repeats: number, warmup: number) => {
    for (const mode of modes) {
      setMode(backend, mode);
      const kernels = backend === 'wasm' ? mode : 'n/a';
      try {
        const t = await timeRuns(fn, repeats, warmup);
        rows.push({ case: c, batch, backend, kernels, ms_per_image: t.median / batch, min_ms_per_image: t.min / batch, cpu_ms_per_image: t.cpu / batch, note: '' });
      } catch (e) {
        rows.push({ case: c, batch, backend, kernels, ms_per_image: NaN, min_ms_per_image: NaN, cpu_ms_per_image: NaN, note: `failed: ${String((e as Error).message ?? e).slice(0, 80)}` });
      }
    }
  };

  const model = mnistCnn(0);
  const clf = Classifier.fromModel(model);
  for (const batch of [1, 32]) {
    const x = tf.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', batch);
    await add('mnist-cnn forward', batch, () => {
      const y = clf.logits(x);
      y.dataSync();
      y.dispose();
    }, reps, 2);
    const targets = targetsFor(batch, 10);
    await add('mnist-cnn input gradient', batch, () => {
      const { grad, scores } = inputGradient(clf, x, targets);
      grad.dataSync();
      tf.dispose([grad, scores]);
    }, reps, 2);
    if (o.methods) {
      for (const name of GRADIENT_FAMILY) {
        const method = getMethod(name);
        await add(`mnist-cnn ${name}`, batch, () => {
          const r = method.run(clf, x as tf.Tensor4D, targets, { ...method.defaults }, {});
          if (r instanceof Promise) throw new Error(`method ${name} is asynchronous; this benchmark times synchronous runs`);
          r.attribution.dataSync();
          tf.dispose([r.attribution, ...Object.values(r.extras ?? {}).filter((v): v is tf.Tensor => v instanceof tf.Tensor)]);
        }, reps, 2);
      }
    }
    x.dispose();
  }
  {
    const batch = 64;
    const x = tf.randomUniform([batch, 28, 28, 1], 0, 1, 'float32', 64);
    const y = tf.oneHot(tf.tensor1d(targetsFor(batch, 10), 'int32'), 10);
    // fc2 gives logits: softmax cross-entropy, one Adam update of all weights per step
    const opt = tf.train.adam(1e-3);
    const step = () => {
      const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true);
      cost?.dataSync();
      cost?.dispose();
    };
    await add('mnist-cnn Adam training step', batch, step, Math.max(3, Math.ceil(reps / 2)), 1);
    opt.dispose();
    tf.dispose([x, y]);
  }
  model.dispose();

  if (o.resnet) {
    const net = buildResNet18({ seed: 0 });
    const rc = Classifier.fromModel(net);
    const x = tf.randomUniform([1, 224, 224, 3], 0, 1, 'float32', 224);
    const r = Math.max(3, Math.ceil(reps / 2));
    await add('resnet18-224 forward', 1, () => {
      const y = rc.logits(x);
      y.dataSync();
      y.dispose();
    }, r, 1);
    await add('resnet18-224 input gradient', 1, () => {
      const { grad, scores } = inputGradient(rc, x, [3]);
      grad.dataSync();
      tf.dispose([grad, scores]);
    }, r, 1);
    x.dispose();
    net.dispose();
  }
  const order = (m: string) => (m === 'stock' ? 0 : 1);
  return rows.map((row, i) => ({ row, i })).sort((p, q) => order(p.row.kernels) - order(q.row.kernels) || p.i - q.i).map((p) => p.row);
}

function flag(v: unknown): boolean {
  return v === true || v === 'true' || v === 1 || v === '1';
}

export async function runEngineBenchmark(options: TaskOptions = {}): Promise<{ rows: Row[]; json: Record<string, unknown> }> {
  const backend = await initBackend();
  const quick = Boolean(options.quick);
  const repeats = Number.isFinite(Number(options.repeats)) && Number(options.repeats) >= 1 ? Math.floor(Number(options.repeats)) : quick ? 3 : 9;
  const resnet = options.resnet === undefined ? !quick : flag(options.resnet);
  const methods = options.methods === undefined ? !quick : flag(options.methods);
  const modes: Mode[] = [];
  if (backend !== 'wasm') modes.push('glasswing');
  else if (flag(options.compare)) modes.push('stock', 'glasswing');
  else if (flag(options.stock) || stockKernelsRequested()) modes.push('stock');
  else modes.push('glasswing');

  const wasInstalled = wasmKernelsInstalled();
  let rows: Row[] = [];
  try {
    rows = await measure(modes, backend, { repeats, resnet, methods });
  } finally {
    if (backend === 'wasm') {
      if (wasInstalled) installWasmKernels();
      else uninstallWasmKernels();
    }
  }
  // The machine's load changes the figures a lot (2 shared cores): record it with them.
  const json: Record<string, unknown> = { backend, repeats, loadavg1: loadavg()[0], figures: rows.map((r) => ({ ...r })) };
  return { rows, json };
}

registerBenchmark({
  name: 'engine',
  description: 'ms/image: MNIST CNN forward, input gradient and the gradient family (batch 1, 32), Adam step (batch 64); ResNet-18 224² forward and input gradient',
  run: (options) => runEngineBenchmark(options),
});
