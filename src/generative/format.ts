/**
 * The generator file format (generator.json + weights.bin) read from bytes, so the same parser
 * serves the Node loader (files, io.ts) and the browser loader (URLs, `loadGeneratorFromUrl`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ModelLoadError } from '../core/errors.js';
import type { Generator } from './types.js';
import { VAE, type VaeConfig } from './vae.js';
import { Autoencoder, type AutoencoderConfig } from './autoencoder.js';
import { WGAN, type GanConfig } from './gan.js';

export const GENERATOR_FORMAT = 'glasswing-generator';

export interface Manifest {
  format: string;
  version: 1;
  kind: Generator['kind'];
  name: string;
  config: Record<string, unknown>;
  weights: Array<{ name: string; shape: number[] }>;
  info: Record<string, unknown>;
}

/** A generator from its parsed generator.json and the bytes of weights.bin; `where` names them in errors. */
export function generatorFromParts(manifestJson: unknown, bin: Uint8Array, where: string): VAE | Autoencoder | WGAN {
  const manifest = manifestJson as Manifest;
  if (!manifest || manifest.format !== GENERATOR_FORMAT) {
    throw new ModelLoadError(`expected generator.json of format "${GENERATOR_FORMAT}" in "${where}"; got "${String(manifest?.format)}"`);
  }
  let gen: VAE | Autoencoder | WGAN;
  if (manifest.kind === 'vae') gen = new VAE(manifest.config as unknown as VaeConfig, manifest.name);
  else if (manifest.kind === 'ae') gen = new Autoencoder(manifest.config as unknown as AutoencoderConfig, manifest.name);
  else if (manifest.kind === 'gan') gen = new WGAN(manifest.config as unknown as GanConfig, manifest.name);
  else throw new ModelLoadError(`expected generator kind vae, ae or gan in "${where}"; got "${String(manifest.kind)}"`);
  const expectedBytes = manifest.weights.reduce((s, w) => s + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  if (bin.byteLength !== expectedBytes) {
    gen.dispose();
    throw new ModelLoadError(`expected ${expectedBytes} bytes of weights for "${where}"; got ${bin.byteLength}`);
  }
  // A copy: the bytes need not be 4-aligned within their buffer.
  const floats = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const values = new Map<string, tf.Tensor>();
  let offset = 0;
  for (const w of manifest.weights) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    values.set(w.name, tf.tensor(floats.subarray(offset, offset + size), w.shape));
    offset += size;
  }
  try {
    gen.params.assign(values);
  } catch (err) {
    gen.dispose();
    throw new ModelLoadError(`generator "${where}" does not match its config: ${(err as Error).message}`);
  } finally {
    tf.dispose([...values.values()]);
  }
  gen.info = manifest.info ?? {};
  return gen;
}

/**
 * A generator from a URL of its folder (generator.json and weights.bin beside each other), e.g. in a
 * browser: `await loadGeneratorFromUrl('./models/mnist-vae-10d')`.
 */
export async function loadGeneratorFromUrl(url: string): Promise<VAE | Autoencoder | WGAN> {
  const base = url.endsWith('/') ? url : `${url}/`;
  let manifest: unknown;
  let bin: Uint8Array;
  try {
    const [m, w] = await Promise.all([fetch(`${base}generator.json`), fetch(`${base}weights.bin`)]);
    if (!m.ok || !w.ok) throw new Error(`HTTP ${m.status} / ${w.status}`);
    manifest = await m.json();
    bin = new Uint8Array(await w.arrayBuffer());
  } catch (err) {
    throw new ModelLoadError(`expected generator.json and weights.bin at "${base}"; got ${(err as Error).message}`);
  }
  return generatorFromParts(manifest, bin, base);
}
