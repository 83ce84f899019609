import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { flag, num, str, type ParsedArgs } from '../args.js';
import { resolveClassifier } from '../model-arg.js';
import type { Classifier } from '../../core/classifier.js';
import { OptionError } from '../../core/errors.js';
import { readImage } from '../../data/image.js';
import { loadMnist } from '../../data/mnist.js';
import { writePng } from '../../render/png.js';
import { plotNeighbours, plotPrototypes, plotRealVsAdversarial, plotReceptiveField, plotTopActivations } from '../../render/views.js';
import { plotLayerActivations, plotLayerFilters } from '../../models/plots.js';
import { topActivations } from '../../interpretation/top-activations.js';
import { topRealVsAdversarial } from '../../interpretation/top-adversarial.js';
import { openImageSource } from '../../interpretation/folder-source.js';
import { readIndices } from '../../interpretation/image-source.js';
import { nearestNeighbours } from '../../interpretation/nearest-neighbours.js';
import { empiricalReceptiveField } from '../../interpretation/empirical-receptive-field.js';
import { activationMax, type ActivationObjective } from '../../interpretation/activation-max.js';
import { activationMaxCode } from '../../interpretation/activation-max-code.js';
import { activationMaxExpert } from '../../interpretation/activation-max-expert.js';
import type { Command } from './index.js';

/** "y,x,c" or "i" → a unit. */
function parseUnit(s: string): number | [number, number, number] {
  const parts = s.split(',').map((p) => Number(p.trim()));
  if (parts.some((p) => !Number.isInteger(p)) || (parts.length !== 1 && parts.length !== 3)) {
    throw new OptionError(`expected --unit as INDEX or Y,X,CHANNEL (integers); got "${s}"`);
  }
  return parts.length === 1 ? parts[0] : (parts as [number, number, number]);
}

function splitArg(args: ParsedArgs, fallback: 'test' | 'train'): 'test' | 'train' {
  const split = str(args, 'split', fallback);
  if (split !== 'test' && split !== 'train') throw new OptionError(`expected --split test or train; got ${split}`);
  return split;
}

function limitArg(args: ParsedArgs): number | undefined {
  return str(args, 'limit') === undefined ? undefined : num(args, 'limit', 0);
}

function outArg(args: ParsedArgs): string | undefined {
  const out = str(args, 'out');
  if (!out && !flag(args, 'json')) throw new OptionError('expected --out FILE.png or --json');
  return out;
}

/** One input image: --image FILE or --mnist INDEX (a test digit), as [1, h, w, c]. */
async function oneImage(args: ParsedArgs, c: Classifier): Promise<{ x: tf.Tensor4D; what: string }> {
  const file = str(args, 'image');
  if (file) {
    const img = await readImage(file, c.inputShape, { range: [c.domain.low, c.domain.high] });
    const x = tf.expandDims(img, 0) as tf.Tensor4D;
    img.dispose();
    return { x, what: path.basename(file) };
  }
  if (!args.flags.has('mnist')) throw new OptionError('expected --image FILE or --mnist INDEX; got neither');
  const index = num(args, 'mnist', 0);
  const test = await loadMnist({ split: 'test' });
  try {
    if (!Number.isInteger(index) || index < 0 || index >= test.labels.length) throw new OptionError(`expected --mnist an index in 0..${test.labels.length - 1}; got ${index}`);
    return { x: tf.slice(test.images, index, 1), what: `mnist test #${index} (digit ${test.labels[index]})` };
  } finally {
    test.dispose();
  }
}

