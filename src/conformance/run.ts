/**
 * runConformance(dir): load a fixture folder (weights/, input/, attributions/ bundles in the
 * FORMAT.md layout), rebuild the model, compute every reference the attributions bundle holds that
 * Glasswing knows, and compare: relative L2 error ‖a − b‖₂ / ‖b‖₂ per image, the maximum over images.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DataError } from '../core/errors.js';
import { readBundle, type Bundle } from './bundle.js';
import { loadFixtureClassifier } from './models.js';
import { getReference, type ReferenceContext } from './references.js';

export interface ConformanceRow {
  method: string;
  /** Largest per-image relative L2 error. */
  relL2: number;
  /** Per-image relative L2 errors. */
  perImage: number[];
  pass: boolean;
  ms: number;
}

export interface ConformanceResult {
  dir: string;
  model: string | null;
  images: number;
  tolerance: number;
  rows: ConformanceRow[];
  /** Names in the attributions bundle without a Glasswing counterpart. */
  skipped: string[];
  pass: boolean;
}

/** Entries of an attributions bundle that are data, not maps to check. */
const DATA_NAMES = new Set(['input', 'target']);

/** Default location of the shared fixtures: $GLASSWING_CONFORMANCE_DIR, else ../shared/conformance from the repo root. */
export function defaultConformanceDir(): string {
  if (process.env.GLASSWING_CONFORMANCE_DIR) return process.env.GLASSWING_CONFORMANCE_DIR;
  let dir = path.dirname(new URL(import.meta.url).pathname);
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return path.resolve(dir, '..', 'shared', 'conformance');
    dir = path.dirname(dir);
  }
  return path.resolve(process.cwd(), '..', 'shared', 'conformance');
}

/** Per-image relative L2 error ‖a_i − b_i‖₂ / ‖b_i‖₂ (or / scale_i) of a against b (same shape, first axis = images). */
export function relativeL2PerImage(a: Float32Array | Float64Array, b: Float32Array | Float64Array, n: number, scale?: number[]): number[] {
  if (a.length !== b.length) throw new DataError(`expected maps of equal size; got ${a.length} and ${b.length}`);
  const per = a.length / n;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let num = 0;
    let den = 0;
    for (let j = i * per; j < (i + 1) * per; j++) {
      num += (a[j] - b[j]) ** 2;
      den += b[j] ** 2;
    }
    const d = scale ? scale[i] : Math.sqrt(den);
    out.push(d > 0 ? Math.sqrt(num) / d : Math.sqrt(num));
  }
  return out;
}

function sub(dir: string, name: string): string {
  const p = path.join(dir, name);
  if (!fs.existsSync(path.join(p, 'manifest.json'))) {
    throw new DataError(`fixture ${dir}: expected a bundle folder "${name}/" with a manifest.json; got none`);
  }
  return p;
}

/** Check a fixture folder against Glasswing. Throws DataError for a malformed fixture. */
export async function runConformance(dir: string, opts: { tolerance?: number; only?: string[]; onRow?: (row: ConformanceRow) => void } = {}): Promise<ConformanceResult> {
  const tolerance = opts.tolerance ?? 1e-4;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new DataError(`expected a fixture folder; got ${dir} (not a directory)`);
  const weights = readBundle(sub(dir, 'weights'), { kind: 'weights' });
  const attributions = readBundle(sub(dir, 'attributions'), { kind: 'attributions' });
  const inputDir = path.join(dir, 'input');
  const input: Bundle | undefined = fs.existsSync(path.join(inputDir, 'manifest.json')) ? readBundle(inputDir, { kind: 'input' }) : undefined;
  const model = weights.manifest.model ?? attributions.manifest.model ?? null;
  const classifier = loadFixtureClassifier(weights, model);
  const source = attributions.has('input') ? attributions : input;
  if (!source || !source.has('input')) throw new DataError(`fixture ${dir}: expected a tensor "input" in attributions/ or input/; got none`);
  const x = source.tensor('input') as tf.Tensor4D;
  try {
    if (x.rank !== 4) throw new DataError(`fixture ${dir}: expected input of rank 4 [N,H,W,C]; got [${x.shape.join(', ')}]`);
    classifier.validateInput(x, { checkRange: false });
    const n = x.shape[0];
    let targets: number[];
    const tsrc = attributions.has('target') ? attributions : input?.has('target') ? input : undefined;
    if (tsrc) {
      targets = Array.from(tsrc.data('target').data);
      if (targets.length !== n) throw new DataError(`fixture ${dir}: expected ${n} targets; got ${targets.length}`);
      for (const t of targets) {
        if (!Number.isInteger(t) || t < 0 || t >= classifier.numClasses) throw new DataError(`fixture ${dir}: expected targets in 0..${classifier.numClasses - 1}; got ${t}`);
      }
    } else {
      // FORMAT.md §3: without a target the reference explains argmax(logits).
      const logits = attributions.has('logits') ? attributions.tensor('logits') : classifier.logits(x);
      const am = tf.argMax(logits, 1);
      targets = Array.from(await am.data());
      tf.dispose([am, logits]);
    }
    const params = ((attributions.manifest.attrs as Record<string, any> | undefined)?.params ?? {}) as Record<string, any>;
    const ctx: ReferenceContext = { classifier, input: x, targets, params, model };
    const rows: ConformanceRow[] = [];
    const skipped: string[] = [];
    for (const name of attributions.names) {
      if (DATA_NAMES.has(name)) continue;
      if (opts.only && !opts.only.includes(name)) continue;
      const fn = getReference(name);
      if (!fn) {
        skipped.push(name);
        continue;
      }
      const ref = attributions.data(name);
      const start = performance.now();
      const out = await fn(ctx);
      const mine = out instanceof tf.Tensor ? out : out.value;
      const scale = out instanceof tf.Tensor ? undefined : out.scale;
      const ms = performance.now() - start;
      const got = (await mine.data()) as Float32Array;
      const shapeOk = mine.shape.length === ref.shape.length && mine.shape.every((d, i) => d === ref.shape[i]);
      mine.dispose();
      let perImage: number[];
      if (!shapeOk) {
        perImage = new Array(n).fill(Infinity);
      } else {
        perImage = relativeL2PerImage(got, ref.data as Float32Array, ref.shape[0] ?? 1, scale);
      }
      const relL2 = Math.max(...perImage);
      const row = { method: name, relL2, perImage, pass: relL2 <= tolerance, ms };
      rows.push(row);
      opts.onRow?.(row);
    }
    return { dir, model, images: n, tolerance, rows, skipped, pass: rows.every((r) => r.pass) };
  } finally {
    x.dispose();
    classifier.model?.dispose();
  }
}

/** Fixture folders (those with weights/ and attributions/) directly under a folder, or the folder itself. */
export function findFixtures(root: string): string[] {
  const isFixture = (d: string) => fs.existsSync(path.join(d, 'weights', 'manifest.json')) && fs.existsSync(path.join(d, 'attributions', 'manifest.json'));
  if (isFixture(root)) return [root];
  if (!fs.existsSync(root)) throw new DataError(`expected a fixture folder or a folder of fixtures; got ${root} (no such folder)`);
  return fs.readdirSync(root).map((d) => path.join(root, d)).filter((d) => fs.statSync(d).isDirectory() && isFixture(d)).sort();
}
