/**
 * The models of conformance fixtures. Two kinds: a `weights/` bundle for an architecture registered
 * here by name (FORMAT.md §2: mnist_cnn, mnist_mlp; others via registerFixtureModel), or a `model/`
 * folder holding the TF.js layers model itself (FORMAT.md §6), loaded from files with tfjs-layers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { DataError, UnsupportedLayerError } from '../core/errors.js';
import { Classifier } from '../core/classifier.js';
import { SUPPORTED_LAYER_CLASSES } from '../core/graph.js';
import { loadModel } from '../models/io.js';
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

// ---------------------------------------------------------------------------------------------
// Fixtures that carry their own model (FORMAT.md §6): model/model.json + weight shards

/** Collapse a message to one line (tfjs errors can span several). */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** Keras class names of the top-level layers in a model.json topology (functional or Sequential). */
export function topologyLayerClasses(topology: unknown): Array<{ name: string; className: string }> {
  const t = topology as Record<string, any> | null;
  const root = t?.model_config ?? t;
  const layers = root?.config?.layers ?? (Array.isArray(root?.config) ? root.config : undefined);
  if (!Array.isArray(layers)) return [];
  return layers.map((l: Record<string, any>) => ({ name: String(l?.config?.name ?? l?.name ?? '?'), className: String(l?.class_name ?? '?') }));
}

/**
 * Load the TF.js layers model of a model-carrying fixture from `dir` (model.json plus the shards its
 * weightsManifest lists), from files only. Before tfjs sees the topology, every layer class is
 * checked against the classes Glasswing executes, so an unknown class is an UnsupportedLayerError
 * naming the layer rather than a tfjs deserialisation message. Everything else that is wrong with
 * the files — corrupt JSON, a missing shard, a shard of the wrong size, weights that do not fit the
 * layers — is a DataError naming the fixture. Messages are one line.
 */
export async function loadFixtureModelDir(dir: string): Promise<tfl.LayersModel> {
  const file = path.join(dir, 'model.json');
  if (!fs.existsSync(file)) throw new DataError(`fixture model ${dir}: expected a model.json; got no such file`);
  let json: Record<string, any>;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DataError(`fixture model ${file}: expected valid JSON; got a parse error (${oneLine((e as Error).message)})`);
  }
  if (json == null || typeof json !== 'object' || typeof json.modelTopology !== 'object' || json.modelTopology == null) {
    throw new DataError(`fixture model ${file}: expected a TF.js layers model.json with "modelTopology"; got ${json == null ? 'null' : `keys [${Object.keys(json).join(', ')}]`}`);
  }
  if (json.format != null && json.format !== 'layers-model') {
    throw new DataError(`fixture model ${file}: expected format "layers-model"; got ${JSON.stringify(json.format)} (graph models are not fixtures)`);
  }
  const classes = topologyLayerClasses(json.modelTopology);
  if (classes.length === 0) throw new DataError(`fixture model ${file}: expected modelTopology.config.layers to list the layers; got none`);
  const supported = new Set(SUPPORTED_LAYER_CLASSES);
  const bad = classes.find((l) => !supported.has(l.className));
  if (bad) {
    throw new UnsupportedLayerError(`fixture model ${file}: layer "${bad.name}" has type ${bad.className}, which Glasswing does not support; supported: ${[...supported].join(', ')}`);
  }
  try {
    return await loadModel(dir);
  } catch (e) {
    if (e instanceof UnsupportedLayerError) throw e;
    throw new DataError(`fixture model ${dir}: ${oneLine((e as Error).message)}`);
  }
}
