/**
 * The manifest: one record per finished shard (OUT/shards/<method>/<shard>.done.json) holding the
 * names, sizes and SHA-256 checksums of the shard's .npy and index files. A shard is finished exactly
 * when its record exists and the files match it; the record is created exclusively, after the data
 * files are complete under their final names, so it is also the commit point of a shard.
 * OUT/manifest.json gathers every record when the run is complete.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { removeQuietly, sha256, TMP_MARK } from './files.js';
import type { JobSpec, ShardSpec } from './spec.js';

export interface FileEntry {
  /** Path relative to the output folder. */
  file: string;
  sha256: string;
  bytes: number;
}

export interface ShardRecord {
  shard: string;
  method: string;
  start: number;
  end: number;
  rows: number;
  /** float32 attributions [rows, H, W, C]. */
  npy: FileEntry & { shape: number[] };
  /** JSON lines, one per image. */
  index: FileEntry;
  /** host:pid of the process that wrote it. */
  worker: string;
  /** Loading the model for this shard (0 when the process had it already). */
  modelMs: number;
  loadMs: number;
  explainMs: number;
  /** Scoring the `--metrics` (0 without). */
  metricMs: number;
  writeMs: number;
  finishedAt: string;
}

export const SHARDS_DIR = 'shards';

export function shardDir(outDir: string, method: string): string {
  return join(outDir, SHARDS_DIR, method);
}

export function recordPath(outDir: string, shard: Pick<ShardSpec, 'id' | 'method'>): string {
  return join(shardDir(outDir, shard.method), `${shard.id}.done.json`);
}

export function readRecord(outDir: string, shard: Pick<ShardSpec, 'id' | 'method'>): ShardRecord | undefined {
  const path = recordPath(outDir, shard);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ShardRecord;
  } catch {
    return { shard: shard.id, method: shard.method, start: 0, end: 0, rows: 0, npy: { file: '', sha256: 'unreadable', bytes: 0, shape: [] }, index: { file: '', sha256: 'unreadable', bytes: 0 }, worker: '', modelMs: 0, loadMs: 0, explainMs: 0, metricMs: 0, writeMs: 0, finishedAt: '' };
  }
}

/** Why the files of a record do not match it, or undefined when they do. */
export function verifyRecord(outDir: string, rec: ShardRecord): string | undefined {
  for (const f of [rec.npy, rec.index]) {
    if (!f.file) return 'unreadable record';
    const path = join(outDir, f.file);
    if (!existsSync(path)) return `${f.file} is missing`;
    const bytes = readFileSync(path);
    if (bytes.length !== f.bytes) return `${f.file} has ${bytes.length} bytes, the record says ${f.bytes}`;
    if (sha256(bytes) !== f.sha256) return `${f.file} does not match its checksum`;
  }
  return undefined;
}

export interface RunState {
  done: ShardRecord[];
  /** Shards without a valid record, in spec order. */
  missing: ShardSpec[];
  /** Shards whose record did not match their files (their record is removed when `repair` is set). */
  broken: Array<{ shard: string; reason: string }>;
}

/**
 * Which shards are finished. `verify` re-reads every file against its checksum (what a restarted run
 * does); without it only the records are read (what progress polling does).
 */
export function scanRun(outDir: string, spec: JobSpec, opts: { verify?: boolean; repair?: boolean } = {}): RunState {
  const state: RunState = { done: [], missing: [], broken: [] };
  for (const shard of spec.shards) {
    const rec = readRecord(outDir, shard);
    if (!rec) {
      state.missing.push(shard);
      continue;
    }
    const why = opts.verify ? verifyRecord(outDir, rec) : undefined;
    if (why) {
      state.broken.push({ shard: shard.id, reason: why });
      state.missing.push(shard);
      if (opts.repair) {
        removeQuietly(recordPath(outDir, shard));
        if (rec.npy.file) removeQuietly(join(outDir, rec.npy.file));
        if (rec.index.file) removeQuietly(join(outDir, rec.index.file));
      }
    } else {
      state.done.push(rec);
    }
  }
  return state;
}

/** Number of shard records present (cheap: one directory listing per method). */
export function countRecords(outDir: string, spec: JobSpec): number {
  let n = 0;
  for (const method of spec.methods) {
    const dir = shardDir(outDir, method);
    if (!existsSync(dir)) continue;
    n += readdirSync(dir).filter((f) => f.endsWith('.done.json') && !f.includes(TMP_MARK)).length;
  }
  return n;
}

/**
 * Removes files in the shard folders that no record names: temporary files of writers that died and
 * the data files of a shard that lost the race to commit. Only safe when no writer is running on the
 * folder (the local runner at its start, or any process once every shard is finished).
 */
export function removeOrphans(outDir: string, spec: JobSpec, keep: ShardRecord[], opts: { minAgeMs?: number } = {}): string[] {
  const referenced = new Set<string>();
  for (const r of keep) {
    referenced.add(r.npy.file);
    referenced.add(r.index.file);
  }
  const removed: string[] = [];
  const now = Date.now();
  for (const method of spec.methods) {
    const dir = shardDir(outDir, method);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      const rel = `${SHARDS_DIR}/${method}/${f}`;
      if (f.endsWith('.done.json') || referenced.has(rel)) continue;
      const path = join(dir, f);
      if (opts.minAgeMs && now - statSync(path).mtimeMs < opts.minAgeMs) continue;
      removeQuietly(path);
      removed.push(rel);
    }
  }
  return removed;
}
