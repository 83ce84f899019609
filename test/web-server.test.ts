/**
 * The explorer's server (scripts/serve-web.mjs) hands out only the files the page needs. Requests
 * are written raw on a socket, so no client normalises `..` or percent-encoding before the server
 * sees them.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type * as http from 'node:http';

const root = path.resolve(__dirname, '..');
const PACKAGE_NAME = '"name": "glasswing"';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

let server: http.Server;
let port = 0;

/** One raw HTTP request: the request line and headers exactly as given. */
function raw(target: string, { method = 'GET', host = `127.0.0.1:${port}`, version = '1.1' }: { method?: string; host?: string | null; version?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split).toString('latin1').split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers, body: all.subarray(split + 4) });
    });
    const lines = [`${method} ${target} HTTP/${version}`];
    if (host !== null) lines.push(`Host: ${host}`);
    lines.push('Connection: close', '', '');
    sock.write(lines.join('\r\n'), 'latin1');
  });
}

beforeAll(async () => {
  const { createWebServer, listenWebServer } = await import('../scripts/serve-web.mjs');
  server = await createWebServer({ count: 2 });
  await listenWebServer(server, { port: 0 });
  port = (server.address() as net.AddressInfo).port;
}, 120_000);

afterAll(() => {
  server?.close();
});

describe('the explorer server', () => {
  it('binds to the loopback interface by default', () => {
    expect((server.address() as net.AddressInfo).address).toBe('127.0.0.1');
  });

  it('serves the page, its script, the bundle, the wasm binaries, the shipped models and the digits, cross-origin isolated', async () => {
    const wants: Array<[string, string]> = [
      ['/', 'text/html'],
      ['/index.html', 'text/html'],
      ['/explorer.js', 'text/javascript'],
      ['/glasswing.js', 'text/javascript'],
      ['/tfjs-backend-wasm-simd.wasm', 'application/wasm'],
      ['/models/mnist-cnn/model.json', 'application/json'],
      ['/models/mnist-cnn/weights.bin', 'application/octet-stream'],
      ['/models/mnist-vae-10d/generator.json', 'application/json'],
      ['/digits.json', 'application/json'],
      ['/models.json?x=1', 'application/json'],
    ];
    for (const [target, type] of wants) {
      const a = await raw(target);
      expect(a.status, target).toBe(200);
      expect(a.headers['content-type'], target).toContain(type);
      expect(a.headers['cross-origin-opener-policy'], target).toBe('same-origin');
      expect(a.headers['cross-origin-embedder-policy'], target).toBe('require-corp');
      expect(a.headers['x-content-type-options'], target).toBe('nosniff');
      expect(a.body.length, target).toBeGreaterThan(0);
    }
    const page = await raw('/');
    expect(page.body.toString()).toBe(fs.readFileSync(path.join(root, 'web', 'index.html'), 'utf8'));
    const head = await raw('/explorer.js', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
  });

  it('refuses traversal in every spelling (plain, encoded, double-encoded, backslashes, NUL) with 400', async () => {
    const attacks = [
      '/models/../package.json',
      '/models/../.git/config',
      '/..%2f..%2fsrc%2findex.ts',
      '/%2e%2e/package.json',
      '/models/%2e%2e/package.json',
      '/models/mnist-cnn/../../package.json',
      '/models/mnist-cnn/..%2f..%2fpackage.json',
      '/%252e%252e/package.json',
      '/%252e%252e%252fpackage.json',
      '/models%2f..%2fpackage.json',
      '/..%5cpackage.json',
      '/models\\..\\package.json',
      '/models/mnist-cnn/model.json%00.js',
      '/explorer.js%00',
      '/./index.html',
      '//etc/passwd',
      '/models//mnist-cnn/model.json',
      '/%E0%A4%A',
      'http://127.0.0.1/package.json',
      '*',
    ];
    for (const target of attacks) {
      const a = await raw(target);
      expect(a.status, target).toBe(400);
      expect(a.body.toString(), target).not.toContain(PACKAGE_NAME);
      expect(a.headers['cross-origin-opener-policy'], target).toBe('same-origin');
    }
  });

  it('answers 404 for every file outside the allow-list', async () => {
    const outside = [
      '/package.json',
      '/.git/config',
      '/.env',
      '/src/index.ts',
      '/scripts/serve-web.mjs',
      '/serve-web.mjs',
      '/dist/src/index.js',
      '/node_modules/@tensorflow/tfjs-core/package.json',
      '/web/index.html',
      '/models/mnist-dcgan/samples.png',
      '/models/mnist-cnn',
      '/models/mnist-cnn/',
      '/models/not-a-model/model.json',
      '/models/mnist-cnn/model.json/x',
      '/models',
      '/README.md',
      '/tsconfig.json',
    ];
    for (const target of outside) {
      const a = await raw(target);
      expect(a.status, target).toBe(target.endsWith('/') ? 400 : 404);
      expect(a.body.toString(), target).not.toContain(PACKAGE_NAME);
    }
  });

  it('does not follow a symlink out of a served folder', async () => {
    const link = path.join(root, 'web', `zz-link-${process.pid}.js`);
    fs.symlinkSync(path.join('..', 'package.json'), link);
    try {
      expect(fs.readFileSync(link, 'utf8')).toContain(PACKAGE_NAME); // the link works on disk
      const a = await raw(`/${path.basename(link)}`);
      expect(a.status).toBe(404);
      expect(a.body.toString()).not.toContain(PACKAGE_NAME);
    } finally {
      fs.unlinkSync(link);
    }
  });

  it('answers only requests whose Host names the bound address and port', async () => {
    expect((await raw('/', { host: 'evil.example' })).status).toBe(421);
    expect((await raw('/', { host: `evil.example:${port}` })).status).toBe(421);
    expect((await raw('/', { host: `127.0.0.1:${port + 1}` })).status).toBe(421);
    expect((await raw('/', { host: '127.0.0.1' })).status).toBe(421);
    expect((await raw('/', { host: null, version: '1.0' })).status).toBe(400);
    expect((await raw('/', { host: `localhost:${port}` })).status).toBe(200);
    expect((await raw('/', { host: `LOCALHOST:${port}` })).status).toBe(200);
    const rebound = await raw('/models/mnist-cnn/model.json', { host: `attacker.example:${port}` });
    expect(rebound.status).toBe(421);
    expect(rebound.body.toString()).not.toContain('modelTopology');
  });

  it('answers only GET and HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const a = await raw('/', { method });
      expect(a.status, method).toBe(405);
      expect(a.headers.allow).toBe('GET, HEAD');
    }
  });
});
