/**
 * A model folder the user picked (`<input type="file" webkitdirectory>`) or dropped (a folder
 * dragged onto the page) → the file map classifierFromFiles takes → a Classifier with its
 * glasswing.json preprocessing and class names. Browser-only plumbing (File, DataTransfer,
 * FileSystemEntry); the folder never leaves the page.
 *
 * Only the files the model needs are read: model.json, the weight shards its manifest lists,
 * glasswing.json and the labels file it names — a folder that also holds photos or checkpoints is
 * not read whole.
 */
import type { Classifier } from '../core/classifier.js';
import { ModelLoadError } from '../core/errors.js';
import { classifierFromFiles, type LoadClassifierOptions, type ModelFiles } from './model-files.js';

/** A file of the folder: its path relative to the picked/dropped root and a way to read its bytes. */
export interface FolderEntry {
  path: string;
  read(): Promise<ArrayBuffer>;
}

/** The entries of a FileList from an `<input type="file" webkitdirectory>` (or of files picked one by one). */
export function entriesFromFileList(files: Iterable<File> | ArrayLike<File>): FolderEntry[] {
  return Array.from(files as ArrayLike<File>, (f) => ({
    path: (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name,
    read: () => f.arrayBuffer(),
  }));
}

interface FsEntry {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
  fullPath: string;
  file?(ok: (f: File) => void, fail: (e: unknown) => void): void;
  createReader?(): { readEntries(ok: (e: FsEntry[]) => void, fail: (e: unknown) => void): void };
}

async function walk(entry: FsEntry, prefix: string, out: FolderEntry[]): Promise<void> {
  if (entry.isFile && entry.file) {
    const file = entry.file.bind(entry);
    out.push({ path: prefix + entry.name, read: () => new Promise<File>((ok, fail) => file(ok, fail)).then((f) => f.arrayBuffer()) });
  } else if (entry.isDirectory && entry.createReader) {
    const reader = entry.createReader();
    // readEntries hands out a directory in batches (100 in Chromium) until it returns none.
    for (;;) {
      const batch = await new Promise<FsEntry[]>((ok, fail) => reader.readEntries(ok, fail));
      if (batch.length === 0) break;
      for (const e of batch) await walk(e, `${prefix}${entry.name}/`, out);
    }
  }
}

/**
 * The files of whatever was dropped: folders walked recursively (paths keep the folder's name, as
 * webkitRelativePath does), loose files at the top. Call it in the drop handler itself — the
 * browser empties `dataTransfer` once the handler returns — and await the result later.
 */
export function entriesFromDataTransfer(dt: DataTransfer): Promise<FolderEntry[]> {
  const roots: FsEntry[] = [];
  const loose: File[] = [];
  for (const item of Array.from(dt.items ?? [])) {
    if (item.kind !== 'file') continue;
    const e = (item as DataTransferItem & { webkitGetAsEntry?: () => FsEntry | null }).webkitGetAsEntry?.();
    if (e) roots.push(e);
    else {
      const f = item.getAsFile();
      if (f) loose.push(f);
    }
  }
  if (roots.length === 0 && loose.length === 0) loose.push(...Array.from(dt.files ?? []));
  return (async () => {
    const out: FolderEntry[] = entriesFromFileList(loose);
    for (const r of roots) await walk(r, '', out);
    return out;
  })();
}

/** Whether the entries hold a model (a model.json somewhere). */
export function holdsModel(entries: FolderEntry[]): boolean {
  return entries.some((e) => e.path === 'model.json' || e.path.endsWith('/model.json'));
}

/**
 * Read the files the model in `entries` needs (the shallowest model.json, the shards it lists,
 * glasswing.json beside it and its labels file) into the map classifierFromFiles takes, with
 * paths relative to the model's folder.
 */
export async function readModelFiles(entries: FolderEntry[], opts: { labels?: string } = {}): Promise<ModelFiles> {
  const norm = entries.map((e) => ({ ...e, path: e.path.replace(/\\/g, '/').replace(/^\.?\//, '') }));
  const mj = norm.filter((e) => e.path === 'model.json' || e.path.endsWith('/model.json')).sort((a, b) => a.path.length - b.path.length)[0];
  if (!mj) throw new ModelLoadError(`expected a model.json in the folder; got files [${norm.slice(0, 10).map((e) => e.path).join(', ')}${norm.length > 10 ? ', …' : ''}]`);
  const prefix = mj.path.slice(0, mj.path.length - 'model.json'.length);
  const byPath = new Map(norm.filter((e) => e.path.startsWith(prefix)).map((e) => [e.path.slice(prefix.length), e]));
  const files: ModelFiles = new Map();
  const mjBytes = new Uint8Array(await mj.read());
  files.set('model.json', mjBytes);
  const wanted = new Set<string>(['glasswing.json']);
  try {
    const j = JSON.parse(new TextDecoder().decode(mjBytes)) as { weightsManifest?: Array<{ paths?: unknown }> };
    for (const g of Array.isArray(j.weightsManifest) ? j.weightsManifest : []) {
      for (const p of Array.isArray(g.paths) ? g.paths : []) wanted.add(String(p).replace(/^\.\//, ''));
    }
  } catch {
    // classifierFromFiles reports the parse error with its position
  }
  let labels = opts.labels;
  const gj = byPath.get('glasswing.json');
  if (gj) {
    const b = new Uint8Array(await gj.read());
    files.set('glasswing.json', b);
    try {
      labels ??= (JSON.parse(new TextDecoder().decode(b)) as { labels?: string }).labels;
    } catch {
      // reported by classifierFromFiles
    }
  }
  if (labels) wanted.add(labels.replace(/^\.\//, ''));
  for (const p of wanted) {
    const e = byPath.get(p);
    if (e && !files.has(p)) files.set(p, new Uint8Array(await e.read()));
  }
  return files;
}

/**
 * A Classifier from a picked or dropped model folder (layers or graph model; glasswing.json and a
 * labels file when present). Options override glasswing.json as in loadClassifier.
 *
 * @example
 * input.onchange = async () => {
 *   const c = await classifierFromEntries(entriesFromFileList(input.files));
 *   console.log(c.name, c.inputShape, c.classNames.slice(0, 5));
 * };
 */
export async function classifierFromEntries(entries: FolderEntry[], opts: LoadClassifierOptions = {}): Promise<Classifier> {
  const files = await readModelFiles(entries, { labels: opts.labels });
  const top = entries.find((e) => e.path.includes('/'))?.path.split('/')[0];
  return classifierFromFiles(files, opts, top ?? 'model folder');
}
