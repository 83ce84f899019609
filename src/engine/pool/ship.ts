/**
 * Shipping a classifier to a worker: its executable node graph (what Glasswing runs, for layered
 * tfjs-layers models and TF graph models alike) with every weight read once, sent once per worker and
 * cached there under the classifier's model key.
 *
 * Why the graph and not the LayersModel: both kinds of classifier are executed by Glasswing's own
 * graph runner (core/graph.ts), whose nodes hold plain data plus nullary functions returning weight
 * tensors (kernel, bias, slope, batchNorm). Calling those functions and sending the tensors
 * reproduces exactly what the caller runs — for a LayersModel, a graph model, the preprocess node,
 * or a graph edited by hand — without tfjs-layers' serialisation or custom-layer registries.
 *
 * Function classifiers (Classifier.fromFunction) cannot be shipped: a JavaScript closure cannot be
 * sent to another thread (structured cloning refuses functions, and its free variables — the model it
 * calls — live on this thread's backend). They run in the caller's thread.
 *
 * Model key: a number per Classifier object plus a version that changes when any weight tensor gets
 * a new buffer (training assigns new buffers; recovery.ts relies on the same fact). Hashing the
 * weights' bytes would cost a full read of the weights on every call (45 MB for ResNet-18).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Classifier } from '../../core/classifier.js';
import type { Graph, GraphNode } from '../../core/graph.js';
import { decode, encode } from './wire.js';

/** A graph node on the wire: functions are replaced by the value they return ({ __gwFn: value }). */
interface ShippedNode {
  name: string;
  kind: GraphNode['kind'];
  layerName: string;
  layerClass: string;
  inputs: string[];
  shape: number[];
  params: Record<string, unknown>;
}

/** What a worker needs to rebuild a classifier. */
export interface ShippedClassifier {
  key: string;
  name: string;
  low: number;
  high: number;
  classNames: string[];
  nodes: ShippedNode[];
  output: string;
  aliases?: Array<[string, string]>;
}

/** Why this classifier cannot be shipped to a worker, or undefined when it can. */
export function notShippable(classifier: Classifier): string | undefined {
  if (!classifier.graph) return 'it wraps a plain JavaScript function, which cannot be sent to another thread';
  return undefined;
}

const classifierIds = new WeakMap<Classifier, number>();
const bufferIds = new WeakMap<object, number>();
let nextId = 1;

function idOf<K extends object>(map: WeakMap<K, number>, k: K): number {
  let id = map.get(k);
  if (id === undefined) {
    id = nextId++;
    map.set(k, id);
  }
  return id;
}

/** Every weight tensor the graph's node functions return, in node order. */
function weightTensors(graph: Graph): tf.Tensor[] {
  const out: tf.Tensor[] = [];
  const collect = (v: unknown) => {
    if (v instanceof tf.Tensor) out.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(collect);
  };
  for (const n of graph.nodes) {
    for (const v of Object.values(n.params)) if (typeof v === 'function') collect((v as () => unknown)());
  }
  return out;
}

/**
 * The classifier's model key: stable while neither the classifier object nor any weight buffer
 * changes. Cheap (no weight data is read).
 */
export function modelKey(classifier: Classifier): string {
  const id = idOf(classifierIds, classifier);
  if (!classifier.graph) return `f${id}`;
  // FNV-1a over the weights' buffer ids: a new buffer anywhere gives a new version
  let h = 0x811c9dc5;
  for (const t of weightTensors(classifier.graph)) {
    h ^= idOf(bufferIds, t.dataId as object);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `c${id}.${h.toString(36)}`;
}

/** Encode the classifier for a worker (weights read once here; their buffers go in `transfer`). */
export function shipClassifier(classifier: Classifier, key: string, transfer: Transferable[]): ShippedClassifier {
  const graph = classifier.graph;
  if (!graph) throw new Error(`internal: classifier "${classifier.name}" cannot be shipped: ${notShippable(classifier)}`);
  const nodes = graph.nodes.map((n): ShippedNode => {
    const params: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(n.params)) {
      params[k] = typeof v === 'function' ? { __gwFn: encode((v as () => unknown)(), transfer, {}, `${n.name}.${k}()`) } : encode(v, transfer, {}, `${n.name}.${k}`);
    }
    return { name: n.name, kind: n.kind, layerName: n.layerName, layerClass: n.layerClass, inputs: n.inputs.slice(), shape: n.shape.slice(), params };
  });
  return {
    key, name: classifier.name, low: classifier.domain.low, high: classifier.domain.high, classNames: classifier.classNames.slice(),
    nodes, output: graph.output, aliases: graph.aliases ? [...graph.aliases] : undefined,
  };
}

/** Rebuild a shipped classifier on this thread (the worker): it owns the weight tensors (dispose() frees them). */
export function receiveClassifier(s: ShippedClassifier): Classifier {
  const weights: tf.Tensor[] = [];
  const nodes: GraphNode[] = s.nodes.map((n) => {
    const params: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(n.params)) {
      if (v && typeof v === 'object' && '__gwFn' in (v as object)) {
        const value = decode((v as { __gwFn: unknown }).__gwFn, weights);
        params[k] = () => value;
      } else params[k] = decode(v, weights);
    }
    return { name: n.name, kind: n.kind, layerName: n.layerName, layerClass: n.layerClass, inputs: n.inputs, shape: n.shape, params } as GraphNode;
  });
  const graph: Graph = { nodes, byName: new Map(nodes.map((n) => [n.name, n])), output: s.output, aliases: s.aliases ? new Map(s.aliases) : undefined };
  return Classifier.fromGraph(graph, { name: s.name, low: s.low, high: s.high, classNames: s.classNames, weights });
}
