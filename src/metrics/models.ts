/**
 * Model variants the metrics explain: a copy of the network with some layers' parameters randomized
 * (Adebayo et al.'s model-parameter randomization test) and the offset-shifted twin of Kindermans et
 * al.'s input-invariance test.
 *
 * Both are new Classifiers over a *copy* of the node graph whose changed nodes read new tensors; the
 * original model, its variables and its graph are never written, so nothing can be left changed —
 * not even when the method throws halfway. The copies' tensors (and any weight-derived caches keyed
 * on the copied graph) are released by `dispose()`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Classifier } from '../core/classifier.js';
import type { Graph, GraphNode } from '../core/graph.js';
import { OptionError } from '../core/errors.js';
import { clearFootprints } from '../engine/memory.js';
import { clearWeightCache } from '../attribution/propagation/weight-cache.js';

export interface ModelVariant {
  classifier: Classifier;
  dispose(): void;
}

function copyGraph(g: Graph): Graph {
  const nodes: GraphNode[] = g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], params: { ...n.params }, shape: [...n.shape] }));
  return { nodes, byName: new Map(nodes.map((n) => [n.name, n])), output: g.output };
}

function requireGraph(classifier: Classifier, what: string): Graph {
  if (!classifier.graph) throw new OptionError(`${what} needs the layers of the model; classifier "${classifier.name}" wraps a plain function`);
  return classifier.graph;
}

/** Nodes holding a kernel (dense, conv, depthwise, transposed conv), in execution order. */
export function weightNodes(classifier: Classifier): string[] {
  const g = requireGraph(classifier, 'randomization');
  return g.nodes.filter((n) => n.params.kernel).map((n) => n.name);
}

function variant(classifier: Classifier, graph: Graph, tensors: tf.Tensor[], name: string, domain = classifier.domain): ModelVariant {
  const c = Classifier.fromGraph(graph, { name, low: domain.low, high: domain.high, classNames: classifier.classNames });
  return {
    classifier: c,
    dispose() {
      clearWeightCache(graph);
      clearFootprints(c);
      tf.dispose(tensors);
    },
  };
}

/** Seeded normal draws with the standard deviation of `t` (He-like fan-in scale when `t` is constant). */
function redraw(t: tf.Tensor, seed: number, fanIn: number): tf.Tensor {
  return tf.tidy(() => {
    const { variance } = tf.moments(t);
    let sd = Math.sqrt(variance.dataSync()[0]);
    if (!(sd > 0)) sd = Math.sqrt(2 / Math.max(1, fanIn));
    return tf.randomNormal(t.shape, 0, sd, 'float32', seed);
  });
}

/**
 * A copy of the classifier whose named weight nodes have new kernels (and biases, when the bias is
 * not all zero) drawn from a seeded normal distribution with the original's standard deviation.
 */
export function randomizedClassifier(classifier: Classifier, nodeNames: string[], seed: number): ModelVariant {
  const g = copyGraph(requireGraph(classifier, 'randomization'));
  const tensors: tf.Tensor[] = [];
  try {
    nodeNames.forEach((name, i) => {
      const node = g.byName.get(name);
      if (!node?.params.kernel) throw new OptionError(`expected a weight layer of "${classifier.name}" (${weightNodes(classifier).join(', ')}); got "${name}"`);
      const k = node.params.kernel();
      const fanIn = k.size / k.shape[k.shape.length - 1];
      const nk = redraw(k, seed * 1000 + 2 * i + 1, fanIn);
      tensors.push(nk);
      node.params.kernel = () => nk;
      const b = node.params.bias?.();
      if (b) {
        const zero = tf.tidy(() => tf.max(tf.abs(b)).dataSync()[0] === 0);
        if (!zero) {
          const nb = redraw(b, seed * 1000 + 2 * i + 2, fanIn);
          tensors.push(nb);
          node.params.bias = () => nb;
        }
      }
    });
    return variant(classifier, g, tensors, `${classifier.name}~randomized(${nodeNames.join(',')})`);
  } catch (e) {
    tf.dispose(tensors);
    throw e;
  }
}

/**
 * The offset-shifted twin: a classifier g with g(x + shift) = f(x) for every x. On a layered model
 * the shift is undone by the model's own input transform when it has one (its offset moves), else by
 * a per-channel affine node `input_shift` (x − shift) in front — which LRP's canonizer folds into the
 * first linear layer, giving exactly Kindermans et al.'s twin with bias b − W·shift. A function
 * classifier gets x ↦ f(x − shift). Its input domain is the original's moved by `shift`.
 */
export function shiftedTwin(classifier: Classifier, shift: number): ModelVariant {
  const domain = { ...classifier.domain, low: classifier.domain.low + shift, high: classifier.domain.high + shift };
  const name = `${classifier.name}~shifted(${shift})`;
  if (!classifier.graph) {
    const c = Classifier.fromFunction((x) => tf.tidy(() => classifier.logits(tf.sub(x, shift))), {
      name, inputShape: classifier.inputShape, numClasses: classifier.numClasses, low: domain.low, high: domain.high, classNames: classifier.classNames,
    });
    return { classifier: c, dispose: () => clearFootprints(c) };
  }
  const g = copyGraph(classifier.graph);
  const input = g.nodes[0];
  const first = g.nodes.find((n) => n.inputs.includes(input.name));
  if (first && first.kind === 'transform' && first.params.transform && g.nodes.filter((n) => n.inputs.includes(input.name)).length === 1) {
    const t = first.params.transform;
    // (x' − shift) inverted/scaled: offset' = offset ∓ shift·scale.
    first.params.transform = { ...t, offset: t.offset + (t.invert ? shift : -shift) * t.scale };
    return variant(classifier, g, [], name, domain);
  }
  const c = input.shape[2];
  const mean = tf.fill([c], shift);
  const variance = tf.ones([c]);
  // explicit γ = 1, β = 0: tfjs saves both for the gradient and fails on undefined ones
  const gamma = tf.ones([c]);
  const beta = tf.zeros([c]);
  const node: GraphNode = {
    name: 'input_shift', kind: 'batchnorm', layerName: 'input_shift', layerClass: 'InputShift', inputs: [input.name], shape: input.shape.slice(),
    params: { batchNorm: () => ({ mean, variance, gamma, beta, epsilon: 0 }) },
  };
  if (g.byName.has(node.name)) throw new OptionError('the model already has a node named "input_shift"');
  for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === input.name ? node.name : i));
  g.nodes.splice(1, 0, node);
  g.byName.set(node.name, node);
  return variant(classifier, g, [mean, variance, gamma, beta], name, domain);
}
