/**
 * Train the shipped default models and save them to models/NAME/ (model.json + weights.bin, with
 * the test accuracy, parameter count, epochs, training time and recipe in the model's metadata).
 *
 *   npm run build && node dist/scripts/train-defaults.js [--only NAME[,NAME…]] [--skip-slow] [--quick] [--out DIR]
 *
 * --quick trains for one short epoch on a subset (a smoke check of the pipeline; the models do not
 * reach their accuracy bars) and writes to a temporary folder unless --out is given, so it never
 * replaces the shipped models. Models are trained one after another (the CPU is shared).
 *
 * The four Madry-architecture models (mnist-madry-natural, -fgsm, -pgd, -consistent; issue 13) are
 * slow: measured on the 2 shared cores at load 10–19, natural 13 min, FGSM- and consistent-trained
 * ~47 min each (4 epochs), PGD-trained 19 min per epoch; --skip-slow (or the environment variable
 * GLASSWING_SKIP_SLOW=1) leaves them out. They are stored with float16 weights when that
 * changes the test accuracy by ≤ 0.1 pt (measured here and kept in each model's metadata), else float32.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, currentBackend } from '../src/engine/backend.js';
import { Classifier } from '../src/core/classifier.js';
import { loadMnist, loadFashionMnist, biasedMnist, addSquare, makeDataset, type Dataset } from '../src/data/index.js';
import { buildCnn, buildMlp, countParams } from '../src/models/architectures.js';
import { trainModel, type TrainOptions } from '../src/models/train.js';
import { evaluate } from '../src/models/evaluate.js';
import { saveModel, loadModel, DEFAULT_MODELS, defaultModelsDir, type DefaultModelName } from '../src/models/io.js';
import { MADRY_ARCHITECTURE, MADRY_VARIANTS, madryModelName, type MadryVariant } from '../src/models/madry.js';
import { MADRY_RECIPES, trainMadryVariant } from '../src/models/madry-train.js';
import { convertFolderToFloat16 } from '../src/models/madry-float16.js';
import { runAttack, attacks } from '../src/robustness/attack-runner.js';

/** Data split seed: the shipped models are evaluated on loadMnist/loadFashionMnist({split: 'test'}) (seed 0). */
const SPLIT_SEED = 0;

interface Recipe {
  dataset: 'mnist' | 'fashion';
  biased?: boolean;
  build: () => tfl.LayersModel;
  train: TrainOptions;
  /** Use only the first N training images (the split is already shuffled). */
  trainLimit?: number;
  architecture: string;
}

const CNN_SHAPE = {
  convs: [
    { filters: 16, kernelSize: 5, pool: 2 },
    { filters: 32, kernelSize: 5, pool: 2 },
  ],
  dense: [128],
};
const CNN_TEXT = 'conv1 5×5×16 (same, ReLU) → pool1 2×2 → conv2 5×5×32 (same, ReLU) → pool2 2×2 → flatten 1568 → fc1 128 (ReLU) → fc2 10 (logits)';

const MNIST_TRAIN: TrainOptions = {
  optimizer: 'adam', learningRate: 2e-3, lrDecay: 0.85, batchSize: 64, epochs: 15, seed: 1, augment: { shift: 2, rotate: 10, scale: 0.1 },
};

export const RECIPES: Record<DefaultModelName, Recipe> = {
  'mnist-cnn': {
    dataset: 'mnist',
    build: () => buildCnn({ ...CNN_SHAPE, seed: 1, name: 'mnist_cnn' }),
    train: { ...MNIST_TRAIN, epochs: 20, lrDecay: 0.88 },
    architecture: CNN_TEXT,
  },
  'mnist-mlp': {
    dataset: 'mnist',
    build: () => buildMlp({ hidden: [256, 128], seed: 2, name: 'mnist_mlp' }),
    train: { optimizer: 'adam', learningRate: 1e-3, lrDecay: 0.9, batchSize: 64, epochs: 30, seed: 2, augment: { shift: 2, rotate: 10, scale: 0.1 } },
    architecture: 'flatten 784 → fc1 256 (ReLU) → fc2 128 (ReLU) → fc3 10 (logits)',
  },
  'mnist-cnn-nobias': {
    dataset: 'mnist',
    build: () => buildCnn({ ...CNN_SHAPE, bias: false, transform: { offset: -0.5 }, seed: 3, name: 'mnist_cnn_nobias' }),
    train: { ...MNIST_TRAIN, epochs: 10, lrDecay: 0.8, seed: 3 },
    architecture: `input_transform (x − 0.5) → ${CNN_TEXT}; no biases`,
  },
  'fashion-cnn': {
    dataset: 'fashion',
    build: () => buildCnn({ ...CNN_SHAPE, seed: 4, name: 'fashion_cnn' }),
    train: { optimizer: 'adam', learningRate: 2e-3, lrDecay: 0.5, batchSize: 64, epochs: 3, seed: 4, augment: { shift: 1 } },
    architecture: CNN_TEXT,
  },
  'mnist-cnn-biased': {
    dataset: 'mnist',
    biased: true,
    build: () => buildCnn({ ...CNN_SHAPE, seed: 5, name: 'mnist_cnn_biased' }),
    // No augmentation: seed 001 §4.3 puts the 6×6 square at the same top-left place on every 8, and a
    // shift would move and crop it (with shift ±2: 0.0 % clean 8s recognised / 69.1 % square → 8;
    // without: 4.2 % / 65.1 %; seed: 5 % / 77 %).
    train: { ...MNIST_TRAIN, epochs: 4, lrDecay: 0.7, seed: 5, augment: undefined },
    architecture: CNN_TEXT,
  },
};

