/**
 * Write a model as a TF.js graph model (tfjs-converter's "graph-model" model.json + weight shards),
 * with the op names and attributes tfjs-converter emits for a converted Keras/TF model:
 * _FusedConv2D / FusedDepthwiseConv2dNative / _FusedMatMul with fused BiasAdd and activation,
 * FusedBatchNormV3 (or BatchNorm folded into the convolution, as the converter's graph optimiser
 * does), Pad, AddV2, Mul, ConcatV2, Mean, AvgPool/MaxPool, Reshape, Relu/Relu6/…, Softmax.
 *
 * Why Glasswing has it: to test the graph-model executor against stock tfjs-converter on models of
 * any size without a TensorFlow install, and to give users and the explorer a graph model of their
 * own LayersModel (optionally uint8/uint16/float16-quantised). Input: the node graph of a
 * LayersModel (buildGraph), so it covers exactly the layers Glasswing executes.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildGraph, type Graph, type GraphNode } from '../core/graph.js';
import { UnsupportedLayerError } from '../core/errors.js';
import type { GraphModelJson, TfAttr, TfNodeDef } from './graph-model.js';

export interface GraphModelExportOptions {
  /** Fold each BatchNorm into the convolution before it (what tfjs-converter does); default false (FusedBatchNormV3 ops). */
  foldBatchNorm?: boolean;
  /** Quantise float weights: uint8 / uint16 affine (min, scale) or float16; default none (float32). */
  quantize?: 'uint8' | 'uint16' | 'float16';
  /** Shard size in bytes (tfjs-converter's default is 4 MB); default 4 MiB. */
  shardBytes?: number;
  /** Leave the Placeholder's height and width open (-1), as converted TF-Hub models often do. */
  dynamicSize?: boolean;
}

export interface GraphModelArtifacts {
  modelJson: GraphModelJson;
  /** Shard file name → bytes, in manifest order. */
  shards: Map<string, Uint8Array>;
}

const b64 = (s: string): string => (typeof btoa === 'function' ? btoa(s) : Buffer.from(s, 'latin1').toString('base64'));
const ints = (v: number[]): TfAttr => ({ list: { i: v.map(String) } });
const str = (s: string): TfAttr => ({ s: b64(s) });
const strs = (v: string[]): TfAttr => ({ list: { s: v.map(b64) } });
const TYPE_FLOAT: TfAttr = { type: 'DT_FLOAT' };

const ACT_OPS: Record<string, string> = { relu: 'Relu', relu6: 'Relu6', elu: 'Elu', sigmoid: 'Sigmoid', tanh: 'Tanh', leakyrelu: 'LeakyRelu', softmax: 'Softmax', selu: 'Selu', softplus: 'Softplus' };
/** Activations tfjs-converter fuses into a convolution or matmul. */
const FUSABLE = new Set(['relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu']);

/** float32 → IEEE half bits (round to nearest even). */
function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  let e = ((x >>> 23) & 0xff) - 127 + 15;
  let m = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    let h = m >> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (m >> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  e = h;
  return sign | e;
}

