/** Resolve a --model argument: a shipped default model name, or a folder holding model.json. */
import { Classifier } from '../core/classifier.js';
import { DEFAULT_MODELS, loadDefaultClassifier, loadModel } from '../models/index.js';

export const DEFAULT_MODEL = 'mnist-cnn';

export async function resolveClassifier(spec: string | undefined): Promise<Classifier> {
  const name = spec ?? DEFAULT_MODEL;
  if (DEFAULT_MODELS.some((m) => m.name === name)) return loadDefaultClassifier(name);
  const model = await loadModel(name);
  return Classifier.fromModel(model, { name: name.replace(/\/+$/, '').split('/').pop() });
}