const MADRY_NAMES = MADRY_VARIANTS.map(madryModelName);

/**
 * Test accuracy the Madry models must reach — regression guards set from the measured runs: natural
 * 98.33 % (no augmentation, 8,500 digits), PGD-trained 91.0 % after its one epoch of PGD-8 (Madry et al.:
 * 98.8 % after 100,000 steps; PGD training trades clean accuracy for robustness and is far from
 * converged here — see docs/robustness.md).
 */
const MADRY_BARS: Record<MadryVariant, number> = { natural: 0.98, fgsm: 0.97, pgd: 0.9, consistent: 0.97 };

interface Args { only?: string[]; quick: boolean; out?: string; skipSlow: boolean }

function parseArgs(argv: string[]): Args {
  const r: Args = { quick: false, skipSlow: process.env.GLASSWING_SKIP_SLOW === '1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') r.quick = true;
    else if (a === '--skip-slow') r.skipSlow = true;
    else if (a === '--only') r.only = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a.startsWith('--only=')) r.only = a.slice(7).split(',').filter(Boolean);
    else if (a === '--out') r.out = argv[++i];
    else if (a.startsWith('--out=')) r.out = a.slice(6);
    else if (a === '--help' || a === '-h') {
      console.log('usage: node dist/scripts/train-defaults.js [--only NAME[,NAME…]] [--skip-slow] [--quick] [--out DIR]');
      console.log(`models: ${[...DEFAULT_MODELS.map((m) => m.name), ...MADRY_NAMES].join(', ')} (--skip-slow or GLASSWING_SKIP_SLOW=1 leaves out the mnist-madry-* ones)`);
      process.exit(0);
    } else {
      console.error(`unknown argument "${a}" (expected --only NAME, --skip-slow, --quick, --out DIR)`);
      process.exit(2);
    }
  }
  for (const n of r.only ?? []) {
    if (!(n in RECIPES) && !MADRY_NAMES.includes(n)) {
      console.error(`unknown model "${n}" (expected one of ${[...Object.keys(RECIPES), ...MADRY_NAMES].join(', ')})`);
      process.exit(2);
    }
  }
  return r;
}

async function loadSplit(dataset: 'mnist' | 'fashion', split: 'train' | 'test', limit?: number): Promise<Dataset> {
  return dataset === 'mnist' ? loadMnist({ split, seed: SPLIT_SEED, limit }) : loadFashionMnist({ split, seed: SPLIT_SEED, limit });
}

