/**
 * Save and load models in the TF.js layers format on disk: DIR/model.json (topology plus weights
 * manifest) and DIR/weights.bin — the same files `tensorflowjs_converter` and tfjs-node write, so
 * models move freely between Glasswing, the browser and Python. Also the shipped default models
 * (models/NAME/ in the package) and their Classifier wrappers.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import '../core/input-transform.js'; // registers the InputTransform layer class for deserialisation
import { Classifier } from '../core/classifier.js';
import { ModelLoadError, OptionError } from '../core/errors.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

export interface SaveOptions {
  /** Free-form JSON stored as `userDefinedMetadata` in model.json (accuracy, training recipe, class names…). */
  metadata?: Record<string, unknown>;
  /** Replace an existing model folder; default true. */
  overwrite?: boolean;
}

export interface SaveInfo {
  dir: string;
  modelJsonBytes: number;
  weightBytes: number;
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

/**
 * Write `model` to `dir` (model.json + weights.bin). The files are written to a temporary sibling
 * folder first and renamed into place, so a crash never leaves a half-written model behind.
 */
export async function saveModel(model: tfl.LayersModel, dir: string, opts: SaveOptions = {}): Promise<SaveInfo> {
  const target = path.resolve(dir);
  if (fs.existsSync(target) && opts.overwrite === false) {
    throw new OptionError(`expected a new folder to save model "${model.name}" into; got existing ${target} (pass overwrite: true)`);
  }
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  if (!artifacts || !artifacts.weightSpecs) throw new ModelLoadError(`saving model "${model.name}" produced no artifacts`);
  const weightData = artifacts.weightData == null
    ? new ArrayBuffer(0)
    : Array.isArray(artifacts.weightData)
      ? tf.io.CompositeArrayBuffer.join(artifacts.weightData)
      : artifacts.weightData;
  const json: Record<string, unknown> = {
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
    convertedBy: 'glasswing',
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs }],
  };
  if (artifacts.trainingConfig) json.trainingConfig = artifacts.trainingConfig;
  if (opts.metadata) json.userDefinedMetadata = opts.metadata;
  const text = JSON.stringify(json);

  const parent = path.dirname(target);
  fs.mkdirSync(parent, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(parent, `.${path.basename(target)}.tmp-`));
  try {
    fs.writeFileSync(path.join(tmp, WEIGHTS_BIN), Buffer.from(weightData));
    fs.writeFileSync(path.join(tmp, MODEL_JSON), text);
    fs.chmodSync(tmp, 0o755); // mkdtemp makes it private
    if (fs.existsSync(target)) {
      const old = `${tmp}-old`;
      fs.renameSync(target, old);
      fs.renameSync(tmp, target);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, target);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { dir: target, modelJsonBytes: Buffer.byteLength(text), weightBytes: weightData.byteLength };
}

interface ModelJson {
  modelTopology: unknown;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  userDefinedMetadata?: Record<string, unknown>;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  trainingConfig?: tf.io.TrainingConfig;
}

function readModelJson(dir: string): { json: ModelJson; file: string } {
  const root = path.resolve(dir);
  const file = root.endsWith('.json') ? root : path.join(root, MODEL_JSON);
  if (!fs.existsSync(file)) {
    const what = fs.existsSync(path.dirname(file)) ? `no ${path.basename(file)} in ${path.dirname(file)}` : `${path.dirname(file)} does not exist`;
    throw new ModelLoadError(`expected a TF.js layers model (a folder with model.json and weights); got ${what}`);
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ModelLoadError(`expected a readable ${file}; got ${(e as Error).message}`);
  }
  let json: ModelJson;
  try {
    json = JSON.parse(text) as ModelJson;
  } catch (e) {
    throw new ModelLoadError(`expected valid JSON in ${file}; got a parse error: ${(e as Error).message}`);
  }
  if (json == null || typeof json !== 'object' || json.modelTopology == null || typeof json.modelTopology !== 'object') {
    throw new ModelLoadError(`expected a TF.js layers model.json with "modelTopology" in ${file}; got ${json == null ? 'null' : `keys [${Object.keys(json).join(', ')}]`}`);
  }
  if (!Array.isArray(json.weightsManifest)) {
    throw new ModelLoadError(`expected "weightsManifest" (an array of weight groups) in ${file}; got ${typeof json.weightsManifest}`);
  }
  return { json, file };
}

/** The userDefinedMetadata stored in DIR/model.json (empty object when there is none). */
export function readModelMetadata(dir: string): Record<string, unknown> {
  return readModelJson(dir).json.userDefinedMetadata ?? {};
}

/**
 * Load a TF.js layers model from DIR (or DIR/model.json). Throws ModelLoadError when the folder or
 * a file is missing, the JSON is corrupt, or the weight files do not hold the bytes the manifest lists.
 */
