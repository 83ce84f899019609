/**
 * Binary caches of the npm data packages (parsing their JSON is the slow part of loading).
 * File layout: 24-byte header (magic u32, version u32, count u32, height u32, width u32, source
 * bytes u32 — little-endian), then `count` uint8 labels, then the pixels (uint8 or float32).
 * Written through a temporary file and a rename; invalid or stale files are ignored and rebuilt.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const CACHE_HEADER_BYTES = 24;

/** Candidate cache folders, best first: $GLASSWING_CACHE_DIR, node_modules/.cache/glasswing, OS temp. */
export function cacheDirs(packageRoot: string): string[] {
  const dirs: string[] = [];
  if (process.env.GLASSWING_CACHE_DIR) dirs.push(process.env.GLASSWING_CACHE_DIR);
  dirs.push(path.join(path.dirname(packageRoot), '.cache', 'glasswing'));
  dirs.push(path.join(os.tmpdir(), 'glasswing-cache'));
  return dirs;
}

export interface CacheSpec {
  file: string;
  magic: number;
  version: number;
  /** Total size of the source files: a changed package invalidates the cache. */
  sourceBytes: number;
  /** Bytes per pixel: 1 (uint8) or 4 (float32). */
  pixelBytes: 1 | 4;
}

export interface CacheContent {
  labels: Int32Array;
  pixels: Uint8Array | Float32Array;
}

/** Reads a cache file; undefined when missing, stale or malformed. */
export function readCacheFile(spec: CacheSpec): CacheContent | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(spec.file);
  } catch {
    return undefined;
  }
  if (buf.length < CACHE_HEADER_BYTES) return undefined;
  const count = buf.readUInt32LE(8);
  if (
    buf.readUInt32LE(0) !== spec.magic ||
    buf.readUInt32LE(4) !== spec.version ||
    buf.readUInt32LE(12) !== 28 ||
    buf.readUInt32LE(16) !== 28 ||
    buf.readUInt32LE(20) !== spec.sourceBytes >>> 0 ||
    buf.length !== CACHE_HEADER_BYTES + count + count * 784 * spec.pixelBytes
  ) {
    return undefined;
  }
  const labels = Int32Array.from(buf.subarray(CACHE_HEADER_BYTES, CACHE_HEADER_BYTES + count));
  const start = CACHE_HEADER_BYTES + count;
  const bytes = buf.subarray(start, start + count * 784 * spec.pixelBytes);
  // copy into an aligned buffer of the right type
  const pixels =
    spec.pixelBytes === 1
      ? new Uint8Array(bytes)
      : new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { labels, pixels };
}

/** Writes a cache file atomically; false when the folder is not writable. */
export function writeCacheFile(spec: CacheSpec, content: CacheContent): boolean {
  const head = Buffer.alloc(CACHE_HEADER_BYTES);
  const count = content.labels.length;
  head.writeUInt32LE(spec.magic, 0);
  head.writeUInt32LE(spec.version, 4);
  head.writeUInt32LE(count, 8);
  head.writeUInt32LE(28, 12);
  head.writeUInt32LE(28, 16);
  head.writeUInt32LE(spec.sourceBytes >>> 0, 20);
  const tmp = `${spec.file}.${process.pid}.${Date.now()}.tmp`;
  try {
    fs.mkdirSync(path.dirname(spec.file), { recursive: true });
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, head);
      fs.writeSync(fd, Uint8Array.from(content.labels));
      const p = content.pixels;
      fs.writeSync(fd, new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, spec.file);
    return true;
  } catch {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* nothing to clean */
    }
    return false;
  }
}

/** Total byte size of files (throws with the missing file's name). */
export function totalBytes(files: string[], onMissing: (file: string) => Error): number {
  let total = 0;
  for (const f of files) {
    try {
      total += fs.statSync(f).size;
    } catch {
      throw onMissing(f);
    }
  }
  return total;
}

/**
 * Returns the cached content if a valid cache exists in one of `dirs`, else builds it with
 * `build`, writes it to the first writable folder, and returns it with where it went ('' if none).
 */
export function cached(
  dirs: string[],
  name: string,
  spec: Omit<CacheSpec, 'file'>,
  build: () => CacheContent,
): CacheContent & { cachePath: string } {
  for (const d of dirs) {
    const file = path.join(d, name);
    const hit = readCacheFile({ ...spec, file });
    if (hit) return { ...hit, cachePath: file };
  }
  const content = build();
  for (const d of dirs) {
    const file = path.join(d, name);
    if (writeCacheFile({ ...spec, file }, content)) return { ...content, cachePath: file };
  }
  return { ...content, cachePath: '' };
}
