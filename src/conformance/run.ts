/**
 * runConformance(dir): load a fixture folder (FORMAT.md), compute every reference of its
 * attributions bundle that Glasswing has a counterpart for, and compare.
 *
 * Two kinds of fixture:
 *   - `weights/` + `input/` + `attributions/`: the model is an architecture registered by name
 *     (manifest.model; FORMAT.md §2) filled from the weights bundle;
 *   - `model/` (a TF.js layers model: model.json + shards) + `input/` + `attributions/` +
 *     `calibration.json`: the fixture carries its own model (FORMAT.md §6), loaded from files.
 *
 * Error measure (FORMAT.md §6.6): per-image relative L2 ‖a_i − b_i‖₂ / ‖b_i‖₂, the maximum over images;
 * `*_delta` outputs (one scalar per image) are compared absolutely when the fixture is calibrated.
 * Tolerance per output: with a calibration.json, max(floor, 3 × calibration[output]) where the floor is
 * the `tolerance` option (default 1e-4, the FORMAT's rule); without one, the `tolerance` option.
 * Images listed in calibration.all_zero_reference_maps must instead have max |output| ≤ 1e-6 (their
 * relative error is undefined). Nothing is written anywhere.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { Classifier } from '../core/classifier.js';
import { DataError } from '../core/errors.js';
import { readBundle, type Bundle } from './bundle.js';
import { loadFixtureClassifier, loadFixtureModelDir } from './models.js';
import { getReference, ReferenceNotApplicable, type ReferenceContext } from './references.js';

export type FixtureKind = 'weights' | 'model';

export interface ConformanceRow {
  method: string;
  /** 'rel-l2': per-image relative L2; 'abs': per-image absolute difference (calibrated *_delta outputs). */
  metric: 'rel-l2' | 'abs';
  /** Largest per-image error over the images not listed as all-zero (same as relL2; kept for callers). */
  error: number;
  /** Alias of `error` (the name of the first version of this API). */
  relL2: number;
  /** Per-image errors; for images in `zeroImages`, max |output| instead. */
  perImage: number[];
  /** The bound `error` is checked against. */
  tolerance: number;
  /** The fixture's calibration figure for this output (float32-vs-float64 error), when it has one. */
  calibration?: number;
  /** Images whose reference map is all zero (calibration.all_zero_reference_maps): checked by max |output| ≤ 1e-6. */
  zeroImages?: number[];
  /** Largest |output| over zeroImages. */
  zeroMaxAbs?: number;
  /** Something worth knowing about how the row was computed (e.g. the Grad-CAM layer). */
  note?: string;
  pass: boolean;
  ms: number;
}

export interface ConformanceResult {
  dir: string;
  kind: FixtureKind;
  model: string | null;
  images: number;
  /** The tolerance option: the bound of uncalibrated rows and the floor of calibrated ones. */
  tolerance: number;
  /** Whether a calibration.json gave per-output tolerances. */
  calibrated: boolean;
  rows: ConformanceRow[];
  /** Names in the attributions bundle not checked: no Glasswing counterpart, or not applicable here. */
  skipped: string[];
  /** Why each skipped name was skipped. */
  skippedReasons: Record<string, string>;
  pass: boolean;
}

/** The parts of calibration.json (FORMAT.md §6.6) the checker uses. */
export interface Calibration {
  fixture?: string;
  /** Per output: max over images and float32 runs of the per-image relative L2 error. */
  maxRelL2: Record<string, number>;
  /** Per *_delta output: max absolute difference. */
  maxAbsDelta: Record<string, number>;
  /** Per output: images whose reference map is exactly zero. */
  allZero: Record<string, number[]>;
}

/** Bound on max |output| for images whose reference is all zero. */
export const ALL_ZERO_BOUND = 1e-6;
/** FORMAT.md §6.6: a calibrated output passes when its error ≤ max(1e-4, 3 × calibration). */
export const CALIBRATION_FACTOR = 3;

/** Entries of an attributions bundle that are data, not maps to check. */
const DATA_NAMES = new Set(['input', 'target']);

function packageRoot(): string | undefined {
  let dir = path.dirname(new URL(import.meta.url).pathname);
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return undefined;
}

/** The fixtures vendored with the repository (test/fixtures/conformance), kept in step by `npm run sync:conformance`. */
export function vendoredConformanceDir(): string | undefined {
  const root = packageRoot();
  const dir = root ? path.join(root, 'test', 'fixtures', 'conformance') : undefined;
  return dir && fs.existsSync(dir) ? dir : undefined;
}

