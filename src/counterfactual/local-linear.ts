/**
 * `local-linear` — seed 002's find_plane. A network built from ReLU, max-pool, dense, conv, flatten,
 * padding and (inference) batch-norm layers is piecewise linear: in the region of a point x (fixed
 * ReLU masks and max-pool winners) it equals x·W + B exactly. W is the Jacobian there and B = y − x·W.
 *
 * The Jacobian is computed with one batched backward pass: each (point, output combination) pair
 * becomes one row of a tiled batch whose loss is the combination of that row's outputs, so all
 * rows' gradients come out of a single tf.grad call.
 *
 * Output selection (seed 002's "Node"): 'all' outputs, one output k, or the difference of two
 * [p, q] (y_p − y_q: the decision plane between p and q). The form can be taken between any two
 * nodes of the graph (`from`, `to`), e.g. to condense a deep tail to one affine map.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../core/classifier.js';
import { runGraph } from '../core/graph.js';
import { OptionError } from '../core/errors.js';
import { batchSizeFor } from '../engine/memory.js';

/** Which outputs the form describes: all of them, one, or the difference of two (y_p − y_q). */
export type PlaneOutput = 'all' | number | [number, number];

export interface LocalLinearOptions {
  /** Default 'all'. */
  output?: PlaneOutput;
  /** Node whose activation is the variable x (default: the network input). */
  from?: string;
  /** Node whose value is y (default: the logits). */
  to?: string;
  /**
   * Coefficient rows per backward pass when many outputs are requested, at most (default 256; fewer
   * when the memory budget says so — the whole classifier's per-sample footprint bounds a sub-network's).
   */
  chunk?: number;
}

export interface LocalLinearForm {
  /** [N, Din, Dout]: x·W + B = y for each image's flattened `from` activation x. */
  W: tf.Tensor3D;
  /** [N, Dout] */
  B: tf.Tensor2D;
  /** [N, Dout]: the outputs at x. */
  y: tf.Tensor2D;
  /** [N, Din]: the flattened point (activation of `from`) the form was taken at. */
  point: tf.Tensor2D;
  /** Shape of one `from` activation (without batch). */
  inputShape: number[];
  dispose(): void;
}

/** A function from a batch of points to a batch of output rows [M, Dout]. */
export type VectorFunction = (points: tf.Tensor) => tf.Tensor2D;

/**
 * For each row m: the gradient of Σ_k coeffs[m, k]·f(points[m])_k with respect to points[m], that
 * combination's value, and the outputs f(points). One forward and one backward pass for all rows.
 * The returned tensors are the caller's.
 */
export function combinationGradients(f: VectorFunction, points: tf.Tensor, coeffs: tf.Tensor2D): { grads: tf.Tensor; values: tf.Tensor1D; outputs: tf.Tensor2D } {
  let values: tf.Tensor1D | undefined;
  let outputs: tf.Tensor2D | undefined;
  const grads = tf.tidy(() => {
    const g = tf.grad((v: tf.Tensor) => {
      const out = f(v);
      outputs = tf.keep(out);
      values = tf.keep(tf.sum(tf.mul(out, coeffs), 1) as tf.Tensor1D);
      return tf.sum(values);
    });
    return g(points);
  });
  return { grads, values: values!, outputs: outputs! };
}

/** Coefficient rows (length k) for the requested outputs. */
export function outputCoefficients(output: PlaneOutput, k: number): number[][] {
  const check = (c: number) => {
    if (!Number.isInteger(c) || c < 0 || c >= k) throw new OptionError(`expected an output index in 0..${k - 1}; got ${c}`);
  };
  if (output === 'all') return Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 1 : 0)));
  if (typeof output === 'number') {
    check(output);
    return [Array.from({ length: k }, (_, j) => (j === output ? 1 : 0))];
  }
  if (Array.isArray(output) && output.length === 2) {
    check(output[0]);
    check(output[1]);
    if (output[0] === output[1]) throw new OptionError(`expected two different outputs for a difference plane; got [${output[0]}, ${output[1]}]`);
    const row = new Array(k).fill(0);
    row[output[0]] += 1;
    row[output[1]] -= 1;
    return [row];
  }
  throw new OptionError(`expected output 'all', a class index or a pair [p, q]; got ${JSON.stringify(output)}`);
}

