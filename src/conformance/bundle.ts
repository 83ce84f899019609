/**
 * Reader and writer for `xai-anchors-tensors` v1 bundles (../shared/conformance/FORMAT.md): a folder
 * with manifest.json and one raw little-endian file per tensor. The reader checks format, version,
 * dtypes, shapes, byte lengths and (when present) sha256, and throws DataError saying what was
 * expected and what came.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { DataError } from '../core/errors.js';

export type BundleKind = 'weights' | 'input' | 'attributions';

export interface TensorEntry {
  name: string;
  dtype: 'float32' | 'int32';
  shape: number[];
  file: string;
  byteLength: number;
  sha256?: string;
}

export interface BundleManifest {
  format: 'xai-anchors-tensors';
  version: 1;
  kind: BundleKind;
  layout?: string;
  byteOrder?: string;
  model?: string | null;
  tensors: TensorEntry[];
  attrs?: Record<string, unknown>;
}

/** A bundle read into memory: tensors as typed arrays (no tfjs memory is held until you ask). */
export interface Bundle {
  dir: string;
  manifest: BundleManifest;
  /** Names in manifest order. */
  names: string[];
  has(name: string): boolean;
  /** Raw data and shape of one tensor. */
  data(name: string): { data: Float32Array | Int32Array; shape: number[]; dtype: 'float32' | 'int32' };
  /** A new tf.Tensor for one entry (the caller disposes it). */
  tensor(name: string): tf.Tensor;
}

function fail(dir: string, what: string): never {
  throw new DataError(`bundle ${dir}: ${what}`);
}

/** Read a bundle folder. `kind` (optional) is checked against the manifest. */
export function readBundle(dir: string, opts: { kind?: BundleKind; verifyHash?: boolean } = {}): Bundle {
  const manifestPath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(manifestPath)) fail(dir, `expected a manifest.json; got no such file`);
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  } catch (e) {
    fail(dir, `expected manifest.json to be valid JSON; got a parse error (${(e as Error).message})`);
  }
  if (manifest == null || typeof manifest !== 'object') fail(dir, 'expected manifest.json to hold an object');
  if (manifest.format !== 'xai-anchors-tensors') fail(dir, `expected format "xai-anchors-tensors"; got ${JSON.stringify(manifest.format)}`);
  if (manifest.version !== 1) fail(dir, `expected version 1; got ${JSON.stringify(manifest.version)}`);
  if (!['weights', 'input', 'attributions'].includes(manifest.kind)) fail(dir, `expected kind weights, input or attributions; got ${JSON.stringify(manifest.kind)}`);
  if (opts.kind && manifest.kind !== opts.kind) fail(dir, `expected a bundle of kind "${opts.kind}"; got "${manifest.kind}"`);
  if (manifest.layout != null && manifest.layout !== 'NHWC') fail(dir, `expected layout NHWC; got ${JSON.stringify(manifest.layout)}`);
  if (manifest.byteOrder != null && manifest.byteOrder !== 'little') fail(dir, `expected byteOrder little; got ${JSON.stringify(manifest.byteOrder)}`);
  if (!Array.isArray(manifest.tensors)) fail(dir, 'expected "tensors" to be a list');
  const entries = new Map<string, TensorEntry>();
  const cache = new Map<string, { data: Float32Array | Int32Array; shape: number[]; dtype: 'float32' | 'int32' }>();
  for (const t of manifest.tensors) {
    if (!t || typeof t.name !== 'string') fail(dir, `expected every tensor entry to have a name; got ${JSON.stringify(t)}`);
    if (entries.has(t.name)) fail(dir, `expected unique tensor names; got "${t.name}" twice`);
    if (t.dtype !== 'float32' && t.dtype !== 'int32') fail(dir, `tensor "${t.name}": expected dtype float32 or int32; got ${JSON.stringify(t.dtype)}`);
    if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      fail(dir, `tensor "${t.name}": expected a shape of non-negative integers; got ${JSON.stringify(t.shape)}`);
    }
    if (typeof t.file !== 'string' || t.file.includes('/') || t.file.includes('\\') || t.file === '..') {
      fail(dir, `tensor "${t.name}": expected a plain file name; got ${JSON.stringify(t.file)}`);
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.byteLength !== 4 * count) fail(dir, `tensor "${t.name}": expected byteLength 4 × ${count} = ${4 * count} for shape [${t.shape.join(', ')}]; got ${t.byteLength}`);
    entries.set(t.name, t);
  }
  const load = (name: string) => {
    const hit = cache.get(name);
    if (hit) return hit;
    const t = entries.get(name);
    if (!t) fail(dir, `expected a tensor named "${name}"; got only ${[...entries.keys()].join(', ')}`);
    const file = path.join(dir, t.file);
    if (!fs.existsSync(file)) fail(dir, `tensor "${name}": expected file ${t.file}; got no such file`);
    const buf = fs.readFileSync(file);
    if (buf.byteLength !== t.byteLength) fail(dir, `tensor "${name}": expected ${t.byteLength} bytes in ${t.file}; got ${buf.byteLength}`);
    if (t.sha256 && opts.verifyHash !== false) {
      const h = createHash('sha256').update(buf).digest('hex');
      if (h !== t.sha256.toLowerCase()) fail(dir, `tensor "${name}": expected sha256 ${t.sha256}; got ${h} (file ${t.file} is corrupt or was changed)`);
    }
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const data = t.dtype === 'int32' ? new Int32Array(ab) : new Float32Array(ab);
    if (t.dtype === 'float32') {
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) fail(dir, `tensor "${name}": expected finite values; got ${data[i]} at index ${i}`);
      }
    }
    const v = { data, shape: t.shape.slice(), dtype: t.dtype };
    cache.set(name, v);
    return v;
  };
  // Read and verify every file up front, so a bad bundle fails when it is opened.
  for (const name of entries.keys()) load(name);
  return {
    dir,
    manifest,
    names: [...entries.keys()],
    has: (name) => entries.has(name),
    data: load,
    tensor: (name) => {
      const v = load(name);
      return tf.tensor(v.data, v.shape, v.dtype);
    },
  };
}

/** File name a writer derives from a tensor name (FORMAT.md §1.1). */
export function bundleFileName(name: string): string {
  return name.replace(/\//g, '__').replace(/[^A-Za-z0-9._-]/g, '_') + '.bin';
}

/** Write tensors as a bundle (with sha256). */
export async function writeBundle(
  dir: string,
  kind: BundleKind,
  tensors: Array<[string, tf.Tensor]>,
  opts: { model?: string | null; attrs?: Record<string, unknown> } = {},
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const entries: TensorEntry[] = [];
  for (const [name, t] of tensors) {
    if (t.dtype !== 'float32' && t.dtype !== 'int32') throw new DataError(`tensor "${name}": expected dtype float32 or int32; got ${t.dtype}`);
    const data = (await t.data()) as Float32Array | Int32Array;
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const file = bundleFileName(name);
    fs.writeFileSync(path.join(dir, file), buf);
    entries.push({ name, dtype: t.dtype, shape: t.shape.slice(), file, byteLength: buf.byteLength, sha256: createHash('sha256').update(buf).digest('hex') });
  }
  const manifest: BundleManifest = {
    format: 'xai-anchors-tensors', version: 1, kind, layout: 'NHWC', byteOrder: 'little',
    model: opts.model ?? null, tensors: entries, attrs: opts.attrs ?? {},
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
}
