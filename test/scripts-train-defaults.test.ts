/**
 * `npm run train:defaults` runs two scripts that take ~70 minutes for real; their --quick mode trains
 * every recipe briefly into a temporary folder, so a recipe that no longer builds, trains or saves
 * fails here rather than at the next release.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runNode } from './support/run-node.js';
import { loadGenerator } from '../src/generative/io.js';
import { initBackend } from '../src/engine/backend.js';

const root = path.resolve(__dirname, '..');

async function runScript(name: string, out: string): Promise<void> {
  const r = await runNode([path.join(root, 'dist', 'scripts', `${name}.js`), '--quick', '--out', out], { timeout: 240_000 });
  if (r.status !== 0) throw new Error(`${name} --quick exited with ${r.status ?? r.signal}:\n${r.stderr.slice(-3000)}`);
}

describe('training scripts (quick)', () => {
  it('train-generative trains, saves and reloads every shipped generator recipe', async () => {
    await initBackend();
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-gen-'));
    await runScript('train-generative', out);
    const shipped = [
      'mnist-vae-2d', 'mnist-vae-10d', 'mnist-vae-10d-biased', 'mnist-vae-conv-10d', 'mnist-vae-conv-10d-biased', 'mnist-dcgan', 'mnist-dcgan-biased', 'mnist-gan',
    ];
    expect(fs.readdirSync(out).sort()).toEqual([...shipped].sort());
    for (const name of shipped) {
      const g = await loadGenerator(path.join(out, name));
      expect(Number(g.info.testReconstructionMse)).toBeGreaterThan(0);
      // The *-biased generators see the biased classifier's training images (the square on every 8).
      expect(String(g.info.dataset).startsWith('biased mnist')).toBe(name.endsWith('-biased'));
      expect(fs.statSync(path.join(out, name, 'samples.png')).size).toBeGreaterThan(100);
      g.dispose();
    }
    fs.rmSync(out, { recursive: true, force: true });
  }, 300_000);

  it('train-defaults trains and saves every shipped classifier recipe', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-cls-'));
    await runScript('train-defaults', out);
    for (const name of ['mnist-cnn', 'mnist-mlp', 'mnist-cnn-nobias', 'fashion-cnn', 'mnist-cnn-biased']) {
      expect(fs.existsSync(path.join(out, name, 'model.json'))).toBe(true);
    }
    fs.rmSync(out, { recursive: true, force: true });
  }, 300_000);
});
