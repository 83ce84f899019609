/**
 * A dataset-scale job (`glasswing run`): which model, which images, which methods, cut into shards.
 *
 * The spec is written once to OUT/job.json; its `key` (a hash of everything that decides the
 * results) identifies the run, so a restarted run — local or through the queue — can check that the
 * output folder holds the same job before it reuses any shard. A shard is one method on one range of
 * images (`shardSize` images): the unit of work of the local runner and of one BullMQ job.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OptionError } from '../core/errors.js';
import type { SplitName } from '../data/split.js';
import { writeFileAtomic } from './files.js';

export type DatasetKind = 'mnist' | 'fashion' | 'folder';

export interface DatasetSpec {
  kind: DatasetKind;
  /** mnist/fashion: the split (default test). */
  split?: SplitName;
  /** folder: absolute path of the image folder (must be the same path on every worker). */
  dir?: string;
  /** folder: image paths relative to `dir`, in run order. */
  files?: string[];
  /** folder: run position of files[0] (a queue job carries only its shard's files). Default 0. */
  offset?: number;
  /** Label per image (folder: from its sub-folder). mnist/fashion: taken from the split at run time. */
  labels?: number[];
  classNames: string[];
  /** Images in the run (after --limit). */
  size: number;
}

export interface ShardSpec {
  /** "<method>-<k, 5 digits>", unique within the run. */
  id: string;
  method: string;
  /** Image positions [start, end) in run order. */
  start: number;
  end: number;
}

export interface JobSpec {
  version: 1;
  /** A shipped model name or a model folder (absolute path), as every worker must load it. */
  model: string;
  dataset: DatasetSpec;
  methods: string[];
  /** Method options per method (only keys the method has). */
  options: Record<string, Record<string, unknown>>;
  /** Target spec as typed: predicted, second or a class index. */
  target: string;
  /** Evaluation metrics scored on every image's attribution (`--metrics`), with their options. */
  metrics?: string[];
  metricOptions?: Record<string, Record<string, unknown>>;
  shardSize: number;
  /** Images per explain() call inside a shard. */
  batch: number;
  shards: ShardSpec[];
  /** Hash of everything above: the run's identity. */
  key: string;
}

export const SPEC_FILE = 'job.json';

/** Cuts `size` images × methods into shards, method by method. */
export function planShards(methods: string[], size: number, shardSize: number): ShardSpec[] {
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new OptionError(`expected --shard-size to be a positive integer; got ${shardSize}`);
  const shards: ShardSpec[] = [];
  for (const method of methods) {
    for (let start = 0, k = 0; start < size; start += shardSize, k++) {
      shards.push({ id: `${method}-${String(k).padStart(5, '0')}`, method, start, end: Math.min(size, start + shardSize) });
    }
  }
  return shards;
}

/** Deterministic JSON (sorted keys) so the key does not depend on property order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Fills in the shards and the key. */
export function makeSpec(s: Omit<JobSpec, 'shards' | 'key' | 'version'>): JobSpec {
  const base = { version: 1 as const, ...s, shards: planShards(s.methods, s.dataset.size, s.shardSize) };
  const key = createHash('sha256').update(canonicalJson(base)).digest('hex').slice(0, 16);
  return { ...base, key };
}

export function readSpec(outDir: string): JobSpec | undefined {
  const path = join(outDir, SPEC_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const spec = JSON.parse(readFileSync(path, 'utf8')) as JobSpec;
    if (spec.version !== 1 || !Array.isArray(spec.shards) || typeof spec.key !== 'string') throw new Error('not a version-1 job spec');
    return spec;
  } catch (e) {
    throw new OptionError(`expected ${path} to be a glasswing job spec; got unreadable JSON (${(e as Error).message})`);
  }
}

/**
 * Writes OUT/job.json, or checks that the one there is the same job: a different job in the same
 * folder would mix shards of two runs.
 */
export function claimOutDir(outDir: string, spec: JobSpec): 'new' | 'same' {
  const old = readSpec(outDir);
  if (old) {
    if (old.key !== spec.key) {
      throw new OptionError(`expected ${outDir} to be empty or to hold this same job (key ${spec.key}); it holds job ${old.key} (${old.methods.join(',')} on ${old.dataset.kind}, ${old.dataset.size} images) — use another --out, or --resume to continue that job`);
    }
    return 'same';
  }
  writeFileAtomic(join(outDir, SPEC_FILE), JSON.stringify(spec, null, 1) + '\n');
  return 'new';
}
