/**
 * A model folder — model.json (layers model or graph model), its weight shards, and optionally
 * glasswing.json and a labels file — as a Classifier with its preprocessing and class names.
 *
 * One code path for Node and the browser: `classifierFromFiles` takes the folder's files as a map
 * (relative path → bytes or text), which is what a page gets from a dropped or picked folder;
 * `loadClassifier(dir)` (models/load.ts) reads the same files from disk and calls it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '../core/input-transform.js'; // registers the InputTransform layer class for deserialisation
import { Classifier } from '../core/classifier.js';
import { ModelLoadError } from '../core/errors.js';
import { parseGlasswingJson, preprocessingOf, type GlasswingJson } from '../core/preprocessing.js';
import { isGraphModelJson, parseGraphModelJson, type GraphModelJson } from './graph-model.js';

export type ModelFiles = Map<string, Uint8Array | ArrayBuffer | string>;

/** Load-time options: glasswing.json's fields (they override the file's) plus the model's input channels when its size is open. */
export interface LoadClassifierOptions extends GlasswingJson {
  /** Channels of a graph model whose Placeholder leaves them open (default 3). */
  channels?: number;
}

const decoder = new TextDecoder();
function text(v: Uint8Array | ArrayBuffer | string): string {
  return typeof v === 'string' ? v : decoder.decode(v instanceof Uint8Array ? v : new Uint8Array(v));
}
function bytes(v: Uint8Array | ArrayBuffer | string): Uint8Array {
  return typeof v === 'string' ? new TextEncoder().encode(v) : v instanceof Uint8Array ? v : new Uint8Array(v);
}