async function trainOne(name: DefaultModelName, quick: boolean, outDir: string): Promise<Record<string, unknown>> {
  const recipe = RECIPES[name];
  const info = DEFAULT_MODELS.find((m) => m.name === name)!;
  const limit = quick ? 2000 : recipe.trainLimit;
  let train = await loadSplit(recipe.dataset, 'train', limit);
  let test = await loadSplit(recipe.dataset, 'test', quick ? 1000 : undefined);
  let cleanTest: Dataset | undefined;
  if (recipe.biased) {
    const bt = biasedMnist(train);
    train.dispose();
    train = bt;
    cleanTest = test;
    test = biasedMnist(cleanTest);
  }
  const opts: TrainOptions = { ...recipe.train, ...(quick ? { epochs: 1 } : {}), label: `train ${name}` };
  tf.engine().startScope();
  const model = recipe.build();
  console.log(`${name}: ${countParams(model)} parameters, ${train.labels.length} training images (${train.name}), ${opts.epochs} epochs`);
  const history = await trainModel(model, train, {
    ...opts,
    onEpoch: (s) => console.log(`  epoch ${s.epoch}: loss ${s.loss.toFixed(4)}, train accuracy ${(s.accuracy * 100).toFixed(2)} %, lr ${s.learningRate.toExponential(2)}, ${(s.timeMs / 1000).toFixed(1)} s`),
  });
  const classifier = Classifier.fromModel(model, { name, classNames: info.classNames });
  const ev = await evaluate(classifier, test);
  const metadata: Record<string, unknown> = {
    name,
    description: info.description,
    architecture: recipe.architecture,
    dataset: recipe.dataset,
    trainSet: train.name,
    trainImages: train.labels.length,
    testSet: test.name,
    testImages: ev.count,
    splitSeed: SPLIT_SEED,
    testAccuracy: ev.accuracy,
    accuracyBar: info.accuracyBar,
    perClassAccuracy: ev.perClassAccuracy,
    params: countParams(model),
    epochs: history.epochs,
    trainTimeMs: history.timeMs,
    finalTrainLoss: history.loss[history.loss.length - 1],
    recipe: { ...opts, label: undefined, onEpoch: undefined },
    classNames: info.classNames,
    inputRange: [0, 1],
    backend: currentBackend(),
    tfjs: tf.version_core,
    trainedAt: new Date().toISOString(),
    quick,
  };
  if (cleanTest) {
    const clean = await evaluate(classifier, cleanTest);
    metadata.cleanTestAccuracy = clean.accuracy;
    metadata.cleanPerClassAccuracy = clean.perClassAccuracy;
    // How much the square alone drives the decision: clean test images of other classes with the
    // square added, and the fraction of them now called an 8.
    const squaredImages = addSquare(cleanTest.images);
    const squared = makeDataset(`${cleanTest.name}+square-all`, squaredImages, cleanTest.labels.slice(), cleanTest.classNames);
    const sq = await evaluate(classifier, squared);
    const others = cleanTest.labels.reduce((s, l) => s + (l === 8 ? 0 : 1), 0);
    metadata.squareFlipsTo8 = sq.errors.filter((e) => e.predicted === 8 && e.label !== 8).length / others;
    squared.dispose();
  }
  const saved = await saveModel(model, path.join(outDir, name), { metadata });
  console.log(`${name}: test accuracy ${(ev.accuracy * 100).toFixed(2)} % (bar ${(info.accuracyBar * 100).toFixed(1)} %)` +
    (cleanTest ? `, clean test ${((metadata.cleanTestAccuracy as number) * 100).toFixed(2)} %, square turns ${((metadata.squareFlipsTo8 as number) * 100).toFixed(1)} % of other digits into 8` : '') +
    `, ${(history.timeMs / 1000).toFixed(0)} s, ${(saved.weightBytes / 1024).toFixed(0)} KB → ${saved.dir}`);
  model.dispose();
  tf.engine().endScope();
  train.dispose();
  test.dispose();
  cleanTest?.dispose();
  return metadata;
}

/**
 * Evaluate `dir`'s model on the test split: clean accuracy and FGSM ε = 0.3 accuracy (the float16
 * check compares both before and after narrowing the weights).
 */
async function cleanAndFgsm(model: tfl.LayersModel, test: Dataset): Promise<{ clean: number; fgsm03: number }> {
  const c = Classifier.fromModel(model, { low: 0, high: 1 });
  const r = await runAttack(c, test.images, Array.from(test.labels), attacks.fgsm({ epsilon: 0.3 }), { name: 'fgsm 0.3', batchSize: 100 });
  return { clean: r.cleanAccuracy, fgsm03: r.adversarialAccuracy };
}

/**
 * Train the Madry-architecture variants (issue 13): natural first (from scratch), then the adversarial
 * ones warm-started from it. When only adversarial variants are asked for, the natural model already
 * in `outDir` is the starting point. Each model is saved as float32, narrowed to float16, reloaded and
 * re-evaluated; float16 stays only when the clean test accuracy moved by ≤ 0.1 pt.
 */
