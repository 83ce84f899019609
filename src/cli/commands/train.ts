import { loadMnist, loadFashionMnist, biasedMnist, type Dataset } from '../../data/index.js';
import { buildCnn, buildMlp, buildSeed001Cnn, buildSmallResNet, trainModel, evaluate, saveModel } from '../../models/index.js';
import { Classifier } from '../../core/classifier.js';
import { OptionError } from '../../core/errors.js';
import { flag, num, str } from '../args.js';
import type { Command } from './index.js';

const ARCHS = ['mlp', 'cnn', 'seed001', 'small-resnet'] as const;
const DATASETS = ['mnist', 'fashion', 'biased-mnist'] as const;

async function load(name: string, split: 'train' | 'test', seed: number): Promise<Dataset> {
  if (name === 'fashion') return loadFashionMnist({ split, seed });
  const mnist = await loadMnist({ split, seed });
  if (name === 'mnist') return mnist;
  const biased = biasedMnist(mnist);
  mnist.dispose();
  return biased;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a classifier on MNIST, Fashion-MNIST or biased MNIST and save it (TF.js format)',
  usage: [
    'glasswing train --out DIR [--arch mlp|cnn|seed001|small-resnet] [--dataset mnist|fashion|biased-mnist]',
    '                [--epochs 10] [--batch 64] [--lr 0.001] [--optimizer adam|sgd] [--seed 0] [--shift 0]',
    '                [--no-bias] [--offset 0] [--scale 1] [--invert] [--patience N] [--json]',
    '',
    '  cnn: two 5×5 conv (32, 64) + max-pool + dense 128 (the conformance mnist_cnn shape); seed001: seed 001\'s classifier',
    '  --no-bias   bias-free network (VisualBackProp);  --offset/--scale/--invert: input transform inside the model',
    '  --shift     random translation augmentation of up to N pixels',
  ].join('\n'),
  async run(args) {
    const out = str(args, 'out');
    if (!out) throw new OptionError('expected --out DIR for the trained model; got none');
    const arch = str(args, 'arch', 'cnn');
    if (!(ARCHS as readonly string[]).includes(arch)) throw new OptionError(`expected --arch ${ARCHS.join('|')}; got "${arch}"`);
    const dataset = str(args, 'dataset', 'mnist');
    if (!(DATASETS as readonly string[]).includes(dataset)) throw new OptionError(`expected --dataset ${DATASETS.join('|')}; got "${dataset}"`);
    const seed = num(args, 'seed', 0);
    const bias = !flag(args, 'no-bias');
    const transform = args.flags.has('offset') || args.flags.has('scale') || flag(args, 'invert')
      ? { offset: num(args, 'offset', 0), scale: num(args, 'scale', 1), invert: flag(args, 'invert') }
      : undefined;
    const train = await load(dataset, 'train', seed);
    const test = await load(dataset, 'test', seed);
    const common = { inputShape: train.images.shape.slice(1) as [number, number, number], numClasses: train.classNames.length, bias, transform, seed };
    const model =
      arch === 'mlp' ? buildMlp(common)
      : arch === 'seed001' ? buildSeed001Cnn(common)
      : arch === 'small-resnet' ? buildSmallResNet({ inputShape: common.inputShape, numClasses: common.numClasses, seed })
      : buildCnn({ ...common, convs: [{ filters: 32, kernelSize: 5, pool: 2 }, { filters: 64, kernelSize: 5, pool: 2 }], dense: [128] });
    const patience = num(args, 'patience', 0);
    const history = await trainModel(model, train, {
      epochs: num(args, 'epochs', 10),
      batchSize: num(args, 'batch', 64),
      learningRate: num(args, 'lr', 1e-3),
      optimizer: str(args, 'optimizer', 'adam') as 'adam' | 'sgd',
      seed,
      validation: test,
      augment: { shift: num(args, 'shift', 0) },
      earlyStop: patience > 0 ? { patience } : undefined,
    });
    const classifier = Classifier.fromModel(model, { classNames: train.classNames });
    const r = await evaluate(classifier, test);
    await saveModel(model, out, { metadata: { dataset, arch, seed, testAccuracy: r.accuracy, trainTimeMs: history.timeMs, epochs: history.epochs } });
    const summary = { out, arch, dataset, epochs: history.epochs, testAccuracy: Number(r.accuracy.toFixed(4)), trainSeconds: Number((history.timeMs / 1000).toFixed(1)) };
    process.stdout.write(`trained ${arch} on ${dataset}: test accuracy ${(r.accuracy * 100).toFixed(2)} % after ${history.epochs} epochs (${summary.trainSeconds} s) → ${out}\n`);
    if (flag(args, 'json')) process.stdout.write(JSON.stringify(summary) + '\n');
    train.dispose();
    test.dispose();
  },
};