export const interpretCommand: Command = {
  name: 'interpret',
  summary: 'what a class or a neuron has learned: prototypes, top images and patches (real and adversarial), receptive fields, filters, feature maps, neighbours',
  usage: [
    'glasswing interpret max (--classes all|C,C,... | --layer NAME (--channel C | --unit Y,X,C)) --out FILE.png',
    '                        [--variant plain|code|expert] [--steps N] [--seed S] [--generator NAME] [--json]',
    'glasswing interpret top --layer NAME (--channel C | --unit Y,X,C | --unit I) [--k 9 | --percent P]',
    '                        [--adversarial pgd|fgsm [--epsilon 0.3] [--steps 10] [--per-image 1]] --out FILE.png [--json]',
    'glasswing interpret field --layer NAME --channel C [--k 10] [--patch 3] [--stride 1] --out FILE.png [--json]',
    'glasswing interpret neighbours --layer NAME|input [--metric l2|cosine] [--k 5] [--queries I,I,...] --out FILE.png [--json]',
    'glasswing interpret filters [--layer NAME] --out FILE.png',
    'glasswing interpret maps --layer NAME (--image FILE | --mnist INDEX) --out FILE.png',
    '  common: [--model DIR|NAME] [--data mnist|fashion|DIR] [--split test|train] [--limit N]',
    '',
    '  max        activation maximisation (seed 003 §3): one prototype per class (or the unit/channel), as a',
    '             PNG grid labelled with the classifier\'s probability of the class; variant plain (Eq. 3.1),',
    '             code (Eq. 3.3, through --generator, default mnist-vae-10d) or expert (Eq. 3.2, RBM expert)',
    '  top        stream the dataset through the model and keep the k (or top P %) images on which the unit',
    '             (its value) or the channel (its maximum over positions) is highest; the PNG shows the images',
    '             (receptive window boxed) over the input patches under it. --adversarial adds the top',
    '             adversarial images (seed 004 Figs. 2-4: targeted attacks towards each image\'s least likely',
    '             classes) side by side with the real ones',
    '  field      the channel\'s actual receptive field from discrepancy maps of its top images (seed 004 Fig. 3),',
    '             its theoretical field boxed',
    '  neighbours nearest neighbours of test images (--queries, default 0,1,2) among the --split train images',
    '             in a layer\'s space (or pixel space: --layer input)',
    '  filters    a conv layer\'s filters (default the first); maps: a layer\'s feature maps for one image',
    '  --model    a model folder or shipped model name (default mnist-cnn); --layer any node of `glasswing layers`',
    '  --data     mnist, fashion or a folder of class sub-folders (streamed) (default mnist), --split (default test)',
    '  --json     one JSON line of the figures (top: {layer, receptiveField, top: [{index, label, score, position, window}]})',
  ].join('\n'),
  async run(args) {
    const sub = args.positional[0];
    switch (sub) {
      case 'max': return maxCommand(args);
      case 'top': return topCommand(args);
      case 'field': return fieldCommand(args);
      case 'neighbours': case 'neighbors': return neighboursCommand(args);
      case 'filters': return filtersCommand(args);
      case 'maps': return mapsCommand(args);
      default: throw new OptionError(`expected a subcommand: max, top, field, neighbours, filters or maps; got ${sub ?? 'none'}`);
    }
  },
};

function report(args: ParsedArgs, json: Record<string, unknown>, text: string, out: string | undefined): void {
  if (flag(args, 'json')) process.stdout.write(JSON.stringify({ ...json, out: out ? path.resolve(out) : undefined }) + '\n');
  else process.stdout.write(`${text}${out ? ` → ${out}` : ''}\n`);
}