/** Translate a LayersModel (or its node graph) into graph-model artifacts. */
export function exportGraphModel(source: tfl.LayersModel | Graph, opts: GraphModelExportOptions = {}): GraphModelArtifacts {
  const graph: Graph = 'nodes' in source ? source : buildGraph(source);
  const tfNodes: TfNodeDef[] = [];
  const weights: Array<{ name: string; values: Float32Array | Int32Array; shape: number[]; dtype: 'float32' | 'int32' }> = [];
  const consumers = new Map<string, GraphNode[]>(graph.nodes.map((n) => [n.name, []]));
  for (const n of graph.nodes) for (const i of n.inputs) consumers.get(i)!.push(n);
  const outName = new Map<string, string>(); // glasswing node → TF node producing its value
  const skip = new Set<string>();

  const constNode = (name: string, t: tf.Tensor | { values: Int32Array; shape: number[] }) => {
    const isTensor = t instanceof tf.Tensor;
    const dtype = isTensor ? 'float32' : 'int32';
    const shape = isTensor ? t.shape : t.shape;
    const values = isTensor ? (t.dataSync() as Float32Array).slice() : t.values;
    weights.push({ name, values, shape, dtype });
    tfNodes.push({
      name, op: 'Const',
      attr: {
        value: { tensor: { dtype: dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32', tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } },
        dtype: { type: dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32' },
      },
    });
    return name;
  };
  const intConst = (name: string, v: number[], shape = [v.length]) => constNode(name, { values: Int32Array.from(v), shape });
  const op = (name: string, opName: string, input: string[], attr: Record<string, TfAttr> = {}) => {
    tfNodes.push({ name, op: opName, input, attr: { T: TYPE_FLOAT, ...attr } });
    return name;
  };
  const actAttrs = (a: GraphNode): Record<string, TfAttr> => (a.params.activation === 'leakyrelu' ? { alpha: { f: a.params.alpha ?? 0.3 } } : {});
  const activationOp = (n: GraphNode, input: string) => {
    const a = n.params.activation ?? 'linear';
    if (a === 'linear') return op(n.name, 'Identity', [input]);
    if (a === 'relu' && (n.params.maxValue !== undefined || n.params.threshold || n.params.negativeSlope)) {
      if (n.params.maxValue === 6 && !n.params.threshold && !n.params.negativeSlope) return op(n.name, 'Relu6', [input]);
      throw new UnsupportedLayerError(`cannot export node "${n.name}": ReLU with max_value/threshold/negative_slope has no single TF op`);
    }
    if (a === 'prelu') return op(n.name, 'Prelu', [input, constNode(`${n.name}/alpha`, n.params.slope!())]);
    const o = ACT_OPS[a];
    if (!o) throw new UnsupportedLayerError(`cannot export node "${n.name}": activation ${a} has no TF op here`);
    return op(n.name, o, [input], actAttrs(n));
  };

  // every tensor made here (BatchNorm folds) is freed when the translation ends
  tf.tidy(() => { for (const n of graph.nodes) {
    if (skip.has(n.name)) continue;
    const ins = n.inputs.map((i) => outName.get(i)!);
    const p = n.params;
    let produced: string;
    switch (n.kind) {
      case 'input': {
        const [h, w, c] = n.shape;
        tfNodes.push({ name: n.layerName, op: 'Placeholder', attr: { dtype: TYPE_FLOAT, shape: { shape: { dim: [-1, opts.dynamicSize ? -1 : h, opts.dynamicSize ? -1 : w, c].map((d) => ({ size: String(d) })) } } } });
        produced = n.layerName;
        break;
      }
      case 'conv2d': case 'depthwise-conv2d': case 'dense': {
        let kernel = p.kernel!();
        let bias = p.bias?.();
        let last = n;
        // fold a following BatchNorm (the converter's optimiser does)
        const next = consumers.get(n.name)!;
        if (opts.foldBatchNorm && next.length === 1 && next[0].kind === 'batchnorm' && n.kind !== 'dense') {
          const bn = next[0].params.batchNorm!();
          const s = tf.div(bn.gamma ?? tf.onesLike(bn.mean), tf.sqrt(tf.add(bn.variance, bn.epsilon)));
          const perOut = n.kind === 'depthwise-conv2d' ? tf.reshape(s, [1, 1, kernel.shape[2]!, kernel.shape[3]!]) : s;
          kernel = tf.mul(kernel, perOut);
          bias = tf.add(tf.mul(tf.sub(bias ?? tf.zerosLike(bn.mean), bn.mean), s), bn.beta ?? tf.zerosLike(bn.mean));
          skip.add(next[0].name);
          last = next[0];
        }
        const after = consumers.get(last.name)!;
        const act = after.length === 1 && after[0].kind === 'activation' && FUSABLE.has(after[0].params.activation ?? '') && bias
          && !(after[0].params.activation === 'relu' && after[0].params.maxValue !== undefined && after[0].params.maxValue !== 6) ? after[0] : undefined;
        const name = act ? act.name : last.name;
        const k = constNode(`${n.name}/kernel`, kernel);
        const args = bias ? [constNode(`${n.name}/bias`, bias)] : [];
        const fused = bias ? ['BiasAdd'] : [];
        if (act) {
          const a = act.params.activation === 'relu' && act.params.maxValue === 6 ? 'relu6' : act.params.activation!;
          fused.push(ACT_OPS[a]);
        }
        const common: Record<string, TfAttr> = n.kind === 'dense' ? { transpose_a: { b: false }, transpose_b: { b: false } } : {
          strides: ints([1, p.strides![0], p.strides![1], 1]), padding: str(p.padding!.toUpperCase()), data_format: str('NHWC'),
          dilations: ints([1, p.dilation![0], p.dilation![1], 1]), explicit_paddings: { list: {} },
        };
        const fusedName = n.kind === 'conv2d' ? '_FusedConv2D' : n.kind === 'depthwise-conv2d' ? 'FusedDepthwiseConv2dNative' : '_FusedMatMul';
        const plainName = n.kind === 'conv2d' ? 'Conv2D' : n.kind === 'depthwise-conv2d' ? 'DepthwiseConv2dNative' : 'MatMul';
        if (fused.length) {
          const extra: Record<string, TfAttr> = act?.params.activation === 'leakyrelu' ? { leakyrelu_alpha: { f: act.params.alpha ?? 0.3 } } : {};
          produced = op(name, fusedName, [ins[0], k, ...args], { ...common, fused_ops: strs(fused), num_args: { i: String(args.length) }, epsilon: { f: 0 }, ...extra });
        } else {
          produced = op(name, plainName, [ins[0], k], common);
        }
        if (act) {
          skip.add(act.name);
          outName.set(act.name, produced);
        }
        if (last !== n) outName.set(last.name, produced);
        break;
      }
      case 'batchnorm': {
        const bn = p.batchNorm!();
        const c = bn.mean.shape[0]!;
        produced = op(n.name, 'FusedBatchNormV3', [
          ins[0], constNode(`${n.name}/gamma`, bn.gamma ?? tf.ones([c])), constNode(`${n.name}/beta`, bn.beta ?? tf.zeros([c])),
          constNode(`${n.name}/moving_mean`, bn.mean), constNode(`${n.name}/moving_variance`, bn.variance),
        ], { epsilon: { f: bn.epsilon }, data_format: str('NHWC'), is_training: { b: false }, U: TYPE_FLOAT });
        break;
      }
      case 'activation':
        produced = activationOp(n, ins[0]);
        break;
      case 'maxpool': case 'avgpool':
        produced = op(n.name, n.kind === 'maxpool' ? 'MaxPool' : 'AvgPool', ins, {
          ksize: ints([1, p.poolSize![0], p.poolSize![1], 1]), strides: ints([1, p.strides![0], p.strides![1], 1]), padding: str(p.padding!.toUpperCase()), data_format: str('NHWC'),
        });
        break;
      case 'global-avgpool': case 'global-maxpool':
        produced = op(n.name, n.kind === 'global-avgpool' ? 'Mean' : 'Max', [ins[0], intConst(`${n.name}/axes`, [1, 2])], { keep_dims: { b: false }, Tidx: { type: 'DT_INT32' } });
        break;
      case 'flatten':
        produced = op(n.name, 'Reshape', [ins[0], intConst(`${n.name}/shape`, [-1, n.shape[0]])]);
        break;
      case 'reshape':
        produced = op(n.name, 'Reshape', [ins[0], intConst(`${n.name}/shape`, [-1, ...n.shape])]);
        break;
      case 'zeropad':
        produced = op(n.name, 'Pad', [ins[0], intConst(`${n.name}/paddings`, [0, 0, p.pad![0][0], p.pad![0][1], p.pad![1][0], p.pad![1][1], 0, 0], [4, 2])]);
        break;
      case 'add':
        produced = ins.length === 2 ? op(n.name, 'AddV2', ins) : op(n.name, 'AddN', ins, { N: { i: String(ins.length) } });
        break;
      case 'multiply':
        if (ins.length !== 2) throw new UnsupportedLayerError(`cannot export node "${n.name}": Multiply of ${ins.length} inputs`);
        produced = op(n.name, 'Mul', ins);
        break;
      case 'concat': {
        const rank = n.shape.length + 1;
        const axis = p.axis! < 0 ? p.axis! + rank : p.axis!;
        produced = op(n.name, 'ConcatV2', [...ins, intConst(`${n.name}/axis`, [axis], [])], { N: { i: String(ins.length) }, Tidx: { type: 'DT_INT32' } });
        break;
      }
      case 'identity':
        produced = op(n.name, 'Identity', ins);
        break;
      default:
        throw new UnsupportedLayerError(`cannot export node "${n.name}" of kind ${n.kind} as a graph-model op`);
    }
    outName.set(n.name, produced);
  } });
  // the output under the name converted Keras models use
  const out = outName.get(graph.output)!;
  op('Identity', 'Identity', [out]);

  // ---- weights: quantise, then shard
  const shardBytes = opts.shardBytes ?? 4 * 1024 * 1024;
  const entries: tf.io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  for (const w of weights) {
    const entry: tf.io.WeightsManifestEntry = { name: w.name, shape: w.shape, dtype: w.dtype };
    let bytes: Uint8Array;
    if (w.dtype === 'float32' && opts.quantize) {
      const v = w.values as Float32Array;
      if (opts.quantize === 'float16') {
        const h = new Uint16Array(v.length);
        for (let i = 0; i < v.length; i++) h[i] = toHalf(v[i]);
        bytes = new Uint8Array(h.buffer);
        entry.quantization = { dtype: 'float16' };
      } else {
        let min = Infinity;
        let max = -Infinity;
        for (const x of v) {
          if (x < min) min = x;
          if (x > max) max = x;
        }
        const levels = opts.quantize === 'uint8' ? 255 : 65535;
        const scale = max > min ? (max - min) / levels : 1;
        const q = opts.quantize === 'uint8' ? new Uint8Array(v.length) : new Uint16Array(v.length);
        for (let i = 0; i < v.length; i++) q[i] = Math.round((v[i] - min) / scale);
        bytes = new Uint8Array(q.buffer);
        entry.quantization = { dtype: opts.quantize, min, scale, original_dtype: 'float32' } as tf.io.WeightsManifestEntry['quantization'];
      }
    } else {
      bytes = new Uint8Array(w.values.buffer, w.values.byteOffset, w.values.byteLength);
    }
    entries.push(entry);
    chunks.push(bytes);
  }
  const total = chunks.reduce((a, c) => a + c.byteLength, 0);
  const all = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.byteLength;
  }
  const count = Math.max(1, Math.ceil(total / shardBytes));
  const shards = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) shards.set(`group1-shard${i + 1}of${count}.bin`, all.slice(i * shardBytes, Math.min(total, (i + 1) * shardBytes)));
  const modelJson: GraphModelJson = {
    format: 'graph-model',
    generatedBy: 'glasswing',
    convertedBy: 'glasswing exportGraphModel',
    modelTopology: { node: tfNodes, library: {}, versions: { producer: 1 } },
    weightsManifest: [{ paths: [...shards.keys()], weights: entries }],
  };
  return { modelJson, shards };
}

/** Write graph-model artifacts to DIR (model.json + shards), creating DIR. */
export async function saveGraphModel(artifacts: GraphModelArtifacts, dir: string): Promise<void> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of artifacts.shards) fs.writeFileSync(path.join(dir, name), bytes);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(artifacts.modelJson));
}
