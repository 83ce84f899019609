/**
 * The MNIST network of Madry et al., "Towards deep learning models resistant to adversarial attacks"
 * (ICLR 2018, their `mnist_challenge/model.py`), which seed 004's adversarial-training slides build on
 * (the min–max objective min_θ E[max_{‖x_adv − x‖∞ ≤ ε} L(h(x_adv), y)] and its FGSM simplification).
 * Seed 004 itself gives no MNIST architecture; this is the one behind the MNIST figures it is read with.
 *
 *   conv1 5×5×32 (same, ReLU) → pool1 2×2 → conv2 5×5×64 (same, ReLU) → pool2 2×2 → flatten 3136
 *   → fc1 1024 (ReLU) → fc2 10 (logits)
 *
 * (Madry's max-pools use 'SAME' padding with stride 2; on 28×28 and 14×14 that equals 'valid'.) The
 * four shipped versions — natural, FGSM-, PGD- and consistent-loss-trained — live in
 * models/mnist-madry-VARIANT/ and are trained by `npm run train:defaults` (scripts/train-defaults.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Classifier } from '../core/classifier.js';
import { ModelLoadError, OptionError } from '../core/errors.js';
import { buildCnn } from './architectures.js';
import { defaultModelsDir, loadModel, readModelMetadata, MODEL_JSON } from './io.js';

export const MADRY_ARCHITECTURE = 'conv1 5×5×32 (same, ReLU) → pool1 2×2 → conv2 5×5×64 (same, ReLU) → pool2 2×2 → flatten 3136 → fc1 1024 (ReLU) → fc2 10 (logits)';

/** The four training regimes shipped for the adversarial-accuracy comparison (issue 13, seed 004). */
export const MADRY_VARIANTS = ['natural', 'fgsm', 'pgd', 'consistent'] as const;
export type MadryVariant = (typeof MADRY_VARIANTS)[number];

export interface MadryCnnOptions {
  /** Filters of conv1 and conv2; default [32, 64] (Madry). Smaller widths are for quick tests only. */
  filters?: [number, number];
  /** Width of the hidden dense layer; default 1024 (Madry). */
  dense?: number;
  /** Seed of the weight initialisers; default 0. */
  seed?: number;
  name?: string;
}

/**
 * Build the Madry MNIST network (uncompiled, logits out, He-normal initialisers seeded by `seed`).
 *
 * @example
 * const model = buildMadryCnn({ seed: 11 });   // 3,274,634 parameters
 */
export function buildMadryCnn(opts: MadryCnnOptions = {}): tfl.Sequential {
  const [f1, f2] = opts.filters ?? [32, 64];
  const dense = opts.dense ?? 1024;
  if (![f1, f2, dense].every((v) => Number.isInteger(v) && v > 0)) {
    throw new OptionError(`buildMadryCnn: expected positive integer filters and dense width; got filters ${JSON.stringify(opts.filters)}, dense ${opts.dense}`);
  }
  return buildCnn({
    convs: [
      { filters: f1, kernelSize: 5, pool: 2 },
      { filters: f2, kernelSize: 5, pool: 2 },
    ],
    dense: [dense],
    seed: opts.seed ?? 0,
    name: opts.name ?? 'mnist_madry',
  });
}

export function checkMadryVariant(v: string): asserts v is MadryVariant {
  if (!(MADRY_VARIANTS as readonly string[]).includes(v)) {
    throw new OptionError(`expected a Madry model variant (${MADRY_VARIANTS.join(', ')}); got "${v}"`);
  }
}

/** Folder name of a shipped variant: mnist-madry-natural, mnist-madry-fgsm, … */
export function madryModelName(v: MadryVariant): string {
  return `mnist-madry-${v}`;
}

/** models/mnist-madry-VARIANT (under GLASSWING_MODELS_DIR when set, or `root`). */
export function madryModelDir(v: MadryVariant, root = defaultModelsDir()): string {
  checkMadryVariant(v);
  return path.join(root, madryModelName(v));
}

/** Whether variant `v` has been trained and shipped. */
export function hasMadryModel(v: MadryVariant, root?: string): boolean {
  return fs.existsSync(path.join(madryModelDir(v, root), MODEL_JSON));
}

/**
 * Load shipped variant `v` as a Classifier on [0, 1] inputs (float16 weights are widened to float32
 * by tfjs' weight decoder on load).
 */
export async function loadMadryClassifier(v: MadryVariant, root?: string): Promise<Classifier> {
  const dir = madryModelDir(v, root);
  if (!fs.existsSync(path.join(dir, MODEL_JSON))) {
    throw new ModelLoadError(`expected the Madry model "${madryModelName(v)}" in ${dir}; got no model.json there (run \`npm run build && node dist/scripts/train-defaults.js --only ${madryModelName(v)}\`)`);
  }
  const model = await loadModel(dir);
  const meta = readModelMetadata(dir);
  const classNames = Array.isArray(meta.classNames) && meta.classNames.length === 10 ? (meta.classNames as string[]) : ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  return Classifier.fromModel(model, { name: madryModelName(v), classNames, low: 0, high: 1 });
}
