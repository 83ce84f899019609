/**
 * The model of a job, as every worker loads it: a shipped model name, a model folder (the same path
 * on every machine), or an http(s) URL of a model folder or its model.json — so workers on machines
 * that do not share the model's disk can still load it (fetched once per process: model.json, its
 * weight files, glasswing.json and its labels file when there are any).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Classifier } from '../core/classifier.js';
import { ModelLoadError, OptionError } from '../core/errors.js';
import { DEFAULT_MODELS } from '../models/index.js';
import { classifierFromFiles, type ModelFiles } from '../models/model-files.js';
import { resolveClassifier } from '../cli/model-arg.js';

export const isModelUrl = (spec: string): boolean => /^https?:\/\//i.test(spec);

/** The model string a job stores: a shipped name or a URL as given, a folder as an absolute path. */
export function jobModelSpec(model: string): string {
  if (DEFAULT_MODELS.some((m) => m.name === model) || isModelUrl(model)) return model;
  const abs = resolve(model);
  if (!existsSync(abs)) throw new OptionError(`expected --model to be a shipped model (${DEFAULT_MODELS.map((m) => m.name).join(', ')}), a model folder or an http(s) URL; got "${model}"`);
  return abs;
}

async function fetchBytes(url: string, optional: boolean): Promise<Uint8Array | undefined> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new ModelLoadError(`cannot fetch ${url}: ${(e as Error).message}`);
  }
  if (res.status === 404 && optional) return undefined;
  if (!res.ok) throw new ModelLoadError(`cannot fetch ${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Fetches a model folder over http(s) and builds its Classifier (what loadClassifier does on disk). */
export async function fetchClassifier(url: string): Promise<Classifier> {
  const base = url.endsWith('.json') ? url.slice(0, url.lastIndexOf('/') + 1) : url.endsWith('/') ? url : `${url}/`;
  const files: ModelFiles = new Map();
  const mj = (await fetchBytes(url.endsWith('.json') ? url : `${base}model.json`, false))!;
  files.set('model.json', mj);
  let manifest: Array<{ paths?: unknown }> = [];
  try {
    const j = JSON.parse(Buffer.from(mj).toString('utf8')) as { weightsManifest?: Array<{ paths?: unknown }> };
    manifest = Array.isArray(j.weightsManifest) ? j.weightsManifest : [];
  } catch {
    // classifierFromFiles reports the parse error
  }
  for (const g of manifest) for (const p of Array.isArray(g.paths) ? g.paths : []) files.set(String(p), (await fetchBytes(new URL(String(p), base).href, false))!);
  const gj = await fetchBytes(new URL('glasswing.json', base).href, true);
  if (gj) {
    files.set('glasswing.json', gj);
    let labels: string | undefined;
    try {
      labels = (JSON.parse(Buffer.from(gj).toString('utf8')) as { labels?: string }).labels;
    } catch {
      // reported by classifierFromFiles
    }
    if (labels) {
      const lf = await fetchBytes(new URL(labels, base).href, true);
      if (lf) files.set(labels.replace(/^\.\//, ''), lf);
    }
  }
  return classifierFromFiles(files, {}, url);
}

/** Loads a job's model (see the file comment). */
export function loadJobModel(spec: string): Promise<Classifier> {
  return isModelUrl(spec) ? fetchClassifier(spec) : resolveClassifier(spec);
}
