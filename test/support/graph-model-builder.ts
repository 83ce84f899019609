/**
 * Hand-written TF.js graph models for tests: TF NodeDefs with tfjs-converter's attribute encoding
 * (strings base64, integers as decimal strings) and a weights manifest, plus the stock
 * tfjs-converter executor on the same files for comparison.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import type { GraphModelJson, TfAttr, TfNodeDef } from '../../src/models/graph-model.js';

export const a = {
  s: (v: string): TfAttr => ({ s: Buffer.from(v).toString('base64') }),
  i: (v: number): TfAttr => ({ i: String(v) }),
  f: (v: number): TfAttr => ({ f: v }),
  b: (v: boolean): TfAttr => ({ b: v }),
  ints: (v: number[]): TfAttr => ({ list: { i: v.map(String) } }),
  strs: (v: string[]): TfAttr => ({ list: { s: v.map((x) => Buffer.from(x).toString('base64')) } }),
  T: { type: 'DT_FLOAT' } as TfAttr,
};

/** A seeded pseudo-random float array in [lo, hi). */
export function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s >>> 8) / 16777216) * (hi - lo);
  }
  return out;
}

export class GraphModelBuilder {
  readonly nodes: TfNodeDef[] = [];
  private readonly weights: Array<{ name: string; data: Float32Array | Int32Array; shape: number[]; dtype: 'float32' | 'int32' }> = [];
  private seed = 1;

  input(name: string, shape: number[]): string {
    this.nodes.push({ name, op: 'Placeholder', attr: { dtype: a.T, shape: { shape: { dim: shape.map((d) => ({ size: String(d) })) } } } });
    return name;
  }
  const(name: string, data: ArrayLike<number>, shape: number[], dtype: 'float32' | 'int32' = 'float32'): string {
    const d = dtype === 'float32' ? Float32Array.from(data) : Int32Array.from(data);
    this.weights.push({ name, data: d, shape, dtype });
    this.nodes.push({ name, op: 'Const', attr: { dtype: { type: dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32' }, value: { tensor: { dtype: dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32' } } } });
    return name;
  }
  /** A random float constant (scale ±s). */
  randConst(name: string, shape: number[], s = 0.5, lo?: number): string {
    const n = shape.reduce((x, y) => x * y, 1);
    return this.const(name, rand(n, this.seed++, lo ?? -s, s), shape);
  }
  op(name: string, op: string, input: string[], attr: Record<string, TfAttr> = {}): string {
    this.nodes.push({ name, op, input, attr: { T: a.T, ...attr } });
    return name;
  }
  build(): { modelJson: GraphModelJson; weights: Uint8Array } {
    const parts = this.weights.map((w) => new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength));
    const total = parts.reduce((x, p) => x + p.byteLength, 0);
    const bytes = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      bytes.set(p, o);
      o += p.byteLength;
    }
    return {
      modelJson: {
        format: 'graph-model', generatedBy: 'test', convertedBy: 'test',
        modelTopology: { node: this.nodes, library: {}, versions: {} },
        weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: this.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype })) }],
      },
      weights: bytes,
    };
  }
}

/** Stock tfjs-converter on the same model.json and weight bytes. */
export async function stockGraphModel(modelJson: GraphModelJson, weights: Uint8Array | ArrayBuffer): Promise<GraphModel> {
  const data = weights instanceof Uint8Array ? weights.slice().buffer : weights;
  return loadGraphModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology as unknown as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: data,
    format: 'graph-model',
  }));
}

/** Relative L2 distance ‖a − b‖ / ‖b‖. */
export function relL2(x: tf.Tensor, y: tf.Tensor): number {
  return tf.tidy(() => tf.div(tf.norm(tf.sub(x, y)), tf.maximum(tf.norm(y), 1e-30)).dataSync()[0]);
}
