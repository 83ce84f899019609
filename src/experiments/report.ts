/** How experiments write their results: output folder, markdown table, report files, number formats. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TaskOptions } from '../tasks/registry.js';

export function outDir(options: TaskOptions, name: string): string {
  const dir = typeof options.outDir === 'string' && options.outDir ? options.outDir : path.join('out', 'experiments', name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Markdown image links to figures written beside the report (one per line, or `separator`). */
export function figureLinks(files: string[], separator = '\n'): string {
  return files.map((f) => `![${path.basename(f)}](${path.basename(f)})`).join(separator);
}

/** Write the markdown and the json next to the figures; return their paths. */
export function writeReport(dir: string, name: string, markdown: string, json: Record<string, unknown>): string[] {
  const md = path.join(dir, `${name}.md`);
  const js = path.join(dir, `${name}.json`);
  fs.writeFileSync(md, markdown);
  fs.writeFileSync(js, JSON.stringify(json, null, 2));
  return [md, js];
}

export function markdownTable(rows: Array<Record<string, string | number>>): string {
  if (rows.length === 0) return '';
  const keys = Object.keys(rows[0]);
  const cell = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v);
  return [`| ${keys.join(' | ')} |`, `| ${keys.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${keys.map((k) => cell(r[k])).join(' | ')} |`)].join('\n');
}

export const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

export const mean = (a: number[]) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : NaN);
