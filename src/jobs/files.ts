/**
 * File primitives of the job output: every file appears under its final name complete or not at all
 * (written to a unique temporary name, flushed, then renamed), and a shard is committed by creating
 * its manifest record exclusively (a hard link fails when the name exists), so two workers that
 * computed the same shard — a stalled job taken over while its first worker still runs — cannot both
 * commit it.
 */
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

/** Suffix of temporary files: ".tmp-<host>-<pid>-<random>" (finalize removes leftovers of dead writers). */
export const TMP_MARK = '.tmp-';

export function tmpName(path: string): string {
  return `${path}${TMP_MARK}${hostname().replace(/[^\w-]/g, '_')}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Writes bytes to a new file and flushes them to disk before returning. */
export function writeFlushed(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'wx');
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Temporary name, flush, rename: readers see the old file or the whole new one. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = tmpName(path);
  writeFlushed(tmp, data);
  renameSync(tmp, path);
}

/**
 * Creates `path` with `data` only if it does not exist yet (atomic, also on NFS): true when this call
 * created it, false when it was already there.
 */
export function createExclusive(path: string, data: string): boolean {
  const tmp = tmpName(path);
  writeFlushed(tmp, data);
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    unlinkSync(tmp);
  }
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
