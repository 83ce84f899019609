import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { flag, num, str } from '../args.js';
import { resolveClassifier } from '../model-arg.js';
import { OptionError } from '../../core/errors.js';
import type { Dataset } from '../../data/dataset.js';
import { loadMnist } from '../../data/mnist.js';
import { loadFashionMnist } from '../../data/fashion.js';
import { loadImageFolder } from '../../data/image.js';
import { renderImage } from '../../render/heatmap.js';
import { grid } from '../../render/grid.js';
import { writePng } from '../../render/png.js';
import { topActivations } from '../../interpretation/top-activations.js';
import { activationMax, type ActivationObjective } from '../../interpretation/activation-max.js';
import { activationMaxCode } from '../../interpretation/activation-max-code.js';
import { activationMaxExpert } from '../../interpretation/activation-max-expert.js';
import type { Command } from './index.js';

async function dataset(spec: string, shape: [number, number, number], split: 'train' | 'test', limit: number | undefined): Promise<Dataset> {
  if (spec === 'mnist') return loadMnist({ split, limit });
  if (spec === 'fashion-mnist') return loadFashionMnist({ split, limit });
  return loadImageFolder(spec, shape);
}

/** "y,x,c" or "i" → a unit. */
function parseUnit(s: string): number | [number, number, number] {
  const parts = s.split(',').map((p) => Number(p.trim()));
  if (parts.some((p) => !Number.isInteger(p)) || (parts.length !== 1 && parts.length !== 3)) {
    throw new OptionError(`expected --unit as INDEX or Y,X,CHANNEL (integers); got "${s}"`);
  }
  return parts.length === 1 ? parts[0] : (parts as [number, number, number]);
}