/**
 * The sub-network from node `from` (default: input) to node `to` (default: logits), flattened to
 * rows. `f(points, inputs)` takes a batch of `from` activations and the matching network inputs
 * (used only for paths that bypass `from`). `points` are the `from` activations of x.
 */
export function subNetwork(classifier: Classifier, x: tf.Tensor, from?: string, to?: string): {
  f: (points: tf.Tensor, inputs: tf.Tensor) => tf.Tensor2D;
  points: tf.Tensor;
} {
  if (!from && !to) return { f: (p) => classifier.logits(p), points: tf.clone(x) };
  const graph = classifier.graph;
  if (!graph) throw new OptionError(`local-linear between layers needs a layered model; classifier "${classifier.name}" wraps a function`);
  if (from) classifier.node(from);
  if (to) classifier.node(to);
  if (from && to) {
    const order = graph.nodes.map((n) => n.name);
    if (order.indexOf(to) <= order.indexOf(from)) throw new OptionError(`expected layer "to" after "from"; got from "${from}", to "${to}"`);
  }
  const points = from ? tf.tidy(() => tf.clone(runGraph(graph, x, { until: from }).output)) : tf.clone(x);
  const f = (p: tf.Tensor, inputs: tf.Tensor) => {
    if (from && !to) return classifier.split(from).tail(p, inputs);
    const out = runGraph(graph, from ? inputs : p, { substitute: from ? new Map([[from, p]]) : undefined, output: to });
    return tf.reshape(out.output, [p.shape[0], -1]) as tf.Tensor2D;
  };
  return { f, points };
}

/** Tile row i of t `m` times: [m, ...t.shape.slice(1)]. */
export function tileRow(t: tf.Tensor, i: number, m: number): tf.Tensor {
  return tf.tile(tf.slice(t, i, 1), [m, ...t.shape.slice(1).map(() => 1)]);
}

/**
 * Seed 002's find_plane: W, B and y with x·W + B = y in the linear region of each image.
 *
 * @example
 * const form = localLinear(classifier, images, { output: [4, 9] }); // the plane between 4 and 9
 * form.W.shape; // [N, 784, 1]
 * form.dispose();
 */
export function localLinear(classifier: Classifier, x: tf.Tensor, opts: LocalLinearOptions = {}): LocalLinearForm {
  const output = opts.output ?? 'all';
  const n = x.shape[0];
  const chunk = batchSizeFor(classifier, 'gradient', Math.max(1, Math.floor(opts.chunk ?? 256)), { shape: x.shape.slice(1) });
  const { f, points } = subNetwork(classifier, x, opts.from, opts.to);
  const inputShape = points.shape.slice(1);
  const din = inputShape.reduce((a, b) => a * b, 1);
  const probe = tf.tidy(() => f(tf.slice(points, 0, 1), tf.slice(x, 0, 1)));
  const dout = probe.shape[1];
  probe.dispose();
  const coeffRows = outputCoefficients(output, dout);
  const r = coeffRows.length;
  // One backward pass per image and chunk of coefficient rows (the image tiled once per row).
  const wParts: tf.Tensor[] = [];
  const yParts: tf.Tensor[] = [];
  for (let i = 0; i < n; i++) {
    for (let start = 0; start < r; start += chunk) {
      const m = Math.min(chunk, r - start);
      tf.tidy(() => {
        const rep = tileRow(points, i, m);
        const xr = tileRow(x, i, m);
        const c = tf.tensor2d(coeffRows.slice(start, start + m));
        const { grads, values, outputs } = combinationGradients((v) => f(v, xr), rep, c);
        outputs.dispose();
        wParts.push(tf.keep(tf.reshape(grads, [m, din])));
        yParts.push(tf.keep(values));
      });
    }
  }
  const [W, B, y, point] = tf.tidy(() => {
    const Wt = tf.transpose(tf.reshape(tf.concat(wParts, 0), [n, r, din]), [0, 2, 1]) as tf.Tensor3D;
    const yt = tf.reshape(tf.concat(yParts, 0), [n, r]) as tf.Tensor2D;
    const pt = tf.reshape(points, [n, din]) as tf.Tensor2D;
    const xW = tf.reshape(tf.matMul(tf.reshape(pt, [n, 1, din]), Wt), [n, r]);
    return [Wt, tf.sub(yt, xW) as tf.Tensor2D, yt, pt];
  }) as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  tf.dispose([...wParts, ...yParts, points]);
  return { W, B, y, point, inputShape, dispose: () => tf.dispose([W, B, y, point]) };
}
