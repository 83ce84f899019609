/**
 * Save and load generators: a folder with generator.json (kind, config, weight manifest, training
 * info) and weights.bin (float32 little-endian, weights concatenated in manifest order).
 */
import { promises as fs, existsSync } from 'node:fs';
import * as path from 'node:path';
import { defaultModelsDir } from '../models/io.js';
import { ModelLoadError } from '../core/errors.js';
import { GENERATOR_FORMAT, generatorFromParts, type Manifest } from './format.js';
import type { ParamStore } from './params.js';
import type { Generator } from './types.js';
import { VAE } from './vae.js';
import type { Autoencoder } from './autoencoder.js';
import type { WGAN } from './gan.js';

export { GENERATOR_FORMAT, generatorFromParts, loadGeneratorFromUrl } from './format.js';

type Saveable = Generator & { params: ParamStore; config: object };

async function writeParams(params: ParamStore, dir: string, header: Omit<Manifest, 'weights' | 'format' | 'version'>): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const weights: Manifest['weights'] = [];
  const chunks: Buffer[] = [];
  for (const [name, v] of params.vars) {
    weights.push({ name, shape: v.shape });
    const data = (await v.data()) as Float32Array;
    chunks.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  const manifest: Manifest = { format: GENERATOR_FORMAT, version: 1, ...header, weights };
  await fs.writeFile(path.join(dir, 'weights.bin'), Buffer.concat(chunks));
  await fs.writeFile(path.join(dir, 'generator.json'), JSON.stringify(manifest, null, 2) + '\n');
}

/** Write a VAE, autoencoder or WGAN (generator and critic) to `dir`. */
export async function saveGenerator(gen: Saveable, dir: string): Promise<void> {
  await writeParams(gen.params, dir, { kind: gen.kind, name: gen.name, config: { ...(gen.config as Record<string, unknown>), ...extraConfig(gen) }, info: gen.info });
}

function extraConfig(gen: Saveable): Record<string, unknown> {
  return gen instanceof VAE ? { beta: gen.beta } : {};
}

/** Read a generator folder written by saveGenerator. Throws ModelLoadError when missing or corrupt. */
export async function loadGenerator(dir: string): Promise<VAE | Autoencoder | WGAN> {
  let manifest: unknown;
  let bin: Uint8Array;
  try {
    manifest = JSON.parse(await fs.readFile(path.join(dir, 'generator.json'), 'utf8'));
    bin = await fs.readFile(path.join(dir, 'weights.bin'));
  } catch (err) {
    throw new ModelLoadError(`expected a generator folder with generator.json and weights.bin at "${dir}"; got ${(err as Error).message}`);
  }
  return generatorFromParts(manifest, bin, dir);
}

/** The shipped models folder (GLASSWING_MODELS_DIR, else <package root>/models), shared with src/models. */
export function modelsDir(): string {
  return defaultModelsDir();
}

export const DEFAULT_GENERATORS = ['mnist-vae-2d', 'mnist-vae-10d'] as const;

const cache = new Map<string, Promise<Generator>>();

/**
 * A shipped generator by name (models/NAME), loaded once per process and shared: do not dispose it.
 * Names: mnist-vae-2d, mnist-vae-10d (trained by `npm run train:defaults`).
 */
/** Whether models/NAME holds a shipped generator. */
export function hasDefaultGenerator(name: string): boolean {
  return existsSync(path.join(modelsDir(), name, 'generator.json'));
}

export function loadDefaultGenerator(name: string): Promise<Generator> {
  let p = cache.get(name);
  if (!p) {
    const dir = path.isAbsolute(name) || name.includes('/') ? name : path.join(modelsDir(), name);
    p = loadGenerator(dir).then((g) => {
      g.name = name;
      return g;
    });
    p.catch(() => cache.delete(name));
    cache.set(name, p);
  }
  return p;
}