export const interpretCommand: Command = {
  name: 'interpret',
  summary: 'what a neuron responds to: its top-activating dataset images and the patches under its receptive field',
  usage: [
    'glasswing interpret max (--classes all|C,C,... | --layer NAME (--channel C | --unit Y,X,C)) --out FILE.png',
    '                        [--model DIR|NAME] [--variant plain|code|expert] [--steps N] [--seed S] [--generator NAME] [--json]',
    'glasswing interpret top --layer NAME (--channel C | --unit Y,X,C | --unit I) --out FILE.png',
    '                        [--model DIR|NAME] [--data mnist|fashion-mnist|DIR] [--split test|train] [--limit N] [--k 9] [--json]',
    '',
    '  max        activation maximisation (seed 003 §3): one prototype per class (or the unit/channel), as a',
    '             PNG grid labelled with the classifier\'s probability of the class; variant plain (Eq. 3.1),',
    '             code (Eq. 3.3, through --generator, default mnist-vae-10d) or expert (Eq. 3.2, RBM expert)',
    '  top        stream the dataset through the model and keep the k images on which the unit (its value) or',
    '             the channel (its maximum over positions) is highest; the PNG shows the images (best first)',
    '             over the input patches under the receptive field of each maximal position',
    '  --model    a model folder or shipped model name (default mnist-cnn); --layer any node of `glasswing layers`',
    '  --data     a shipped dataset or a folder of class sub-folders (default mnist), --split (default test)',
    '  --json     one JSON line: {layer, receptiveField, top: [{index, label, score, position, window}]}',
    '',
    'Activation maximisation runs through `glasswing explain --method activation-max` (and -code, -expert).',
  ].join('\n'),
  async run(args) {
    const sub = args.positional[0];
    if (sub === 'max') return maxCommand(args);
    if (sub !== 'top') throw new OptionError(`expected a subcommand: max or top; got ${sub ?? 'none'}`);
    const layer = str(args, 'layer');
    if (!layer) throw new OptionError('expected --layer NAME (see glasswing layers)');
    const out = str(args, 'out');
    if (!out && !flag(args, 'json')) throw new OptionError('expected --out FILE.png or --json');
    const c = await resolveClassifier(str(args, 'model'));
    const channel = str(args, 'channel');
    const unit = str(args, 'unit');
    const split = str(args, 'split', 'test');
    if (split !== 'test' && split !== 'train') throw new OptionError(`expected --split test or train; got ${split}`);
    const limitArg = str(args, 'limit');
    const ds = await dataset(str(args, 'data', 'mnist'), c.inputShape, split, limitArg === undefined ? undefined : num(args, 'limit', 0));
    try {
      const r = await topActivations(c, ds, {
        layer, k: num(args, 'k', 9),
        channel: channel === undefined ? undefined : Number(channel),
        unit: unit === undefined ? undefined : parseUnit(unit),
      });
      try {
        if (out) {
          const { low, high } = c.domain;
          const tiles = [];
          const labels = [];
          for (let i = 0; i < r.top.length; i++) {
            tiles.push(renderImage(r.images, { index: i, range: [low, high] }));
            labels.push(`#${r.top[i].index} (${ds.classNames[r.top[i].label] ?? r.top[i].label})\n${r.top[i].score.toFixed(3)}`);
          }
          const patchTiles = r.top.map((_, i) => renderImage(r.patches, { index: i, range: [low, high] }));
          const scaleImg = Math.max(1, Math.round(84 / c.inputShape[0]));
          const what = channel !== undefined ? `channel ${channel}` : `unit ${unit}`;
          writePng(out, grid([...tiles, ...patchTiles], {
            cols: r.top.length, scale: scaleImg, labels: [...labels, ...r.top.map((t) => (t.position ? `at ${t.position.join(',')}` : ''))],
            title: `${c.name} ${layer} ${what}: top ${r.top.length} of ${ds.images.shape[0]} images (receptive field ${r.receptiveField.rows.size}×${r.receptiveField.cols.size})`,
          }));
        }
        if (flag(args, 'json')) {
          process.stdout.write(JSON.stringify({ layer, receptiveField: r.receptiveField, top: r.top, out: out ? path.resolve(out) : undefined }) + '\n');
        } else {
          process.stdout.write(`${c.name} ${layer}: top ${r.top.length} images ${r.top.map((t) => `#${t.index}`).join(' ')} → ${out}\n`);
        }
      } finally {
        r.dispose();
      }
    } finally {
      tf.dispose(ds.images);
    }
  },
};

async function maxCommand(args: Parameters<Command['run']>[0]): Promise<void> {
  const out = str(args, 'out');
  if (!out && !flag(args, 'json')) throw new OptionError('expected --out FILE.png or --json');
  const c = await resolveClassifier(str(args, 'model'));
  const layer = str(args, 'layer');
  let objectives: ActivationObjective[];
  let names: string[];
  if (layer) {
    const channel = str(args, 'channel');
    const unit = str(args, 'unit');
    if ((channel === undefined) === (unit === undefined)) throw new OptionError(`expected exactly one of --channel or --unit with --layer ${layer}`);
    objectives = [channel !== undefined ? { layer, channel: Number(channel) } : { layer, unit: parseUnit(unit!) }];
    names = [`${layer} ${channel !== undefined ? `channel ${channel}` : `unit ${unit}`}`];
  } else {
    const spec = str(args, 'classes', 'all');
    const classes = spec === 'all' ? Array.from({ length: c.numClasses }, (_, i) => i) : spec.split(',').map((v) => Number(v.trim()));
    objectives = classes.map((k) => ({ class: k }));
    names = classes.map((k) => c.classNames[k] ?? String(k));
  }
  const variant = str(args, 'variant', 'plain');
  const common = { seed: num(args, 'seed', 0), ...(str(args, 'steps') !== undefined ? { steps: num(args, 'steps', 1) } : {}) };
  const r = variant === 'plain' ? await activationMax(c, objectives, common)
    : variant === 'code' ? await activationMaxCode(c, objectives, { ...common, generator: str(args, 'generator', 'mnist-vae-10d') })
      : variant === 'expert' ? await activationMaxExpert(c, objectives, common)
        : undefined;
  if (!r) throw new OptionError(`expected --variant plain, code or expert; got ${variant}`);
  try {
    const labels = objectives.map((o, i) => ('class' in o ? `${names[i]}\np = ${r.probabilities[i][o.class].toFixed(3)}` : `${names[i]}\n${r.objective[i].toFixed(3)}`));
    if (out) {
      const { low, high } = c.domain;
      const tiles = objectives.map((_, i) => renderImage(r.prototypes, { index: i, range: [low, high] }));
      writePng(out, grid(tiles, { labels, scale: Math.max(1, Math.round(84 / c.inputShape[0])), title: `activation-max (${variant})` }));
    }
    if (flag(args, 'json')) {
      process.stdout.write(JSON.stringify({ variant, names, probabilities: r.probabilities, objective: r.objective, out: out ? path.resolve(out) : undefined }) + '\n');
    } else {
      process.stdout.write(`${c.name} activation-max (${variant}): ${labels.map((l) => l.replace('\n', ' ')).join('; ')} → ${out}\n`);
    }
  } finally {
    r.dispose();
  }
}
