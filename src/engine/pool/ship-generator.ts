/**
 * Shipping generative models (the VAE / autoencoder / WGAN decoders that LSE, LAE, CDeepEx and xGEMs
 * take as their `generator` option) to pool workers, cached by model identity like classifiers
 * (ship.ts): the weights are read once per generator version (and kept packed in the calling thread);
 * a call sends only the key once this thread has sent the model to some worker, and a worker that
 * does not hold the key (new, or replaced after a crash) fails with MissingGeneratorError, upon which
 * the call is sent again with the model. Workers keep the generators they were sent (LRU, 4).
 * The pool's `shared` value goes to every worker of a call alike, so the model cannot be sent to
 * just the workers that lack it; a wasted first attempt happens only when a worker is new.
 *
 * What goes: the generator's kind, config, name, info and every parameter (float32), i.e. exactly what
 * `saveGenerator` writes; the worker rebuilds it with `generatorFromParts`, the parser the file and URL
 * loaders use, so a shipped generator decodes bit for bit as the caller's.
 *
 * What cannot go: a generator object of another class (a user's object implementing `Generator`
 * with its own decode function): its code is a closure on the caller's thread. Such calls run in the
 * caller's thread (`notShippableGenerator` says why).
 *
 * Key: a number per generator object plus a version over its parameters' buffer ids (training assigns
 * new buffers), as for classifiers — no weight bytes are hashed.
 */

import type { Generator } from '../../generative/types.js';
import { VAE } from '../../generative/vae.js';
import { Autoencoder } from '../../generative/autoencoder.js';
import { WGAN } from '../../generative/gan.js';
import { GENERATOR_FORMAT, generatorFromParts, type Manifest } from '../../generative/format.js';
import { GlasswingError } from '../../core/errors.js';
import { registerWireError } from './wire.js';
import type { Classifier } from '../../core/classifier.js';
import { resolveGenerator } from '../../counterfactual/latent.js';

/** A generator reference inside method options on the wire: the key, and the model itself when the worker may lack it. */
export interface WireGenerator {
  __gwGenerator: string;
  model?: { manifest: Manifest; weights: Float32Array };
}

type Shippable = VAE | Autoencoder | WGAN;

/** Why this generator cannot be sent to a worker, or undefined when it can. */
export function notShippableGenerator(gen: Generator): string | undefined {
  if (gen instanceof VAE || gen instanceof Autoencoder || gen instanceof WGAN) return undefined;
  return `generator "${gen.name}" is a ${gen.constructor?.name ?? 'plain'} object with its own decode function, which cannot be sent to another thread (only Glasswing's VAE, autoencoder and WGAN can)`;
}

/** Whether a value is a generator object (has decode and an output shape). */
export function isGenerator(v: unknown): v is Generator {
  return !!v && typeof v === 'object' && typeof (v as Generator).decode === 'function' && Array.isArray((v as Generator).outputShape);
}

const ids = new WeakMap<object, number>();
const bufferIds = new WeakMap<object, number>();
let next = 1;
function idOf(map: WeakMap<object, number>, k: object): number {
  let id = map.get(k);
  if (id === undefined) {
    id = next++;
    map.set(k, id);
  }
  return id;
}

/** The generator's key: stable while neither the object nor any parameter buffer changes. */
export function generatorKey(gen: Generator): string {
  const id = idOf(ids, gen);
  if (notShippableGenerator(gen)) return `gf${id}`;
  let h = 0x811c9dc5;
  for (const v of (gen as Shippable).params.vars.values()) {
    h ^= idOf(bufferIds, v.dataId as object);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `g${id}.${h.toString(36)}`;
}

/** The generator as a manifest and one float32 array of its parameters (what saveGenerator writes), read once. */
export function packGenerator(gen: Generator): { manifest: Manifest; weights: Float32Array } {
  const why = notShippableGenerator(gen);
  if (why) throw new Error(`internal: ${why}`);
  const g = gen as Shippable;
  const vars = [...g.params.vars];
  const total = vars.reduce((s, [, v]) => s + v.size, 0);
  const weights = new Float32Array(total);
  let offset = 0;
  for (const [, v] of vars) {
    weights.set(v.dataSync() as Float32Array, offset);
    offset += v.size;
  }
  const config = { ...(g.config as unknown as Record<string, unknown>), ...(g instanceof VAE ? { beta: g.beta } : {}) };
  const manifest: Manifest = {
    format: GENERATOR_FORMAT, version: 1, kind: g.kind, name: g.name, config,
    weights: vars.map(([name, v]) => ({ name, shape: v.shape.slice() })), info: plainInfo(g.info),
  };
  return { manifest, weights };
}

/** The info record keeps what structured cloning can copy (numbers, strings, arrays, plain objects). */
function plainInfo(info: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(JSON.stringify(info ?? {})) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** `options` without its generator objects (they are shipped by key; the rest must be plain data). */
export function withoutGenerators(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => !isGenerator(v)));
}

