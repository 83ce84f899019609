/**
 * A private redis-server for tests: Debian's binary (scripts/ensure-redis.sh installs it when missing)
 * on a free port, data in a temp folder, append-only persistence with fsync on every write, so a
 * test can kill it and start it again on the same data.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { ensureCommand } from './run-node.js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export async function ensureRedis(): Promise<void> {
  await ensureCommand('redis-server', resolve(__dirname, '../../scripts/ensure-redis.sh'));
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

export class TestRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'glasswing-redis-'));
  proc?: ChildProcess;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<TestRedis> {
    const r = new TestRedis(await freePort());
    await r.up();
    return r;
  }

  /** Starts redis-server on this port and folder (again, after stop()) and waits until it answers. */
  async up(): Promise<void> {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const r = spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' });
      if (r.stdout?.trim() === 'PONG') return;
      await new Promise((ok) => setTimeout(ok, 50));
    }
    throw new Error(`redis-server did not answer on port ${this.port}`);
  }

  /** Deletes the data folder's content (call between stop() and up(): a server that lost its data). */
  wipe(): void {
    for (const f of readdirSync(this.dir)) rmSync(join(this.dir, f), { recursive: true, force: true });
  }

  /** Stops the server this object started (SIGKILL: nothing but the append-only file survives). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((ok) => p.once('exit', ok));
    p.kill(signal);
    await exited;
    this.proc = undefined;
  }
}