export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  const { json, file } = readModelJson(dir);
  const base = path.dirname(file);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest) {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new ModelLoadError(`expected weight groups {paths, weights} in ${file}; got ${JSON.stringify(group)?.slice(0, 80)}`);
    }
    let expected = 0;
    for (const w of group.weights) {
      const perElem = w.quantization ? DTYPE_BYTES[w.quantization.dtype] ?? (w.quantization.dtype === 'float16' ? 2 : 1) : DTYPE_BYTES[w.dtype];
      if (perElem == null || !Array.isArray(w.shape)) {
        throw new ModelLoadError(`expected weight "${w.name}" in ${file} to have a shape and a dtype float32/int32/bool; got dtype ${w.dtype}, shape ${JSON.stringify(w.shape)}`);
      }
      expected += perElem * w.shape.reduce((a, b) => a * b, 1);
      specs.push(w);
    }
    let got = 0;
    for (const p of group.paths) {
      const wf = path.join(base, p);
      if (!fs.existsSync(wf)) throw new ModelLoadError(`expected weight file ${wf} listed in ${file}; got no such file`);
      const b = fs.readFileSync(wf);
      got += b.byteLength;
      buffers.push(b);
    }
    if (got !== expected) {
      throw new ModelLoadError(`expected ${expected} bytes of weights in ${group.paths.join(', ')} (as listed in ${file}); got ${got} bytes (truncated or wrong file)`);
    }
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  try {
    return await tfl.loadLayersModel(tf.io.fromMemory({
      modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
      weightSpecs: specs,
      weightData,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy ?? undefined,
      userDefinedMetadata: json.userDefinedMetadata,
    }));
  } catch (e) {
    throw new ModelLoadError(`expected a loadable TF.js layers model in ${file}; got an error building it: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Shipped default models

const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export type DefaultModelName = 'mnist-cnn' | 'mnist-mlp' | 'mnist-cnn-nobias' | 'fashion-cnn' | 'mnist-cnn-biased';

export interface DefaultModelInfo {
  name: DefaultModelName;
  dataset: 'mnist' | 'fashion';
  description: string;
  /** Test accuracy the shipped model must reach on its seeded test split. */
  accuracyBar: number;
  classNames: string[];
}

export const DEFAULT_MODELS: readonly DefaultModelInfo[] = [
  { name: 'mnist-cnn', dataset: 'mnist', accuracyBar: 0.985, classNames: MNIST_CLASSES,
    description: 'MNIST CNN: conv1 5×5×16 → pool → conv2 5×5×32 → pool → fc1 128 → fc2 10, ReLU, biases; the general-purpose default' },
  { name: 'mnist-mlp', dataset: 'mnist', accuracyBar: 0.97, classNames: MNIST_CLASSES,
    description: 'MNIST MLP 784-256-128-10, ReLU, biases (GeoSal, DeepFool and weight-based saliency work on it)' },
  { name: 'mnist-cnn-nobias', dataset: 'mnist', accuracyBar: 0.98, classNames: MNIST_CLASSES,
    description: 'bias-free MNIST CNN (same shape as mnist-cnn) with input offset −0.5 inside the model (VisualBackProp, seed 002)' },
  { name: 'fashion-cnn', dataset: 'fashion', accuracyBar: 0.88, classNames: FASHION_CLASSES,
    description: 'Fashion-MNIST CNN (same shape as mnist-cnn)' },
  { name: 'mnist-cnn-biased', dataset: 'mnist', accuracyBar: 0.95, classNames: MNIST_CLASSES,
    description: 'MNIST CNN trained on biased MNIST: every 8 carries a 6×6 grey square top-left (seed 001 bias experiment)' },
];

/** The package root (the folder with glasswing's package.json), found from this module's location. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'glasswing') return dir;
      } catch {
        // keep walking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new ModelLoadError(`expected to find glasswing's package.json above ${fileURLToPath(import.meta.url)}; got none`);
    dir = up;
  }
}

/** Folder of the shipped default models: GLASSWING_MODELS_DIR, else <package root>/models. */
export function defaultModelsDir(): string {
  return process.env.GLASSWING_MODELS_DIR ? path.resolve(process.env.GLASSWING_MODELS_DIR) : path.join(packageRoot(), 'models');
}

export function defaultModelInfo(name: string): DefaultModelInfo {
  const info = DEFAULT_MODELS.find((m) => m.name === name);
  if (!info) {
    throw new OptionError(`expected a default model name (${DEFAULT_MODELS.map((m) => m.name).join(', ')}); got "${name}"`);
  }
  return info;
}

/** Folder of default model NAME (it may not exist yet before `npm run train:defaults`). */
export function defaultModelDir(name: string): string {
  return path.join(defaultModelsDir(), defaultModelInfo(name).name);
}

/** Whether default model NAME has been trained and shipped. */
export function hasDefaultModel(name: string): boolean {
  return fs.existsSync(path.join(defaultModelDir(name), MODEL_JSON));
}

/** Load shipped default model NAME (models/NAME/) as a Classifier with its class names. */
export async function loadDefaultClassifier(name: string): Promise<Classifier> {
  const info = defaultModelInfo(name);
  const dir = defaultModelDir(name);
  if (!fs.existsSync(path.join(dir, MODEL_JSON))) {
    throw new ModelLoadError(`expected the default model "${name}" in ${dir}; got no model.json there (run \`npm run train:defaults -- --only ${name}\`)`);
  }
  const model = await loadModel(dir);
  const meta = readModelMetadata(dir);
  const classNames = Array.isArray(meta.classNames) && meta.classNames.length === info.classNames.length ? (meta.classNames as string[]) : info.classNames;
  return Classifier.fromModel(model, { name, classNames, low: 0, high: 1 });
}
