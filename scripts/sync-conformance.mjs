#!/usr/bin/env node
/**
 * Keep the vendored conformance fixtures (test/fixtures/conformance/) in step with the shared ones
 * (../shared/conformance/, or the folder given as the first argument / $GLASSWING_SHARED_CONFORMANCE).
 *
 *   npm run sync:conformance            copy every changed or new file, delete files gone upstream, report
 *   npm run sync:conformance -- --check report the differences only; exit 1 when there are any
 *
 * Why vendored: `npm test` must pass in a clone that has no ../shared beside it, and the tests must
 * read exactly the bytes the reference generator wrote. Every fixture folder (a folder holding an
 * attributions/ bundle) and FORMAT.md are copied; files are compared byte for byte.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const check = args.includes('--check');
const positional = args.filter((a) => !a.startsWith('--'));
const source = path.resolve(positional[0] ?? process.env.GLASSWING_SHARED_CONFORMANCE ?? path.join(repo, '..', 'shared', 'conformance'));
const target = path.resolve(positional[1] ?? path.join(repo, 'test', 'fixtures', 'conformance'));

if (!fs.existsSync(source) || !fs.statSync(source).isDirectory()) {
  console.error(`sync-conformance: expected the shared fixtures folder ${source}; got no such folder (pass it as the first argument)`);
  process.exit(2);
}

/** Relative paths of every file under dir (sorted). */
function files(dir, rel = '') {
  if (!fs.existsSync(dir)) return [];
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...files(path.join(dir, e.name), r));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

const isFixture = (d) => fs.existsSync(path.join(d, 'attributions', 'manifest.json'));
const fixtures = fs.readdirSync(source).filter((d) => fs.statSync(path.join(source, d)).isDirectory() && isFixture(path.join(source, d))).sort();
const wanted = new Set(['FORMAT.md', ...fixtures.flatMap((f) => files(path.join(source, f)).map((r) => `${f}/${r}`))].filter((r) => fs.existsSync(path.join(source, r))));
const present = new Set(files(target));

const added = [];
const changed = [];
const removed = [];
for (const r of wanted) {
  const src = path.join(source, r);
  const dst = path.join(target, r);
  if (!present.has(r)) added.push(r);
  else if (!fs.readFileSync(src).equals(fs.readFileSync(dst))) changed.push(r);
}
for (const r of present) if (!wanted.has(r)) removed.push(r);

for (const [label, list] of [['new', added], ['changed', changed], ['gone upstream', removed]]) {
  for (const r of list) console.log(`${label.padEnd(13)} ${r}`);
}
const total = added.length + changed.length + removed.length;
if (check) {
  console.log(total === 0 ? `vendored fixtures in ${path.relative(repo, target)} are identical to ${source} (${wanted.size} files)` : `${total} difference(s) between ${source} and ${path.relative(repo, target)}`);
  process.exit(total === 0 ? 0 : 1);
}
for (const r of [...added, ...changed]) {
  const dst = path.join(target, r);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(path.join(source, r), dst);
  fs.chmodSync(dst, 0o644); // the shared copies are read-only
}
for (const r of removed) fs.rmSync(path.join(target, r));
console.log(total === 0
  ? `vendored fixtures already identical to ${source} (${fixtures.length} fixtures, ${wanted.size} files)`
  : `synced ${fixtures.length} fixtures from ${source}: ${added.length} new, ${changed.length} changed, ${removed.length} removed`);
