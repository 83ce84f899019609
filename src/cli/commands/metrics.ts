/**
 * `glasswing metrics`: list the evaluation metrics; `glasswing metrics run` scores one method with
 * one metric on a model's test images (per-image scores, their mean, the mean curve).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../core/classifier.js';
import { getMethod } from '../../core/registry.js';
import { OptionError } from '../../core/errors.js';
import { parseTarget } from '../../core/target.js';
import { getMetric, listMetrics, evaluateMetric as evaluate, metricHigherIsBetter } from '../../metrics/index.js';
import { biasedMnist, listImageFolder, loadFashionMnist, loadMnist, readImages } from '../../data/index.js';
import { gaussianBlur } from '../../attribution/math.js';
import { flag, methodOptions, num, str } from '../args.js';
import { resolveClassifier, DEFAULT_MODEL } from '../model-arg.js';
import type { Command } from './index.js';

/**
 * Test images for a model: MNIST (Fashion-MNIST for fashion-cnn) test digits for 28×28×1 models —
 * biased-MNIST 8s with their square for localisation, or for mnist-cnn-biased — else seeded smooth
 * random images in the model's input range.
 */
export async function imagesFor(classifier: Classifier, modelName: string, count: number, opts: { localisation?: boolean; dir?: string } = {}): Promise<{ x: tf.Tensor4D; labels?: number[]; source: string }> {
  const [h, w, c] = classifier.inputShape;
  if (opts.dir) {
    // A folder of PNG/JPEG files (sub-folders as classes, or loose files), the first `count` in sorted order.
    const files = listImageFolder(opts.dir).files.slice(0, count);
    if (files.length === 0) throw new OptionError(`expected PNG or JPEG files in --images "${opts.dir}"; found none`);
    const x = await readImages(files, classifier.inputShape, { range: [classifier.domain.low, classifier.domain.high] });
    return { x, source: `${files.length} images from ${opts.dir}` };
  }
  if (h === 28 && w === 28 && c === 1) {
    const fashion = modelName === 'fashion-cnn';
    const test = fashion ? await loadFashionMnist({ split: 'test' }) : await loadMnist({ split: 'test' });
    try {
      const biased = !fashion && (opts.localisation || modelName === 'mnist-cnn-biased');
      const ds = biased ? biasedMnist(test) : test;
      try {
        const labels = Array.from(ds.labels);
        const picks = opts.localisation
          ? labels.map((l, i) => [l, i]).filter(([l]) => l === 8).slice(0, count).map(([, i]) => i)
          : Array.from({ length: Math.min(count, labels.length) }, (_, i) => i);
        const x = tf.tidy(() => tf.gather(ds.images, picks)) as tf.Tensor4D;
        const source = `${ds.name}${opts.localisation ? ' (8s with the square)' : ''}`;
        return { x, labels: picks.map((i) => labels[i]), source };
      } finally {
        if (ds !== test) ds.dispose();
      }
    } finally {
      test.dispose();
    }
  }
  const { low, high } = classifier.domain;
  const x = tf.tidy(() => {
    const u = tf.randomUniform([count, h, w, c], low, high, 'float32', 7) as tf.Tensor4D;
    return gaussianBlur(u, Math.max(1, h / 56));
  });
  return { x, source: 'seeded smooth random images' };
}

function jsonOption(args: Parameters<Command['run']>[0], key: string): Record<string, unknown> {
  const v = str(args, key);
  if (!v) return {};
  try {
    const o = JSON.parse(v);
    if (o && typeof o === 'object' && !Array.isArray(o)) return o;
  } catch {
    // fall through
  }
  throw new OptionError(`expected --${key} to be a JSON object such as '{"steps": 16}'; got ${v}`);
}

