/**
 * Theoretical receptive fields over the node graph (seed 004: a unit "sees" only the input patch
 * under its receptive field). Per axis, each spatial node has a size r (input pixels one unit sees),
 * a jump j (input pixels between neighbouring units) and a start s (input coordinate of the first
 * row/column seen by unit 0, negative inside the padding). A layer with kernel k, dilation d,
 * stride t and leading padding p maps (r, j, s) to
 *   r' = r + (d(k − 1))·j,   j' = j·t,   s' = s − p·j
 * ('same' padding is TensorFlow's: total max((⌈n/t⌉ − 1)·t + d(k − 1) + 1 − n, 0), floor half first).
 * Merges (add, multiply, concat) take the union of their inputs' fields; element-wise nodes pass
 * them through; dense, flatten and global pools see the whole input.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import type { GraphNode } from '../core/graph.js';
import { OptionError, UnsupportedLayerError } from '../core/errors.js';

export interface AxisField {
  /** Input pixels one unit sees along the axis. */
  size: number;
  /** Input pixels between neighbouring units. */
  jump: number;
  /** Input coordinate of the first pixel unit 0 sees (negative: inside the padding). */
  start: number;
}

export interface ReceptiveField {
  rows: AxisField;
  cols: AxisField;
  /** True for nodes that see the whole input (after dense, flatten or a global pool). */
  global: boolean;
}

const PASS_THROUGH = new Set(['activation', 'batchnorm', 'identity', 'transform']);

function kernelSize(node: GraphNode): [number, number] {
  if (node.params.poolSize) return node.params.poolSize;
  if (!node.params.kernel) throw new UnsupportedLayerError(`expected a kernel on node "${node.name}" (${node.kind}); got none`);
  // Reading a kernel may make a tensor (a variable's value): only its shape is kept.
  const shape = tf.tidy(() => node.params.kernel!().shape);
  return [shape[0], shape[1]] as [number, number];
}

function axis(f: AxisField, k: number, stride: number, dilation: number, padding: string | undefined, inSize: number): AxisField {
  const eff = dilation * (k - 1) + 1;
  let pad = 0;
  if (padding === 'same') {
    const out = Math.ceil(inSize / stride);
    pad = Math.floor(Math.max((out - 1) * stride + eff - inSize, 0) / 2);
  }
  return { size: f.size + (eff - 1) * f.jump, jump: f.jump * stride, start: f.start - pad * f.jump };
}

/**
 * Receptive fields of every node of the classifier's graph (by node name).
 *
 * @example
 * const rf = receptiveFields(classifier).get('conv2'); console.log(rf.rows.size, rf.rows.jump);
 */
export function receptiveFields(classifier: Classifier): Map<string, ReceptiveField> {
  const g = classifier.graph;
  if (!g) throw new UnsupportedLayerError(`cannot compute receptive fields: classifier "${classifier.name}" wraps a plain function, not a layered model`);
  const [h, w] = classifier.inputShape;
  const out = new Map<string, ReceptiveField>();
  const whole: ReceptiveField = { rows: { size: h, jump: h, start: 0 }, cols: { size: w, jump: w, start: 0 }, global: true };
  for (const node of g.nodes) {
    if (node.kind === 'input') {
      out.set(node.name, { rows: { size: 1, jump: 1, start: 0 }, cols: { size: 1, jump: 1, start: 0 }, global: false });
      continue;
    }
    const ins = node.inputs.map((i) => out.get(i)!);
    const f = ins[0];
    if (ins.some((i) => i.global) || node.shape.length !== 3 || ['dense', 'flatten', 'global-avgpool', 'global-maxpool', 'reshape', 'permute'].includes(node.kind)) {
      out.set(node.name, whole);
      continue;
    }
    const inShape = g.byName.get(node.inputs[0])!.shape;
    switch (node.kind) {
      case 'conv2d': case 'depthwise-conv2d': case 'maxpool': case 'avgpool': {
        const [kh, kw] = kernelSize(node);
        const [sh, sw] = node.params.strides ?? (node.params.poolSize && (node.kind === 'maxpool' || node.kind === 'avgpool') ? node.params.poolSize : [1, 1]);
        const [dh, dw] = node.params.dilation ?? [1, 1];
        out.set(node.name, {
          rows: axis(f.rows, kh, sh, dh, node.params.padding, inShape[0]),
          cols: axis(f.cols, kw, sw, dw, node.params.padding, inShape[1]),
          global: false,
        });
        break;
      }
      case 'zeropad': case 'crop': {
        const [[top], [left]] = node.params.pad ?? [[0, 0], [0, 0]];
        const sign = node.kind === 'zeropad' ? -1 : 1;
        out.set(node.name, {
          rows: { ...f.rows, start: f.rows.start + sign * top * f.rows.jump },
          cols: { ...f.cols, start: f.cols.start + sign * left * f.cols.jump },
          global: false,
        });
        break;
      }
      case 'add': case 'multiply': case 'concat': {
        const union = (a: AxisField[]): AxisField => {
          const start = Math.min(...a.map((x) => x.start));
          const end = Math.max(...a.map((x) => x.start + x.size));
          return { size: end - start, jump: Math.max(...a.map((x) => x.jump)), start };
        };
        out.set(node.name, { rows: union(ins.map((i) => i.rows)), cols: union(ins.map((i) => i.cols)), global: false });
        break;
      }
      default:
        if (PASS_THROUGH.has(node.kind)) {
          out.set(node.name, f);
          break;
        }
        throw new UnsupportedLayerError(`receptive fields through node "${node.name}" (${node.kind}) are not supported`);
    }
  }
  return out;
}

/** The receptive field of one node (see receptiveFields). */
export function receptiveField(classifier: Classifier, layer: string): ReceptiveField {
  classifier.node(layer);
  return receptiveFields(classifier).get(layer)!;
}

/**
 * The input window [top, left, height, width] seen by the unit at (y, x) of a node, clipped to the
 * image (so a unit near the border sees less than its full field).
 */
export function receptiveWindow(rf: ReceptiveField, y: number, x: number, imageShape: [number, number, number]): { top: number; left: number; height: number; width: number } {
  if (!Number.isInteger(y) || !Number.isInteger(x) || y < 0 || x < 0) throw new OptionError(`expected a unit position of non-negative integers; got (${y}, ${x})`);
  const [h, w] = imageShape;
  if (rf.global) return { top: 0, left: 0, height: h, width: w };
  const r0 = rf.rows.start + y * rf.rows.jump;
  const c0 = rf.cols.start + x * rf.cols.jump;
  const top = Math.max(0, r0);
  const left = Math.max(0, c0);
  const bottom = Math.min(h, r0 + rf.rows.size);
  const right = Math.min(w, c0 + rf.cols.size);
  return { top, left, height: Math.max(0, bottom - top), width: Math.max(0, right - left) };
}