/** Strip a common leading folder ("mobilenet/model.json" → "model.json") so dropped folders work. */
function normalise(files: ModelFiles): ModelFiles {
  const keys = [...files.keys()].map((k) => k.replace(/\\/g, '/').replace(/^\.\//, ''));
  const mj = keys.filter((k) => k === 'model.json' || k.endsWith('/model.json')).sort((a, b) => a.length - b.length)[0];
  const prefix = mj ? mj.slice(0, mj.length - 'model.json'.length) : '';
  const out: ModelFiles = new Map();
  [...files.values()].forEach((v, i) => {
    const k = keys[i];
    out.set(prefix && k.startsWith(prefix) ? k.slice(prefix.length) : k, v);
  });
  return out;
}

/** Parse a labels file: one class name per line (a trailing empty line ignored; "index name" and "index: name" prefixes stripped when every line has one). */
export function parseLabels(content: string): string[] {
  const lines = content.replace(/\r\n?/g, '\n').split('\n');
  while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
  const prefixed = lines.length > 0 && lines.every((l, i) => new RegExp(`^\\s*${i}\\s*[:\\s]\\s*\\S`).test(l) || new RegExp(`^\\s*${i + 1}\\s*[:\\s]\\s*\\S`).test(l));
  return lines.map((l) => (prefixed ? l.replace(/^\s*\d+\s*[:\s]\s*/, '') : l).trim());
}

/**
 * A Classifier from a model folder's files. `files` maps paths relative to the folder (a common
 * leading folder is stripped) to their bytes or text. Errors: ModelLoadError (missing or corrupt
 * files, a bad glasswing.json, class names that do not match the outputs), UnsupportedLayerError.
 */
export async function classifierFromFiles(files: ModelFiles, opts: LoadClassifierOptions = {}, where = 'model folder'): Promise<Classifier> {
  const f = normalise(files);
  const mj = f.get('model.json');
  if (mj == null) throw new ModelLoadError(`expected a model.json in ${where}; got files [${[...f.keys()].slice(0, 10).join(', ')}]`);
  let raw: unknown;
  try {
    raw = JSON.parse(text(mj));
  } catch (e) {
    throw new ModelLoadError(`expected valid JSON in ${where}/model.json; got a parse error: ${(e as Error).message}`);
  }
  let g: GlasswingJson = {};
  const gj = f.get('glasswing.json');
  if (gj != null) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text(gj));
    } catch (e) {
      throw new ModelLoadError(`expected valid JSON in ${where}/glasswing.json; got a parse error: ${(e as Error).message}`);
    }
    g = parseGlasswingJson(parsed, `${where}/glasswing.json`);
  }
  const { channels, ...rest } = opts;
  const given = parseGlasswingJson(Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)), 'the load options');
  g = { ...g, ...given };
  const pre = preprocessingOf(g);

  const weightsOf = (paths: string[]) => paths.map((p) => {
    const b = f.get(p) ?? f.get(p.replace(/^\.\//, ''));
    if (b == null) throw new ModelLoadError(`expected weight file "${p}" (listed in model.json) in ${where}; got none`);
    return bytes(b);
  });

  let classifier: Classifier;
  const metaNames = (raw as { userDefinedMetadata?: { classNames?: unknown } }).userDefinedMetadata?.classNames;
  const name = g.name ?? where.replace(/\/+$/, '').split('/').pop();
  if (isGraphModelJson(raw)) {
    const json: GraphModelJson = parseGraphModelJson(raw as GraphModelJson, `${where}/model.json`);
    const inputShape = g.inputSize ? [g.inputSize[0], g.inputSize[1], channels ?? graphChannels(json) ?? 3] as [number, number, number] : undefined;
    classifier = await Classifier.fromGraphModel(
      { modelJson: json, weights: weightsOf(json.weightsManifest.flatMap((w) => w.paths)) },
      { name, inputShape, output: g.output, preprocessing: pre },
    );
  } else {
    const json = raw as { modelTopology?: unknown; weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>; format?: string };
    if (!json || typeof json.modelTopology !== 'object' || !Array.isArray(json.weightsManifest)) {
      throw new ModelLoadError(`expected a TF.js layers or graph model.json in ${where}; got keys [${Object.keys(json ?? {}).join(', ')}]`);
    }
    const parts = weightsOf(json.weightsManifest.flatMap((w) => w.paths));
    const total = parts.reduce((a, p) => a + p.byteLength, 0);
    const data = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      data.set(p, o);
      o += p.byteLength;
    }
    let model: tfl.LayersModel;
    try {
      model = await tfl.loadLayersModel(tf.io.fromMemory({
        modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
        weightSpecs: json.weightsManifest.flatMap((w) => w.weights),
        weightData: data.buffer,
        format: json.format,
      }));
    } catch (e) {
      throw new ModelLoadError(`expected a loadable TF.js layers model in ${where}; got an error building it: ${(e as Error).message.split('\n')[0]}`);
    }
    const shape = model.inputs[0]?.shape;
    if (g.inputSize && shape && (shape[1] !== g.inputSize[0] || shape[2] !== g.inputSize[1])) {
      model.dispose();
      throw new ModelLoadError(`glasswing.json gives inputSize [${g.inputSize.join(', ')}] but the layers model in ${where} takes [${shape[1]}, ${shape[2]}]`);
    }
    try {
      classifier = Classifier.fromModel(model, { name, preprocessing: pre });
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  // class names: glasswing.json classNames, else its labels file, else the model's metadata
  let names = g.classNames;
  if (!names && g.labels) {
    const lf = f.get(g.labels.replace(/^\.\//, ''));
    if (lf == null) {
      disposeClassifier(classifier);
      throw new ModelLoadError(`expected the labels file "${g.labels}" named in glasswing.json in ${where}; got none`);
    }
    names = parseLabels(text(lf)).slice(g.labelsOffset ?? 0);
  }
  if (!names && Array.isArray(metaNames) && metaNames.length === classifier.numClasses) names = metaNames.map(String);
  if (names) {
    if (names.length !== classifier.numClasses) {
      disposeClassifier(classifier);
      throw new ModelLoadError(`expected ${classifier.numClasses} class names (the model's outputs) in ${where}; got ${names.length}${g.labels ? ` from ${g.labels}${names.length === classifier.numClasses + 1 ? ' (set "labelsOffset": 1 to skip a leading background label)' : ''}` : ''}`);
    }
    return classifier.withClassNames(names);
  }
  return classifier;
}

function disposeClassifier(c: Classifier): void {
  c.dispose();
  c.model?.dispose();
}

function graphChannels(json: GraphModelJson): number | undefined {
  const ph = json.modelTopology.node.find((n) => n.op === 'Placeholder');
  const d = ph?.attr?.shape?.shape?.dim;
  const c = d && d.length === 4 ? Number(d[3].size) : undefined;
  return c && c > 0 ? c : undefined;
}
