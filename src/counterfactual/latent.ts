/**
 * Shared plumbing for the latent-space counterfactual methods (lse, lae, cdeepex, xgems): resolving
 * the `generator` option, checking it fits the classifier, and the latent code of the input.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { OptionError } from '../core/errors.js';
import type { Generator } from '../generative/types.js';
import { invertGenerator, type InversionOptions } from '../generative/inversion.js';

/** A generator object, or the name of one under models/ (e.g. 'mnist-vae-10d'), or a folder path. */
export type GeneratorOption = string | Generator;

let resolver: ((name: string) => Promise<Generator>) | undefined;

/**
 * How a `generator` option given by name is loaded. Node needs nothing (the shipped generators under
 * models/); a browser page sets one, e.g.
 * `setGeneratorResolver((name) => loadGeneratorFromUrl(\`./models/${name}\`))`. Resolved generators
 * are shared by every later call with that name; do not dispose them.
 */
export function setGeneratorResolver(fn: ((name: string) => Promise<Generator>) | undefined): void {
  resolver = fn;
  byName.clear();
}

const byName = new Map<string, Promise<Generator>>();

async function generatorNamed(name: string): Promise<Generator> {
  if (!resolver) {
    // The file loader reads models/ from disk; a non-literal specifier keeps bundlers from pulling
    // node:fs into a browser build (which sets a resolver instead).
    const spec = '../generative/io.js';
    const io = (await import(spec)) as typeof import('../generative/io.js');
    return io.loadDefaultGenerator(name);
  }
  let p = byName.get(name);
  if (!p) {
    p = resolver(name);
    p.catch(() => byName.delete(name));
    byName.set(name, p);
  }
  return p;
}

export async function resolveGenerator(option: unknown, classifier: Classifier, method: string): Promise<Generator> {
  let gen: Generator;
  if (typeof option === 'string') {
    gen = await generatorNamed(option);
  } else if (option && typeof option === 'object' && typeof (option as Generator).decode === 'function') {
    gen = option as Generator;
  } else {
    throw new OptionError(`method "${method}" expects option generator to be a generator object or the name of one under models/ (e.g. "mnist-vae-10d"); got ${String(option)}`);
  }
  const a = gen.outputShape.join('×');
  const b = classifier.inputShape.join('×');
  if (a !== b) {
    throw new OptionError(`method "${method}": generator "${gen.name}" makes images ${a}, but classifier "${classifier.name}" takes ${b}: pass option generator, a generator of ${b} images (the shipped ones are MNIST-sized)`);
  }
  return gen;
}

/** Latent codes for x: the encoder when the generator has one, else seed 001 Algorithm 2. */
export async function latentCode(
  gen: Generator,
  x: tf.Tensor4D,
  inversion: InversionOptions,
  classifier?: Classifier,
  labels?: number[],
): Promise<{ z0: tf.Tensor2D; method: 'encoder' | 'optimize'; mse: number[] }> {
  if (gen.encode && inversion.method !== 'optimize') {
    const z0 = gen.encode(x);
    return { z0, method: 'encoder', mse: [] };
  }
  const inv = await invertGenerator(gen, x, { ...inversion, method: 'optimize' }, classifier, labels);
  inv.residual.dispose();
  return { z0: inv.z0, method: 'optimize', mse: inv.mse };
}

/** Rows of a [N, k] tensor as plain arrays. */
export async function rows(t: tf.Tensor2D): Promise<number[][]> {
  return (await t.array()) as number[][];
}