export const metricsCommand: Command = {
  name: 'metrics',
  summary: 'list the explanation metrics, or score a method with one (metrics run)',
  usage: [
    'glasswing metrics [--json]',
    'glasswing metrics run --metric NAME --method NAME [--model DIR|NAME] [--images DIR] [--count N] [--target T]',
    '                      [--opt.KEY VALUE ...] [--options JSON] [--method-options JSON] [--json]',
    '',
    '  --metric          a registered metric (glasswing metrics lists them)',
    '  --method          a registered method (glasswing methods lists them)',
    '  --model           a folder with model.json, or a shipped model name (default: mnist-cnn; mnist-cnn-biased for localisation metrics)',
    '  --images          a folder of PNG/JPEG files to use instead of test images (resized to the model\'s input)',
    '  --count           test images (default 8; localisation metrics take biased-MNIST 8s with their square)',
    '  --opt.KEY         a metric option, e.g. --opt.steps 50 --opt.order lerf; --options JSON sets several',
    '  --method-options  the method\'s options as JSON, e.g. \'{"steps": 16}\'',
    '  --json            one JSON line: scores, mean, the mean curves and scalar extras',
  ].join('\n'),
  async run(args) {
    const sub = args.positional[0];
    if (!sub) {
      const metrics = listMetrics();
      if (flag(args, 'json')) {
        process.stdout.write(JSON.stringify(metrics.map((m) => ({
          name: m.name, family: m.family, description: m.description, higherIsBetter: metricHigherIsBetter(m.name), reexplains: m.reexplains, defaults: m.defaults,
        }))) + '\n');
        return;
      }
      const width = Math.max(...metrics.map((m) => m.name.length));
      let family = '';
      for (const m of metrics) {
        if (m.family !== family) {
          family = m.family;
          process.stdout.write(`\n${family}\n`);
        }
        const dir = metricHigherIsBetter(m.name) ? '↑' : '↓';
        process.stdout.write(`  ${m.name.padEnd(width)}  ${dir} ${m.description}${m.reexplains ? ' [re-runs the method]' : ''}\n`);
        const defaults = Object.entries(m.defaults).filter(([, v]) => v === null || typeof v !== 'object' || Array.isArray(v));
        if (defaults.length) process.stdout.write(`  ${' '.repeat(width)}    options: ${defaults.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}\n`);
      }
      process.stdout.write('\n↑ higher is better, ↓ lower is better\n');
      return;
    }
    if (sub !== 'run') throw new OptionError(`expected "glasswing metrics" or "glasswing metrics run"; got "${sub}"`);
    const metricName = str(args, 'metric');
    if (!metricName) throw new OptionError('expected --metric NAME; got none');
    const metric = getMetric(metricName);
    const methodName = str(args, 'method', 'gradient');
    getMethod(methodName);
    const localisation = metric.family === 'localisation';
    const modelName = str(args, 'model', localisation ? 'mnist-cnn-biased' : DEFAULT_MODEL);
    const count = Math.floor(num(args, 'count', 8));
    if (!(count >= 1)) throw new OptionError(`expected --count to be a positive integer; got ${count}`);
    const classifier = await resolveClassifier(modelName);
    const { x, source } = await imagesFor(classifier, modelName, count, { localisation, dir: str(args, 'images') });
    try {
      const r = await evaluate(metricName, classifier, x, methodName, {
        target: parseTarget(str(args, 'target', 'predicted'), classifier.classNames),
        options: methodOptions(args),
        methodOptions: jsonOption(args, 'method-options'),
      });
      const scalar = (v: unknown) => (typeof v === 'number' ? Number(v.toPrecision(6)) : v);
      const extras = Object.fromEntries(Object.entries(r.extras).filter(([, v]) => typeof v === 'number' || typeof v === 'string' || (Array.isArray(v) && v.length <= 64)));
      if (flag(args, 'json')) {
        process.stdout.write(JSON.stringify({
          metric: r.metric, method: methodName, model: classifier.name, images: source, count: x.shape[0], higherIsBetter: r.higherIsBetter,
          mean: scalar(r.mean), scores: r.scores.map(scalar), target: r.target, timeMs: Number(r.timeMs.toFixed(1)), resampled: r.resampled,
          curves: r.curves.map((c) => ({ name: c.name, xLabel: c.xLabel, yLabel: c.yLabel, x: c.x, labels: c.labels, mean: c.mean.map(scalar) })),
          extras, options: r.options,
        }) + '\n');
        return;
      }
      process.stdout.write(`${r.metric} of ${methodName} on ${classifier.name} (${source}, ${x.shape[0]} images): mean ${r.mean.toPrecision(4)} ` +
        `(${r.higherIsBetter ? 'higher' : 'lower'} is better), ${(r.timeMs / x.shape[0]).toFixed(1)} ms/image\n`);
      process.stdout.write(`  scores: ${r.scores.map((s) => s.toPrecision(4)).join(' ')}\n`);
      for (const c of r.curves) {
        const pick = c.mean.length <= 11 ? c.mean.map((_, i) => i) : Array.from({ length: 11 }, (_, i) => Math.round((i * (c.mean.length - 1)) / 10));
        process.stdout.write(`  ${c.name} (${c.yLabel} vs ${c.xLabel}): ${pick.map((i) => `${c.labels?.[i] ?? Number(c.x[i].toFixed(2))}:${c.mean[i].toPrecision(3)}`).join(' ')}\n`);
      }
    } finally {
      x.dispose();
    }
  },
};