/** The wire form of `options`: each generator object replaced by its key, with the model when `models` is set. */
function wireOptions(options: Record<string, unknown>, models: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (!isGenerator(v)) {
      out[k] = v;
      continue;
    }
    const key = generatorKey(v);
    const w: WireGenerator = models ? { __gwGenerator: key, model: packedGenerator(v, key) } : { __gwGenerator: key };
    // The calling thread runs chunks too, with these very options: it uses its own object (a
    // non-enumerable property is neither encoded nor cloned into a message).
    Object.defineProperty(w, 'local', { value: v, enumerable: false });
    out[k] = w;
  }
  return out;
}

/** Packed weights per generator object and key (read once; cloned, not transferred, into each message). */
const packed = new WeakMap<object, { key: string; model: { manifest: Manifest; weights: Float32Array } }>();
function packedGenerator(gen: Generator, key: string): { manifest: Manifest; weights: Float32Array } {
  const p = packed.get(gen);
  if (p && p.key === key) return p.model;
  const model = packGenerator(gen);
  packed.set(gen, { key, model });
  return model;
}

/** Generator keys some worker of this thread's pool has been sent (a hint: a worker that lacks one asks again). */
const sentKeys = new Set<string>();

/**
 * Run `run` (the pool's dispatch of one call) with `options` made fit for the workers: a generator
 * named by a string in option `generator` is resolved here (the page's resolver or models/ on disk:
 * a browser worker has neither) and every generator object is replaced by its key — plus the model
 * itself the first time this key goes out; a worker that does not hold it fails the call with
 * MissingGeneratorError and the call is sent again with the models (a new or replaced worker).
 * Resolves undefined when a generator cannot be shipped: the call must run in the calling thread.
 */
export async function shipGeneratorOptions<T>(
  options: Record<string, unknown>,
  classifier: Classifier,
  method: string,
  run: (options: Record<string, unknown>) => Promise<T>,
): Promise<T | undefined> {
  let opts = options;
  // the same resolution (and the same refusal of a generator of the wrong image size) as in the method
  if (typeof options.generator === 'string') opts = { ...options, generator: await resolveGenerator(options.generator, classifier, method) };
  const gens = Object.values(opts).filter(isGenerator);
  if (gens.length === 0) return run(opts);
  if (gens.some((g) => notShippableGenerator(g))) return undefined;
  const keys = gens.map(generatorKey);
  const known = keys.every((k) => sentKeys.has(k));
  try {
    const r = await run(wireOptions(opts, !known));
    keys.forEach((k) => sentKeys.add(k));
    return r;
  } catch (err) {
    if (!known || !(err instanceof Error) || err.name !== 'MissingGeneratorError') throw err;
    const r = await run(wireOptions(opts, true));
    keys.forEach((k) => sentKeys.add(k));
    return r;
  }
}

/** Generators this worker holds, by key, most recently used last (a few are kept; each is ~1–10 MB). */
const held = new Map<string, Generator>();
/** How many generators a worker keeps before disposing the least recently used. */
export const HELD_GENERATORS = 4;

/** Thrown inside a worker that was sent a generator key it does not hold (the caller resends the call with the model). */
export class MissingGeneratorError extends GlasswingError {}
registerWireError(MissingGeneratorError);

/** Worker side: replace each wire generator in `options` by the generator it names (built and cached when sent). */
export function decodeGenerators(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (!v || typeof v !== 'object' || typeof (v as WireGenerator).__gwGenerator !== 'string') {
      out[k] = v;
      continue;
    }
    const w = v as WireGenerator & { local?: Generator };
    if (w.local) {
      out[k] = w.local;
      continue;
    }
    let gen = held.get(w.__gwGenerator);
    if (!gen) {
      if (!w.model) throw new MissingGeneratorError(`internal: this worker does not hold generator ${w.__gwGenerator}`);
      const m = w.model;
      gen = generatorFromParts(m.manifest, new Uint8Array(m.weights.buffer, m.weights.byteOffset, m.weights.byteLength), `generator ${m.manifest.name} sent by the pool`);
      gen.name = m.manifest.name;
      held.set(w.__gwGenerator, gen);
      while (held.size > HELD_GENERATORS) {
        const [oldKey, old] = held.entries().next().value as [string, Generator];
        held.delete(oldKey);
        old.dispose();
      }
    } else {
      // most recently used last
      held.delete(w.__gwGenerator);
      held.set(w.__gwGenerator, gen);
    }
    out[k] = gen;
  }
  return out;
}

/** Keys of the generators this worker holds (tests). */
export function heldGeneratorKeys(): string[] {
  return [...held.keys()];
}

/** Dispose every held generator (worker shutdown). */
export function releaseHeldGenerators(): void {
  for (const g of held.values()) g.dispose();
  held.clear();
}