/** The shared fixtures beside the repository (../shared/conformance), when present. */
export function sharedConformanceDir(): string | undefined {
  const root = packageRoot() ?? process.cwd();
  const dir = path.resolve(root, '..', 'shared', 'conformance');
  return fs.existsSync(dir) ? dir : undefined;
}

/**
 * Where the fixtures are: $GLASSWING_CONFORMANCE_DIR, else the vendored copy in the repository
 * (test/fixtures/conformance), else ../shared/conformance beside the repository.
 */
export function defaultConformanceDir(): string {
  if (process.env.GLASSWING_CONFORMANCE_DIR) return process.env.GLASSWING_CONFORMANCE_DIR;
  return vendoredConformanceDir() ?? sharedConformanceDir() ?? path.resolve(packageRoot() ?? process.cwd(), '..', 'shared', 'conformance');
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

/** Per-image max |a_i − b_i| (a and b shaped alike, first axis = images). */
export function maxAbsPerImage(a: ArrayLike<number>, b: ArrayLike<number> | undefined, n: number): number[] {
  const per = a.length / n;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let j = i * per; j < (i + 1) * per; j++) m = Math.max(m, Math.abs(a[j] - (b ? b[j] : 0)));
    out.push(m);
  }
  return out;
}

/** Which kind of fixture `dir` is, or undefined when it is none. */
export function fixtureKind(dir: string): FixtureKind | undefined {
  if (!fs.existsSync(path.join(dir, 'attributions', 'manifest.json'))) return undefined;
  if (fs.existsSync(path.join(dir, 'model', 'model.json'))) return 'model';
  if (fs.existsSync(path.join(dir, 'weights', 'manifest.json'))) return 'weights';
  return undefined;
}

function numberMap(file: string, key: string, v: unknown): Record<string, number> {
  if (v == null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new DataError(`${file}: expected "${key}" to map output names to numbers; got ${JSON.stringify(v).slice(0, 60)}`);
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw new DataError(`${file}: expected "${key}.${k}" to be a finite number ≥ 0; got ${JSON.stringify(x)}`);
    out[k] = x;
  }
  return out;
}

/** Read DIR/calibration.json (FORMAT.md §6.6); undefined when the fixture has none. */
export function readCalibration(dir: string): Calibration | undefined {
  const file = path.join(dir, 'calibration.json');
  if (!fs.existsSync(file)) return undefined;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DataError(`${file}: expected valid JSON; got a parse error (${(e as Error).message.replace(/\s*\n\s*/g, ' ')})`);
  }
  if (json == null || typeof json !== 'object' || Array.isArray(json)) throw new DataError(`${file}: expected a JSON object; got ${JSON.stringify(json)?.slice(0, 40)}`);
  if (json.max_rel_l2 == null) throw new DataError(`${file}: expected "max_rel_l2" (per-output tolerances); got keys [${Object.keys(json).join(', ')}]`);
  const allZero: Record<string, number[]> = {};
  const az = json.all_zero_reference_maps;
  if (az != null) {
    if (typeof az !== 'object' || Array.isArray(az)) throw new DataError(`${file}: expected "all_zero_reference_maps" to map output names to image lists; got ${JSON.stringify(az).slice(0, 60)}`);
    for (const [k, v] of Object.entries(az as Record<string, unknown>)) {
      if (!Array.isArray(v) || v.some((i) => !Number.isInteger(i) || i < 0)) throw new DataError(`${file}: expected "all_zero_reference_maps.${k}" to be a list of image indices; got ${JSON.stringify(v)}`);
      allZero[k] = v as number[];
    }
  }
  return {
    fixture: typeof json.fixture === 'string' ? json.fixture : undefined,
    maxRelL2: numberMap(file, 'max_rel_l2', json.max_rel_l2),
    maxAbsDelta: numberMap(file, 'max_abs_for_delta_outputs', json.max_abs_for_delta_outputs),
    allZero,
  };
}