async function topCommand(args: ParsedArgs): Promise<void> {
  const layer = str(args, 'layer');
  if (!layer) throw new OptionError('expected --layer NAME (see glasswing layers)');
  const out = outArg(args);
  const c = await resolveClassifier(str(args, 'model'));
  const channelArg = str(args, 'channel');
  const unitArg = str(args, 'unit');
  const channel = channelArg === undefined ? undefined : Number(channelArg);
  const unit = unitArg === undefined ? undefined : parseUnit(unitArg);
  const k = str(args, 'k') === undefined ? undefined : num(args, 'k', 9);
  const percent = str(args, 'percent') === undefined ? undefined : num(args, 'percent', 1);
  const attack = str(args, 'adversarial');
  const data = await openImageSource(str(args, 'data', 'mnist'), c, { split: splitArg(args, 'test'), limit: limitArg(args) });
  const what = channel !== undefined ? `channel ${channel}` : `unit ${unitArg}`;
  const range: [number, number] = [c.domain.low, c.domain.high];
  try {
    if (attack !== undefined) {
      if (attack !== 'pgd' && attack !== 'fgsm') throw new OptionError(`expected --adversarial pgd or fgsm; got ${attack}`);
      const [r] = await topRealVsAdversarial(c, data.source, {
        layer, channel, unit, k, percent, attack,
        epsilon: str(args, 'epsilon') === undefined ? undefined : num(args, 'epsilon', 0.3),
        steps: str(args, 'steps') === undefined ? undefined : num(args, 'steps', 10),
        perImage: str(args, 'per-image') === undefined ? undefined : num(args, 'per-image', 1),
      });
      try {
        if (out) {
          writePng(out, plotRealVsAdversarial(r, {
            range, classNames: data.classNames,
            title: `${c.name} ${layer} ${what}: top real (of ${r.real.scanned}) vs top adversarial (of ${r.adversarial.scanned}, ${attack}) images`,
          }));
        }
        report(args, { layer, receptiveField: r.real.receptiveField, real: r.real.top, adversarial: r.adversarial.top, attackSuccess: r.attackSuccess },
          `${c.name} ${layer} ${what}: real ${r.real.top.map((t) => `#${t.index}`).join(' ')}; adversarial ${r.adversarial.top.map((t) => `#${t.index}→${t.target}`).join(' ')}`, out);
      } finally {
        r.dispose();
      }
      return;
    }
    const r = await topActivations(c, data.source, { layer, k, percent, channel, unit });
    try {
      if (out) {
        writePng(out, plotTopActivations(r, {
          range, classNames: data.classNames,
          title: `${c.name} ${layer} ${what}: top ${r.top.length} of ${r.scanned} images (receptive field ${r.receptiveField.rows.size}×${r.receptiveField.cols.size})`,
        }));
      }
      report(args, { layer, receptiveField: r.receptiveField, top: r.top }, `${c.name} ${layer}: top ${r.top.length} images ${r.top.map((t) => `#${t.index}`).join(' ')}`, out);
    } finally {
      r.dispose();
    }
  } finally {
    data.dispose();
  }
}

async function fieldCommand(args: ParsedArgs): Promise<void> {
  const layer = str(args, 'layer');
  if (!layer || str(args, 'channel') === undefined) throw new OptionError('expected --layer NAME --channel C');
  const out = outArg(args);
  const c = await resolveClassifier(str(args, 'model'));
  const channel = num(args, 'channel', 0);
  const data = await openImageSource(str(args, 'data', 'mnist'), c, { split: splitArg(args, 'test'), limit: limitArg(args) });
  try {
    const r = await empiricalReceptiveField(c, data.source, {
      layer, channel, k: num(args, 'k', 10), patch: num(args, 'patch', 3), stride: num(args, 'stride', 1), seed: num(args, 'seed', 0),
    });
    const half = r.extent(0.5);
    const full = r.extent(1e-6);
    if (out) writePng(out, plotReceptiveField(r.map, r.theoretical, { title: `${c.name} ${layer} channel ${channel}: actual field (≥ 50 %: ${half.rows}×${half.cols})` }));
    report(args, { layer, channel, theoretical: r.theoretical, extent50: half, support: full, images: r.images },
      `${c.name} ${layer} channel ${channel}: theoretical ${r.theoretical.rows.size}×${r.theoretical.cols.size}, actual (≥ 50 %) ${half.rows}×${half.cols}`, out);
  } finally {
    data.dispose();
  }
}

async function neighboursCommand(args: ParsedArgs): Promise<void> {
  const layer = str(args, 'layer');
  if (!layer) throw new OptionError('expected --layer NAME (or input for pixel space)');
  const out = outArg(args);
  const c = await resolveClassifier(str(args, 'model'));
  const metric = str(args, 'metric', 'l2');
  if (metric !== 'l2' && metric !== 'cosine') throw new OptionError(`expected --metric l2 or cosine; got ${metric}`);
  const qs = str(args, 'queries', '0,1,2').split(',').map((v) => Number(v.trim()));
  const spec = str(args, 'data', 'mnist');
  const queries = await openImageSource(spec, c, { split: 'test' });
  const data = await openImageSource(spec, c, { split: splitArg(args, 'train'), limit: limitArg(args) });
  try {
    for (const q of qs) if (!Number.isInteger(q) || q < 0 || q >= queries.source.size) throw new OptionError(`expected --queries indices in 0..${queries.source.size - 1}; got ${q}`);
    const qx = await readIndices(queries.source, qs, c.inputShape);
    try {
      const nn = await nearestNeighbours(c, qx, data.source, { layer, metric, k: num(args, 'k', 5) });
      if (out) {
        const imgs = await readIndices(data.source, nn.flatMap((l) => l.map((n) => n.index)), c.inputShape);
        try {
          writePng(out, plotNeighbours(qx, nn, imgs, { range: [c.domain.low, c.domain.high], classNames: data.classNames, title: `${c.name}: nearest neighbours in ${layer} (${metric}) among ${data.source.size} ${data.name} images` }));
        } finally {
          imgs.dispose();
        }
      }
      report(args, { layer, metric, queries: qs.map((q) => ({ index: q, label: queries.source.labels[q] })), neighbours: nn },
        `${c.name} ${layer} (${metric}): ${nn.map((l, i) => `#${qs[i]} → ${l.map((n) => `#${n.index}`).join(' ')}`).join('; ')}`, out);
    } finally {
      qx.dispose();
    }
  } finally {
    queries.dispose();
    data.dispose();
  }
}

async function filtersCommand(args: ParsedArgs): Promise<void> {
  const out = str(args, 'out');
  if (!out) throw new OptionError('expected --out FILE.png');
  const c = await resolveClassifier(str(args, 'model'));
  const layer = str(args, 'layer');
  writePng(out, plotLayerFilters(c, { layer, inChannel: c.inputShape[2] === 3 && !layer ? 'rgb' : undefined }));
  process.stdout.write(`${c.name} filters of ${layer ?? c.convLayers()[0]} → ${out}\n`);
}

async function mapsCommand(args: ParsedArgs): Promise<void> {
  const out = str(args, 'out');
  if (!out) throw new OptionError('expected --out FILE.png');
  const layer = str(args, 'layer');
  if (!layer) throw new OptionError('expected --layer NAME (see glasswing layers)');
  const c = await resolveClassifier(str(args, 'model'));
  const { x, what } = await oneImage(args, c);
  try {
    writePng(out, plotLayerActivations(c, x, layer, { title: `${c.name} ${layer} feature maps of ${what}` }));
  } finally {
    x.dispose();
  }
  process.stdout.write(`${c.name} ${layer} feature maps of ${what} → ${out}\n`);
}

async function maxCommand(args: ParsedArgs): Promise<void> {
  const out = outArg(args);
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
    const notes = objectives.map((o, i) => ('class' in o ? `p = ${r.probabilities[i][o.class].toFixed(3)}` : r.objective[i].toFixed(3)));
    if (out) writePng(out, plotPrototypes(r.prototypes, { names, notes, range: [c.domain.low, c.domain.high], title: `activation-max (${variant})` }));
    report(args, { variant, names, probabilities: r.probabilities, objective: r.objective },
      `${c.name} activation-max (${variant}): ${names.map((n, i) => `${n} ${notes[i]}`).join('; ')}`, out);
  } finally {
    r.dispose();
  }
}
