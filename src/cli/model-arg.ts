/**
 * Resolve a --model argument: a shipped default model name, or a folder holding model.json (a
 * layers model or a graph model, with its glasswing.json when there is one).
 */
import type { Classifier } from '../core/classifier.js';
import { DEFAULT_MODELS, loadDefaultClassifier } from '../models/index.js';
import { loadClassifier } from '../models/load.js';

export const DEFAULT_MODEL = 'mnist-cnn';

export async function resolveClassifier(spec: string | undefined): Promise<Classifier> {
  const name = spec ?? DEFAULT_MODEL;
  if (DEFAULT_MODELS.some((m) => m.name === name)) return loadDefaultClassifier(name);
  return loadClassifier(name);
}