/** How an output is measured and the bound it must meet. */
export function toleranceFor(name: string, calibration: Calibration | undefined, floor: number): { metric: 'rel-l2' | 'abs'; tolerance: number; calibration?: number } {
  if (calibration) {
    if (name in calibration.maxAbsDelta) {
      const c = calibration.maxAbsDelta[name];
      return { metric: 'abs', tolerance: Math.max(floor, CALIBRATION_FACTOR * c), calibration: c };
    }
    if (name in calibration.maxRelL2) {
      const c = calibration.maxRelL2[name];
      return { metric: 'rel-l2', tolerance: Math.max(floor, CALIBRATION_FACTOR * c), calibration: c };
    }
    // a delta the calibration does not list is still a difference of scalars: compare absolutely
    if (name.endsWith('_delta')) return { metric: 'abs', tolerance: floor };
  }
  return { metric: 'rel-l2', tolerance: floor };
}

function sub(dir: string, name: string): string {
  const p = path.join(dir, name);
  if (!fs.existsSync(path.join(p, 'manifest.json'))) {
    throw new DataError(`fixture ${dir}: expected a bundle folder "${name}/" with a manifest.json; got none`);
  }
  return p;
}

/**
 * When the attributions record the sha256 of the model files they were computed on
 * (attrs.params.model.sha256), the fixture's files must match: a changed model would otherwise show
 * up as unexplained failures of every output.
 */
function verifyModelHashes(dir: string, params: Record<string, any>): void {
  const hashes = params?.model?.sha256;
  if (!hashes || typeof hashes !== 'object') return;
  for (const [file, want] of Object.entries(hashes as Record<string, unknown>)) {
    if (typeof want !== 'string' || file.includes('/') || file.includes('\\')) continue;
    const p = path.join(dir, 'model', file);
    if (!fs.existsSync(p)) continue; // the loader reports missing files
    const got = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    if (got !== want.toLowerCase()) {
      throw new DataError(`fixture ${dir}: model/${file} has sha256 ${got}; the references were computed on a file with sha256 ${want} (the model was changed or is corrupt)`);
    }
  }
}

async function fixtureClassifier(dir: string, kind: FixtureKind, model: string | null, weights?: Bundle): Promise<Classifier> {
  if (kind === 'weights') return loadFixtureClassifier(weights!, model);
  const m = await loadFixtureModelDir(path.join(dir, 'model'));
  try {
    return Classifier.fromModel(m, { name: model ?? path.basename(dir) });
  } catch (e) {
    m.dispose();
    throw e;
  }
}

export interface ConformanceOptions {
  /** Bound of uncalibrated outputs and floor of calibrated ones; default 1e-4. */
  tolerance?: number;
  /** Check only these outputs. */
  only?: string[];
  /** Called after each row (progress output). */
  onRow?: (row: ConformanceRow) => void;
}

