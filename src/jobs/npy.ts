/**
 * NPY format version 1.0 (numpy's `numpy.lib.format`), written and read for float32 C-order arrays —
 * the attribution shards of `glasswing run`, loadable with `numpy.load(path)`.
 *
 * Why a writer of our own: npm has readers (npyjs, numpy-parser) but no maintained writer; the format
 * is 10 bytes of preamble, a Python-literal header dict and the raw little-endian data, so the whole
 * thing is ~60 lines with nothing to install.
 *
 * Layout: magic "\x93NUMPY", major 1, minor 0, header length (uint16 LE), the header
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (N, H, W, C), }` padded with spaces and ended by
 * "\n" so that the data starts at a multiple of 64 bytes (numpy's own alignment), then the data.
 */
import { DataError } from '../core/errors.js';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ALIGN = 64;

/** The header dict as numpy writes it ("(5,)" for one dimension). */
function headerText(shape: readonly number[]): string {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  return `{'descr': '<f4', 'fortran_order': False, 'shape': ${dims}, }`;
}

/** Encodes a float32 array of the given shape as NPY v1.0 bytes. */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (shape.some((d) => !Number.isInteger(d) || d < 0) || count !== data.length) {
    throw new DataError(`encodeNpy: expected ${count} values for shape [${shape.join(', ')}] of non-negative integers; got ${data.length}`);
  }
  let header = headerText(shape);
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += ' '.repeat((ALIGN - (unpadded % ALIGN)) % ALIGN) + '\n';
  if (header.length > 0xffff) throw new DataError(`encodeNpy: header of ${header.length} bytes does not fit NPY v1.0`);
  const pre = Buffer.alloc(10);
  MAGIC.copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // Float32Array is little-endian on every platform Node runs on (x86, ARM); checked once here.
  if (new Uint8Array(new Float32Array([1]).buffer)[3] !== 0x3f) throw new DataError('encodeNpy: big-endian hosts are not supported');
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), body]);
}

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

/** Decodes NPY v1.0/2.0 float32 ('<f4', C order) bytes; fails with one line on anything else. */
export function decodeNpy(bytes: Uint8Array, what = 'npy data'): NpyArray {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new DataError(`${what}: expected the NPY magic \\x93NUMPY; got ${buf.subarray(0, 6).toString('hex')}`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : major === 2 || major === 3 ? buf.readUInt32LE(8) : -1;
  if (headerLen < 0) throw new DataError(`${what}: expected NPY version 1, 2 or 3; got ${major}`);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr !== '<f4' || fortran !== 'False' || shapeText === undefined) {
    throw new DataError(`${what}: expected a C-order '<f4' array; got header ${header.trim()}`);
  }
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (buf.length - offset !== count * 4) throw new DataError(`${what}: shape (${shape.join(', ')}) needs ${count * 4} data bytes; got ${buf.length - offset}`);
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(buf.subarray(offset));
  return { shape, data };
}
