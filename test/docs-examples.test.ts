/**
 * Every ```ts block of README.md and docs/*.md runs as written, against the built package (dist/),
 * in a fresh Node process whose working directory is a temporary folder (files the examples write
 * land there). A block fenced ```ts continued is appended to the block before it; ```ts interface
 * blocks are type listings and are not run. `from 'glasswing'` resolves to dist/src/index.js, and
 * every program is first type-checked (strict) against the package's declarations.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import ts from 'typescript';
import { runNode } from './support/run-node.js';

const root = path.resolve(__dirname, '..');
const entry = path.join(root, 'dist', 'src', 'index.js');
const scratch = path.join(root, 'node_modules', '.cache', 'glasswing', 'doc-examples');

interface Program {
  name: string;
  code: string;
}

/** The runnable programs of one markdown file. */
function programsOf(file: string): Program[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: Program[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^```ts(?:\s+(\w+))?\s*$/.exec(lines[i]);
    if (!m) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && !lines[j].startsWith('```')) j++;
    const body = lines.slice(start, j).join('\n');
    const tag = m[1];
    if (tag === 'continued') {
      if (!out.length) throw new Error(`${file}:${i + 1}: a continued block with nothing before it`);
      out[out.length - 1].code += `\n${body}`;
    } else if (tag === undefined) {
      out.push({ name: `${path.relative(root, file)}:${i + 1}`, code: body });
    } else if (tag !== 'interface') {
      throw new Error(`${file}:${i + 1}: unknown block tag "${tag}" (expected continued or interface)`);
    }
    i = j;
  }
  return out;
}

const files = [path.join(root, 'README.md'), ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join(root, 'docs', f))];
const programs = files.flatMap(programsOf);

describe('documentation examples', () => {
  it('finds the examples', () => {
    expect(programs.length).toBeGreaterThanOrEqual(14);
  });

  it('type-check against the published declarations (strict)', async () => {
    const dir = path.join(scratch, 'typecheck');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const names = programs.map((p) => {
      const file = path.join(dir, `${p.name.replace(/[^\w]+/g, '-')}.mts`);
      fs.writeFileSync(file, `${p.code}\nexport {};\n`);
      return file;
    });
    // The checker runs in a child process: a minute of synchronous type-checking in this worker would
    // starve vitest's worker RPC (see support/run-node.ts).
    const checker = path.join(dir, 'check.cjs');
    fs.writeFileSync(checker, `
const ts = require(${JSON.stringify(createRequire(import.meta.url).resolve('typescript'))});
const path = require('node:path');
const names = ${JSON.stringify(names)};
const program = ts.createProgram(names, {
  target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [${JSON.stringify(path.join(root, 'node_modules', '@types'))}],
  baseUrl: ${JSON.stringify(dir)}, paths: { glasswing: [${JSON.stringify(path.join(root, 'dist', 'src', 'index.d.ts'))}] },
});
const errors = ts.getPreEmitDiagnostics(program).map((d) => {
  const where = d.file ? path.basename(d.file.fileName) + ':' + (d.file.getLineAndCharacterOfPosition(d.start || 0).line + 1) : '';
  return where + ' ' + ts.flattenDiagnosticMessageText(d.messageText, '\\n');
});
process.stdout.write(JSON.stringify(errors));
`);
    const r = await runNode([checker], { cwd: dir, timeout: 240_000 });
    if (r.status !== 0) throw new Error(`type checker exited with ${r.status ?? r.signal}:\n${r.stderr.slice(-3000)}`);
    expect(JSON.parse(r.stdout)).toEqual([]);
  }, 300_000);

  for (const p of programs) {
    it(`${p.name} runs`, async () => {
      // Imports may repeat across continued blocks only if they do not rebind a name; TS reports that.
      const js = ts.transpileModule(p.code, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText
        .replace(/from 'glasswing'/g, `from '${entry}'`);
      fs.mkdirSync(scratch, { recursive: true });
      const file = path.join(scratch, `${p.name.replace(/[^\w]+/g, '-')}.mjs`);
      fs.writeFileSync(file, js);
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-doc-'));
      const r = await runNode([file], { cwd, timeout: 240_000 });
      if (r.status !== 0) throw new Error(`${p.name} exited with ${r.status ?? r.signal}:\n${r.stderr.slice(-3000)}`);
      fs.rmSync(cwd, { recursive: true, force: true });
    }, 300_000);
  }
});
