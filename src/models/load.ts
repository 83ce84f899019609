/**
 * `loadClassifier(dir)`: any TF.js image model folder on disk — a layers model or a graph model,
 * with its glasswing.json (preprocessing, class names or a labels file) when there is one — as a
 * Classifier. Reads the files model.json names (plus glasswing.json and the labels file) and hands
 * them to classifierFromFiles, the same path the browser takes for a dropped folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Classifier } from '../core/classifier.js';
import { ModelLoadError } from '../core/errors.js';
import { classifierFromFiles, type LoadClassifierOptions, type ModelFiles } from './model-files.js';

export const GLASSWING_JSON = 'glasswing.json';

function read(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelLoadError(`expected ${what} ${file}; got ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder' : (e as Error).message}`);
  }
}

/**
 * Load the model in DIR (or DIR/model.json) with its preprocessing and class names. Options
 * override glasswing.json field by field (e.g. `{ range: [0, 255], labels: 'labels.txt' }`).
 *
 * @example
 * const c = await loadClassifier('models/my-mobilenet', { resize: 'center-crop' });
 * const { input, photo } = await loadPhoto('cat.jpg', c);
 */
export async function loadClassifier(dir: string, opts: LoadClassifierOptions = {}): Promise<Classifier> {
  const root = path.resolve(dir.endsWith('.json') ? path.dirname(dir) : dir);
  if (!fs.existsSync(root)) throw new ModelLoadError(`expected a model folder; got ${root}, which does not exist`);
  const files: ModelFiles = new Map();
  const mjBytes = read(path.join(root, 'model.json'), 'a TF.js model.json at');
  files.set('model.json', mjBytes);
  let manifest: Array<{ paths?: unknown }> = [];
  try {
    const j = JSON.parse(mjBytes.toString('utf8')) as { weightsManifest?: Array<{ paths?: unknown }> };
    manifest = Array.isArray(j.weightsManifest) ? j.weightsManifest : [];
  } catch {
    // classifierFromFiles reports the parse error with its position
  }
  for (const g of manifest) {
    for (const p of Array.isArray(g.paths) ? g.paths : []) {
      const file = path.join(root, String(p));
      if (fs.existsSync(file)) files.set(String(p), fs.readFileSync(file));
    }
  }
  const gj = path.join(root, GLASSWING_JSON);
  let labels = opts.labels;
  if (fs.existsSync(gj)) {
    const b = read(gj, 'a readable');
    files.set(GLASSWING_JSON, b);
    if (!labels) {
      try {
        labels = (JSON.parse(b.toString('utf8')) as { labels?: string }).labels;
      } catch {
        // reported by classifierFromFiles
      }
    }
  }
  if (labels) {
    const lf = path.resolve(root, labels);
    if (fs.existsSync(lf)) files.set(labels.replace(/^\.\//, ''), fs.readFileSync(lf));
  }
  return classifierFromFiles(files, opts, root);
}
