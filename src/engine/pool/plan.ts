/**
 * When to use the pool: how many lanes a piece of work gets.
 *
 * Shipping a chunk costs a fixed amount (a message each way, encoding and decoding its tensors, a
 * yield of the caller's thread) and the work per lane must pay for it. The work is estimated from
 * the classifier's multiply-accumulates per sample (MACs, summed over its linear nodes from the
 * graph's shapes and weight shapes; no data is read) times the number of samples, times 3 for a
 * gradient (forward plus the two halves of the backward). A call gets
 *
 *   lanes = min(requested workers, units of work, ⌊total MACs / MIN_LANE_MACS⌋), at least 1,
 *
 * so each lane gets at least MIN_LANE_MACS of work. MIN_LANE_MACS comes from `glasswing bench
 * parallel`'s crossover rows (docs/parallel.md): on the MNIST CNN (3.0 M MACs per forward, 9.1 M per
 * gradient) a split cost 1–3 ms of CPU per call whatever its size (batch 16: 10.5 → 13.3 ms of CPU,
 * 1.58× on free cores; batch 8: 1.40×), plus a scheduling slice of wall time per message on a loaded
 * machine — so a thread needs ~15 ms of work, ~40 M MACs, for the split to pay; a 224² image is
 * always worth it (ResNet-18, batch 2: 1.88×).
 */
import type { Classifier } from '../../core/classifier.js';
import type { GraphNode } from '../../core/graph.js';
import * as tf from '@tensorflow/tfjs-core';
import { OptionError } from '../../core/errors.js';
import { wasmKernelsInstalled } from '../wasm-kernels/index.js';
import { notShippable } from './ship.js';
import { getPool } from './pool.js';
import { requestedWorkers, isWorkerThread } from './settings.js';

/** Least work per lane, in multiply-accumulates, for shipping to pay (measured: docs/parallel.md). */
export const MIN_LANE_MACS = 40e6;

/**
 * The threshold in force: MIN_LANE_MACS, or GLASSWING_POOL_MIN_MACS (a number ≥ 0; 0 ships any work
 * that can be split — `glasswing bench parallel` uses it to measure the crossover).
 */
export function minLaneMacs(): number {
  const v = typeof process !== 'undefined' ? process.env?.GLASSWING_POOL_MIN_MACS : undefined;
  if (v == null || v === '') return MIN_LANE_MACS;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new OptionError(`expected GLASSWING_POOL_MIN_MACS to be a number ≥ 0; got "${v}"`);
  return n;
}

/** What a unit of work costs: one forward, one forward + input gradient, or a number of MACs. */
export type UnitCost = 'forward' | 'gradient' | { macs: number };

export interface LanePlan {
  lanes: number;
  /** Why the call uses fewer lanes than requested (empty when it uses them all). */
  reason: string;
  requested: number;
  /** Estimated multiply-accumulates of the whole call. */
  macs: number;
}

const macCache = new WeakMap<object, number>();

function nodeMacs(n: GraphNode, input: number[] | undefined): number {
  const k = n.params.kernel?.();
  if (!k) return n.kind === 'batchnorm' ? n.shape.reduce((a, b) => a * b, 1) : 0;
  const ks = k.shape as number[];
  const out = n.shape;
  switch (n.kind) {
    case 'dense':
      return ks[0] * ks[1] * (out.length > 1 ? out.slice(0, -1).reduce((a, b) => a * b, 1) : 1);
    case 'conv2d': // [kh, kw, cin, cout] per output pixel
      return out[0] * out[1] * ks[0] * ks[1] * ks[2] * ks[3];
    case 'depthwise-conv2d': // [kh, kw, cin, mult]
      return out[0] * out[1] * ks[0] * ks[1] * ks[2] * ks[3];
    case 'conv2d-transpose': // [kh, kw, cout, cin] per input pixel
      return (input ? input[0] * input[1] : out[0] * out[1]) * ks[0] * ks[1] * ks[2] * ks[3];
    default:
      return out.reduce((a, b) => a * b, 1);
  }
}

/** Multiply-accumulates of one sample's forward pass (cached per graph; 0 for function classifiers). */
export function forwardMacs(classifier: Classifier): number {
  const g = classifier.graph;
  if (!g) return 0;
  const cached = macCache.get(g);
  if (cached !== undefined) return cached;
  let total = 0;
  for (const n of g.nodes) total += nodeMacs(n, n.inputs[0] ? g.byName.get(n.inputs[0])?.shape : undefined);
  macCache.set(g, total);
  return total;
}

function unitMacs(classifier: Classifier, cost: UnitCost): number {
  if (typeof cost === 'object') return cost.macs;
  return forwardMacs(classifier) * (cost === 'gradient' ? 3 : 1);
}

/**
 * Lanes for `units` units of work of this cost on this classifier (see the module comment). Function
 * classifiers and calls inside a pool worker get 1 lane.
 */
export async function planLanes(classifier: Classifier, units: number, cost: UnitCost): Promise<LanePlan> {
  const requested = await requestedWorkers();
  const macs = unitMacs(classifier, cost) * units;
  if (requested <= 1) return { lanes: 1, reason: isWorkerThread() ? 'inside a pool worker' : 'workers: 1', requested, macs };
  const why = notShippable(classifier);
  if (why) return { lanes: 1, reason: `classifier "${classifier.name}" runs in the calling thread: ${why}`, requested, macs };
  const unavailable = getPool().unavailable;
  if (unavailable) return { lanes: 1, reason: `no pool workers in this process: ${unavailable}`, requested, macs };
  // Workers run wasm with Glasswing's kernels: a caller on another backend (the cpu backend as a
  // numerical reference) or on the stock kernels keeps its numbers by staying in its thread.
  if (tf.getBackend() !== 'wasm' || !wasmKernelsInstalled()) {
    return { lanes: 1, reason: `the calling thread runs ${tf.getBackend() !== 'wasm' ? `the ${tf.getBackend()} backend` : "the stock wasm kernels"}; pool workers run wasm with Glasswing's kernels`, requested, macs };
  }
  const min = minLaneMacs();
  const byWork = min > 0 ? Math.floor(macs / min) : Infinity;
  const lanes = Math.max(1, Math.min(requested, Math.floor(units), byWork));
  let reason = '';
  if (lanes < requested) {
    reason = byWork < requested && byWork <= units
      ? `${(macs / 1e6).toFixed(0)} M multiply-accumulates: under ${(min / 1e6).toFixed(0)} M per lane, shipping costs more than it saves`
      : `only ${units} unit${units === 1 ? '' : 's'} of work`;
  }
  return { lanes, reason, requested, macs };
}

/**
 * Items per chunk for `total` items when each chunk may hold at most `maxPerChunk` (the method's
 * memory-bounded batch): on one lane exactly `maxPerChunk` (the method's own chunking, unchanged);
 * on more, one chunk per lane (never more than `maxPerChunk`: then the lanes take the chunks from one
 * queue as they finish). One chunk per lane, not more: every chunk pays the method's fixed cost per
 * call — on the MNIST CNN a gradient's ~60 ops cost ~3 ms of dispatch whatever the batch — and that
 * cost, measured as CPU time, is what made 4 chunks on 2 lanes slower than 2 (docs/parallel.md).
 */
export function chunkSizeFor(total: number, maxPerChunk: number, lanes: number): number {
  if (lanes <= 1) return maxPerChunk;
  return Math.max(1, Math.min(maxPerChunk, Math.ceil(total / lanes)));
}
