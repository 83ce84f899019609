/**
 * A program that used the pool exits after its last line: pool workers must not keep Node alive,
 * whether they computed chunks or were still starting when the call ended (the caller then did all
 * the work — the case that once hung every docs example calling explain('geosal')).
 */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runNode } from './support/run-node.js';

const entry = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));

async function runProgram(method: string, limit: number) {
  const program = `
import { initBackend, explain, loadDefaultClassifier, loadMnist, getPool } from ${JSON.stringify(entry)};
await initBackend();
const m = await loadDefaultClassifier('mnist-cnn');
const test = await loadMnist({ split: 'test', limit: ${limit} });
const e = await explain(${JSON.stringify(method)}, m, test.images, { workers: 2 });
e.dispose();
test.dispose();
console.log('done', JSON.stringify(getPool().lastRun ?? null));
`;
  // A file, not `node -e`: an -e program exits where a module file stays alive (measured).
  const file = join(mkdtempSync(join(tmpdir(), 'glasswing-pool-exit-')), 'program.mjs');
  writeFileSync(file, program);
  return runNode([file], { timeout: 60_000 });
}

describe('worker pool: the process exits', () => {
  it('when the worker was still starting at the end of the call (the caller computed every chunk)', async () => {
    const r = await runProgram('gradient', 32);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.stdout).toMatch(/^done /m);
    expect(r.signal).toBeNull(); // killed by the timeout = the pool kept the process alive
    expect(r.status).toBe(0);
  }, 120_000);

  it('when a worker computed chunks', async () => {
    const r = await runProgram('integrated-gradients', 1);
    expect(r.stdout).toMatch(/^done /m);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  }, 120_000);
});