async function trainMadry(variants: MadryVariant[], quick: boolean, outDir: string): Promise<Record<string, unknown>[]> {
  const train = await loadSplit('mnist', 'train', quick ? 512 : undefined);
  const test = await loadSplit('mnist', 'test', quick ? 500 : undefined);
  const quickOpts = quick ? { epochs: 1, pgdSteps: 2 } : {};
  const out: Record<string, unknown>[] = [];
  let natural: tfl.LayersModel | undefined;
  if (!variants.includes('natural')) {
    const dir = path.join(outDir, madryModelName('natural'));
    if (!fs.existsSync(path.join(dir, 'model.json'))) {
      throw new Error(`expected ${dir}/model.json to warm-start ${variants.join(', ')} from; got none (train mnist-madry-natural first)`);
    }
    natural = await loadModel(dir);
    console.log(`warm start from ${dir}`);
  }
  for (const v of MADRY_VARIANTS.filter((x) => variants.includes(x))) {
    const name = madryModelName(v);
    console.log(`${name}: ${MADRY_RECIPES[v].text}; ${train.labels.length} training images${quick ? ' (quick)' : ''}`);
    const t = performance.now();
    const r = await trainMadryVariant(v, train, {
      natural, ...quickOpts,
      onEpoch: (e, loss) => console.log(`  epoch ${e}: loss ${loss.toFixed(4)} (${((performance.now() - t) / 1000).toFixed(0)} s)`),
    });
    const f32 = await cleanAndFgsm(r.model, test);
    const metadata: Record<string, unknown> = {
      name,
      description: `Madry et al.'s MNIST network, ${v === 'natural' ? 'naturally trained' : `${v}-trained`} (issue 13, seed 004)`,
      architecture: MADRY_ARCHITECTURE,
      variant: v,
      dataset: 'mnist',
      trainSet: train.name,
      trainImages: train.labels.length,
      testSet: test.name,
      testImages: test.labels.length,
      splitSeed: SPLIT_SEED,
      accuracyBar: MADRY_BARS[v],
      params: countParams(r.model),
      epochs: r.loss.length,
      trainTimeMs: r.timeMs,
      finalTrainLoss: r.loss[r.loss.length - 1],
      lossPerEpoch: r.loss,
      recipe: { text: r.recipe.text, ...(r.recipe.natural ?? r.recipe.adversarial), ...quickOpts, warmStart: v === 'natural' ? null : madryModelName('natural') },
      float32: f32,
      classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      inputRange: [0, 1],
      backend: currentBackend(),
      tfjs: tf.version_core,
      trainedAt: new Date().toISOString(),
      quick,
    };
    const dir = path.join(outDir, name);
    await saveModel(r.model, dir, { metadata });
    const f32Bytes = fs.statSync(path.join(dir, 'weights.bin')).size;
    convertFolderToFloat16(dir);
    const reloaded = await loadModel(dir);
    const f16 = await cleanAndFgsm(reloaded, test);
    reloaded.dispose();
    const keep16 = Math.abs(f16.clean - f32.clean) <= 0.001 + 1e-9;
    metadata.float16 = f16;
    metadata.weightDtype = keep16 ? 'float16' : 'float32';
    metadata.testAccuracy = keep16 ? f16.clean : f32.clean;
    metadata.fgsm03Accuracy = keep16 ? f16.fgsm03 : f32.fgsm03;
    // Rewrite with the final metadata (and float32 weights when float16 moved the accuracy too much).
    const saved = await saveModel(r.model, dir, { metadata });
    if (keep16) convertFolderToFloat16(dir);
    const bytes = fs.statSync(path.join(dir, 'weights.bin')).size;
    console.log(`${name}: test accuracy float32 ${(f32.clean * 100).toFixed(2)} % / float16 ${(f16.clean * 100).toFixed(2)} %, ` +
      `FGSM ε=0.3 ${(f32.fgsm03 * 100).toFixed(2)} % / ${(f16.fgsm03 * 100).toFixed(2)} % → ${metadata.weightDtype} ` +
      `(${(bytes / 1024).toFixed(0)} KB of ${(f32Bytes / 1024).toFixed(0)} KB), ${(r.timeMs / 1000).toFixed(0)} s → ${saved.dir}`);
    out.push(metadata);
    if (v === 'natural') natural = r.model;
    else r.model.dispose();
  }
  natural?.dispose();
  train.dispose();
  test.dispose();
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const backend = await initBackend();
  const outDir = args.out ? path.resolve(args.out) : args.quick ? path.join(os.tmpdir(), 'glasswing-models-quick') : defaultModelsDir();
  fs.mkdirSync(outDir, { recursive: true });
  const all = args.only ?? [...DEFAULT_MODELS.map((m) => m.name), ...(args.skipSlow ? [] : MADRY_NAMES)];
  const names = all.filter((n) => n in RECIPES) as DefaultModelName[];
  const madry = MADRY_VARIANTS.filter((v) => all.includes(madryModelName(v)));
  console.log(`training ${all.join(', ')} on ${backend}${args.quick ? ' (quick)' : ''} → ${outDir}`);
  const summary: Record<string, unknown>[] = [];
  const t0 = Date.now();
  for (const name of names) summary.push(await trainOne(name, args.quick, outDir));
  if (madry.length) summary.push(...(await trainMadry(madry, args.quick, outDir)));
  console.log(`\n| model | test accuracy | bar | parameters | epochs | training time |\n|---|---|---|---|---|---|`);
  for (const m of summary) {
    console.log(`| ${m.name} | ${((m.testAccuracy as number) * 100).toFixed(2)} % | ${((m.accuracyBar as number) * 100).toFixed(1)} % | ${m.params} | ${m.epochs} | ${((m.trainTimeMs as number) / 1000).toFixed(0)} s |`);
  }
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const failed = summary.filter((m) => !args.quick && (m.testAccuracy as number) < (m.accuracyBar as number));
  if (failed.length) {
    console.error(`below the accuracy bar: ${failed.map((m) => m.name).join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
  process.exit(1);
});
