/**
 * Architectures of the conformance fixtures (FORMAT.md §2), built as TF.js LayersModels and filled
 * from a weights bundle. New fixture models register a builder with registerFixtureModel.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { DataError } from '../core/errors.js';
import { Classifier } from '../core/classifier.js';
import { readBundle, type Bundle } from './bundle.js';

type Builder = () => tfl.LayersModel;
const builders = new Map<string, Builder>();

/** Register the TF.js architecture of a fixture model name (manifest.model). */
export function registerFixtureModel(name: string, build: Builder): void {
  builders.set(name, build);
}

export function fixtureModelNames(): string[] {
  return [...builders.keys()].sort();
}

/** FORMAT.md §2.1 (also the default shape of Glasswing's MNIST CNN benchmark). */
export function buildMnistCnnArchitecture(): tfl.Sequential {
  return tfl.sequential({
    name: 'mnist_cnn',
    layers: [
      tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 5, padding: 'same', activation: 'relu', name: 'conv1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool1' }),
      tfl.layers.conv2d({ filters: 64, kernelSize: 5, padding: 'same', activation: 'relu', name: 'conv2' }),
      tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: 'pool2' }),
      tfl.layers.flatten({ name: 'flatten' }),
      tfl.layers.dense({ units: 128, activation: 'relu', name: 'fc1' }),
      tfl.layers.dense({ units: 10, name: 'fc2' }),
    ],
  });
}

/** FORMAT.md §2.2. */
export function buildMnistMlpArchitecture(): tfl.Sequential {
  return tfl.sequential({
    name: 'mnist_mlp',
    layers: [
      tfl.layers.flatten({ inputShape: [28, 28, 1], name: 'flatten' }),
      tfl.layers.dense({ units: 256, activation: 'relu', name: 'fc1' }),
      tfl.layers.dense({ units: 128, activation: 'relu', name: 'fc2' }),
      tfl.layers.dense({ units: 10, name: 'fc3' }),
    ],
  });
}

registerFixtureModel('mnist_cnn', buildMnistCnnArchitecture);
registerFixtureModel('mnist_mlp', buildMnistMlpArchitecture);

/**
 * Build the model named by a weights bundle's manifest.model (or `modelName`) and set its weights.
 * Weights are matched by name (`<layer>/kernel`, `<layer>/bias`); when names do not match the
 * layers, manifest order is used (FORMAT.md: order is setWeights order). Shapes must agree.
 */
export function loadFixtureModel(weights: Bundle | string, modelName?: string | null): tfl.LayersModel {
  const bundle = typeof weights === 'string' ? readBundle(weights, { kind: 'weights' }) : weights;
  const name = modelName ?? bundle.manifest.model;
  if (!name) throw new DataError(`bundle ${bundle.dir}: expected manifest.model to name the architecture (${fixtureModelNames().join(', ')}); got ${JSON.stringify(name)}`);
  const build = builders.get(name);
  if (!build) throw new DataError(`bundle ${bundle.dir}: unknown model "${name}"; expected one of ${fixtureModelNames().join(', ')} (register others with registerFixtureModel)`);
  const model = build();
  const vars = model.weights as unknown as Array<{ originalName?: string; name: string; shape: number[] }>;
  const byName = vars.map((v) => (v.originalName ?? v.name).replace(/_\d+(?=\/)/, ''));
  const useNames = byName.every((n) => bundle.has(n));
  if (!useNames && bundle.names.length !== vars.length) {
    model.dispose();
    throw new DataError(`bundle ${bundle.dir}: expected ${vars.length} weight tensors for model "${name}" (${byName.join(', ')}); got ${bundle.names.length} (${bundle.names.join(', ')})`);
  }
  const tensors = vars.map((v, i) => {
    const key = useNames ? byName[i] : bundle.names[i];
    const d = bundle.data(key);
    if (d.shape.length !== v.shape.length || d.shape.some((s, j) => s !== v.shape[j])) {
      throw new DataError(`bundle ${bundle.dir}: weight "${key}" for "${byName[i]}": expected shape [${v.shape.join(', ')}]; got [${d.shape.join(', ')}]`);
    }
    return tf.tensor(d.data, d.shape, 'float32');
  });
  model.setWeights(tensors);
  tf.dispose(tensors);
  return model;
}

/** The Classifier of a fixture's weights bundle. */
export function loadFixtureClassifier(weights: Bundle | string, modelName?: string | null): Classifier {
  const model = loadFixtureModel(weights, modelName);
  return Classifier.fromModel(model, { name: modelName ?? (typeof weights === 'string' ? undefined : weights.manifest.model ?? undefined) });
}