/** Check a fixture folder against Glasswing. Throws DataError for a malformed fixture, UnsupportedLayerError for a model Glasswing cannot execute. */
export async function runConformance(dir: string, opts: ConformanceOptions = {}): Promise<ConformanceResult> {
  const floor = opts.tolerance ?? 1e-4;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new DataError(`expected a fixture folder; got ${dir} (not a directory)`);
  const attributions = readBundle(sub(dir, 'attributions'), { kind: 'attributions' });
  const kind: FixtureKind | undefined = fixtureKind(dir);
  if (!kind) throw new DataError(`fixture ${dir}: expected a model/ folder (model.json) or a weights/ bundle beside attributions/; got neither`);
  const weights = kind === 'weights' ? readBundle(sub(dir, 'weights'), { kind: 'weights' }) : undefined;
  const inputDir = path.join(dir, 'input');
  const input: Bundle | undefined = fs.existsSync(path.join(inputDir, 'manifest.json')) ? readBundle(inputDir, { kind: 'input' }) : undefined;
  const calibration = readCalibration(dir);
  const model = weights?.manifest.model ?? attributions.manifest.model ?? input?.manifest.model ?? null;
  const source = attributions.has('input') ? attributions : input;
  if (!source || !source.has('input')) throw new DataError(`fixture ${dir}: expected a tensor "input" in attributions/ or input/; got none`);
  const params = ((attributions.manifest.attrs as Record<string, any> | undefined)?.params ?? {}) as Record<string, any>;
  const classifier = await fixtureClassifier(dir, kind, model, weights);
  const x = source.tensor('input') as tf.Tensor4D;
  const memo: NonNullable<ReferenceContext['memo']> = new Map();
  let baselines: tf.Tensor4D | undefined;
  try {
    // after loading, so that a model tfjs cannot read or Glasswing cannot run is reported as such
    if (kind === 'model') verifyModelHashes(dir, params);
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
    const shapes = new Map(attributions.names.map((name) => [name, attributions.data(name).shape]));
    // the input bundle's baseline distribution (deeplift_shap, gradient_shap_fixed), when it has one
    if (input?.has('baselines')) baselines = input.tensor('baselines') as tf.Tensor4D;
    const ctx: ReferenceContext = { classifier, input: x, targets, params, model, shapes, memo, baselines };
    const rows: ConformanceRow[] = [];
    const skipped: string[] = [];
    const skippedReasons: Record<string, string> = {};
    for (const name of attributions.names) {
      if (DATA_NAMES.has(name)) continue;
      if (opts.only && !opts.only.includes(name)) continue;
      const fn = getReference(name);
      if (!fn) {
        skipped.push(name);
        skippedReasons[name] = 'no Glasswing counterpart';
        continue;
      }
      const ref = attributions.data(name);
      const start = performance.now();
      let out;
      try {
        out = await fn(ctx);
      } catch (e) {
        if (e instanceof ReferenceNotApplicable) {
          skipped.push(name);
          skippedReasons[name] = e.message;
          continue;
        }
        // A method that cannot run on this model fails its row (with the reason) instead of ending
        // the run: the other outputs of an unseen fixture still get checked.
        const { metric, tolerance, calibration: cal } = toleranceFor(name, calibration, floor);
        const images = ref.shape[0] ?? 1;
        const reason = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
        const row: ConformanceRow = {
          method: name, metric, error: Infinity, relL2: Infinity, perImage: new Array(images).fill(Infinity), tolerance, calibration: cal,
          note: `failed to compute: ${reason}`, pass: false, ms: performance.now() - start,
        };
        rows.push(row);
        opts.onRow?.(row);
        continue;
      }
      const mine = out instanceof tf.Tensor ? out : out.value;
      const scale = out instanceof tf.Tensor ? undefined : out.scale;
      const note = out instanceof tf.Tensor ? undefined : out.note;
      const ms = performance.now() - start;
      const got = (await mine.data()) as Float32Array;
      const shapeOk = mine.shape.length === ref.shape.length && mine.shape.every((d, i) => d === ref.shape[i]);
      mine.dispose();
      const { metric, tolerance, calibration: cal } = toleranceFor(name, calibration, floor);
      const images = ref.shape[0] ?? 1;
      let perImage: number[];
      if (!shapeOk) perImage = new Array(images).fill(Infinity);
      else if (metric === 'abs') perImage = maxAbsPerImage(got, ref.data, images);
      else perImage = relativeL2PerImage(got, ref.data as Float32Array, images, scale);
      const zeroImages = (calibration?.allZero[name] ?? []).filter((i) => i < images);
      let zeroMaxAbs: number | undefined;
      if (zeroImages.length) {
        const absOut = shapeOk ? maxAbsPerImage(got, undefined, images) : perImage;
        for (const i of zeroImages) perImage[i] = absOut[i];
        zeroMaxAbs = Math.max(...zeroImages.map((i) => absOut[i]));
      }
      const others = perImage.filter((_, i) => !zeroImages.includes(i));
      const error = others.length ? Math.max(...others) : 0;
      const pass = error <= tolerance && (zeroMaxAbs === undefined || zeroMaxAbs <= ALL_ZERO_BOUND);
      const row: ConformanceRow = {
        method: name, metric, error, relL2: error, perImage, tolerance, calibration: cal,
        zeroImages: zeroImages.length ? zeroImages : undefined, zeroMaxAbs, note: shapeOk ? note : `shape [${mine.shape.join(', ')}] ≠ reference [${ref.shape.join(', ')}]`, pass, ms,
      };
      rows.push(row);
      opts.onRow?.(row);
    }
    return { dir, kind, model, images: n, tolerance: floor, calibrated: calibration !== undefined, rows, skipped, skippedReasons, pass: rows.every((r) => r.pass) };
  } finally {
    for (const m of memo.values()) m.attribution.dispose();
    baselines?.dispose();
    x.dispose();
    classifier.model?.dispose();
  }
}

/** Fixture folders (attributions/ beside weights/ or model/) directly under a folder, or the folder itself. */
export function findFixtures(root: string): string[] {
  if (fixtureKind(root)) return [root];
  if (!fs.existsSync(root)) throw new DataError(`expected a fixture folder or a folder of fixtures; got ${root} (no such folder)`);
  return fs.readdirSync(root).map((d) => path.join(root, d)).filter((d) => fs.statSync(d).isDirectory() && fixtureKind(d) !== undefined).sort();
}
