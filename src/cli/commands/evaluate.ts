import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadMnist, loadFashionMnist, biasedMnist, type Dataset } from '../../data/index.js';
import { DEFAULT_MODELS, evaluate, plotConfusionMatrix, plotErrors } from '../../models/index.js';
import { formatTable } from '../../tasks/registry.js';
import { flag, str } from '../args.js';
import { resolveClassifier } from '../model-arg.js';
import type { Command } from './index.js';

type DatasetName = 'mnist' | 'fashion' | 'biased-mnist';

async function testSet(name: DatasetName): Promise<Dataset> {
  if (name === 'fashion') return loadFashionMnist({ split: 'test' });
  const mnist = await loadMnist({ split: 'test' });
  if (name === 'mnist') return mnist;
  const biased = biasedMnist(mnist);
  mnist.dispose();
  return biased;
}

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'accuracy, confusion matrix and errors of a model (default: every shipped model)',
  usage: [
    'glasswing evaluate [--model DIR|NAME] [--dataset mnist|fashion|biased-mnist] [--plots DIR] [--json]',
    '',
    '  without --model, evaluates every shipped default model on its own test split and checks its accuracy bar',
    '  --plots DIR  also write confusion-matrix and error-grid PNGs there',
  ].join('\n'),
  async run(args) {
    const modelArg = str(args, 'model');
    const plots = str(args, 'plots');
    const targets = modelArg
      ? [{ name: modelArg, dataset: (str(args, 'dataset', 'mnist') as DatasetName), minAccuracy: undefined as number | undefined }]
      : DEFAULT_MODELS.map((m) => ({
          name: m.name,
          // The biased model is judged on the data it was trained for: MNIST with the square on every 8.
          dataset: (m.name === 'mnist-cnn-biased' ? 'biased-mnist' : m.dataset) as DatasetName,
          minAccuracy: m.accuracyBar as number | undefined,
        }));
    const rows: Array<Record<string, string | number>> = [];
    const cache = new Map<DatasetName, Dataset>();
    for (const t of targets) {
      if (!cache.has(t.dataset)) cache.set(t.dataset, await testSet(t.dataset));
      const ds = cache.get(t.dataset)!;
      const classifier = await resolveClassifier(t.name);
      const r = await evaluate(classifier, ds);
      rows.push({
        model: t.name,
        dataset: `${t.dataset} test (${ds.labels.length})`,
        accuracy: `${(r.accuracy * 100).toFixed(2)} %`,
        bar: t.minAccuracy ? `${(t.minAccuracy * 100).toFixed(1)} %` : '-',
        ok: t.minAccuracy ? (r.accuracy >= t.minAccuracy ? 'yes' : 'NO') : '-',
        errors: r.errors.length,
      });
      if (plots) {
        mkdirSync(plots, { recursive: true });
        await plotConfusionMatrix(r.confusion, classifier.classNames, join(plots, `${t.name.replace(/[^\w.-]+/g, '_')}-confusion.png`));
        await plotErrors(ds, r.errors, classifier.classNames, join(plots, `${t.name.replace(/[^\w.-]+/g, '_')}-errors.png`), { max: 32 });
      }
    }
    for (const ds of cache.values()) ds.dispose();
    process.stdout.write(formatTable(rows) + '\n');
    if (flag(args, 'json')) process.stdout.write(JSON.stringify({ evaluate: rows }) + '\n');
    if (rows.some((r) => r.ok === 'NO')) process.exitCode = 1;
  },
};
