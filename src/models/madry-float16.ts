/**
 * Float16 weight files. The Madry network's fc1 has 3,136 × 1,024 weights (13 MB per model as
 * float32); the TF.js weights manifest can mark each float32 weight as stored in half precision
 * (`quantization: {dtype: 'float16'}`), which tfjs-core's decodeWeights widens back to float32 on
 * load — in Node (loadModel) and in the browser alike. This module writes that form: it rewrites a
 * folder saved by saveModel in place (weights.bin halved, manifest entries marked).
 *
 * Conversion is IEEE 754 binary16 with round-to-nearest-even, subnormals kept, overflow to ±∞
 * (MNIST weights are |w| < 10, far from the 65,504 limit).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { ModelLoadError } from '../core/errors.js';
import { MODEL_JSON, WEIGHTS_BIN } from './io.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bit pattern nearest to `v` (ties to even). */
export function float16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // ∞ / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal half: value = m·2⁻²⁴ with m = (1.mant)·2^(e+9), i.e. the 24-bit significand >> (14 − e).
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa moves into the exponent, which is the correct rounding.
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

/** Float32 values → packed binary16 bit patterns. */
export function toFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float16Bits(values[i]);
  return out;
}

/**
 * Rewrite the model in `dir` (model.json + weights.bin, float32, as saveModel writes it) with float16
 * weights. Returns the new weight byte count. Non-float32 or already quantized weights are refused.
 */
export function convertFolderToFloat16(dir: string): { weightBytes: number } {
  const jsonFile = path.join(dir, MODEL_JSON);
  const json = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as { weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }> };
  if (json.weightsManifest.length !== 1 || json.weightsManifest[0].paths.length !== 1) {
    throw new ModelLoadError(`expected one weight group in one file in ${jsonFile} (as saveModel writes); got ${json.weightsManifest.length} groups`);
  }
  const group = json.weightsManifest[0];
  const bin = fs.readFileSync(path.join(dir, group.paths[0]));
  const src = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
  const total = group.weights.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
  for (const w of group.weights) {
    if (w.dtype !== 'float32' || w.quantization) {
      throw new ModelLoadError(`expected unquantized float32 weights to convert in ${jsonFile}; got "${w.name}" as ${w.quantization ? `${w.quantization.dtype}-quantized` : w.dtype}`);
    }
  }
  if (total !== src.length) throw new ModelLoadError(`expected ${total} float32 values in ${group.paths[0]} (as listed in ${jsonFile}); got ${src.length}`);
  const half = toFloat16(src);
  group.weights = group.weights.map((w) => ({ ...w, quantization: { dtype: 'float16' as const } }));
  group.paths = [WEIGHTS_BIN];
  // Write beside, then rename: a crash leaves either the old pair or the new weights with a manifest
  // that still says float32 (caught by loadModel's byte-count check), never a silent mix.
  const tmpBin = path.join(dir, `.${WEIGHTS_BIN}.tmp`);
  const tmpJson = path.join(dir, `.${MODEL_JSON}.tmp`);
  fs.writeFileSync(tmpBin, Buffer.from(half.buffer, half.byteOffset, half.byteLength));
  fs.writeFileSync(tmpJson, JSON.stringify(json));
  fs.renameSync(tmpBin, path.join(dir, WEIGHTS_BIN));
  fs.renameSync(tmpJson, jsonFile);
  return { weightBytes: half.byteLength };
}
