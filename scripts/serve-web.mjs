/**
 * The in-browser explorer: builds the browser bundle, then serves web/ with it, the shipped MNIST
 * models and 48 MNIST test digits on http://127.0.0.1:PORT (default 8080). Local only; nothing is
 * fetched from elsewhere. A user's own model and photos are read by the page from the user's disk
 * (file input / drag and drop); they never pass through this server.
 *
 *   npm run web [-- --port 8080] [-- --host 127.0.0.1]
 *
 * Security rules (docs/browser.md): the server hands out only the files the page needs — an
 * allow-list of served folders and file kinds, resolved after decoding each path segment once and
 * refusing anything that is not a plain name (encoded separators, backslashes, NUL, `.`/`..`,
 * dot-files, double encoding); every other path is a 404. It binds to 127.0.0.1 unless told
 * otherwise and answers only requests whose Host header names the address and port it is bound to
 * (DNS-rebinding pages get 421). Only GET and HEAD. Every answer carries COOP/COEP (the page is
 * cross-origin isolated, which threaded wasm needs) and nosniff.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildBrowser } from './build-browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODELS = ['mnist-cnn', 'mnist-mlp', 'mnist-cnn-nobias', 'mnist-cnn-biased'];
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json', '.bin': 'application/octet-stream' };

/** Headers on every answer: cross-origin isolation (SharedArrayBuffer for threaded wasm), no MIME sniffing. */
export const SECURITY_HEADERS = Object.freeze({
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
});

/** A file name the server may hand out: letters, digits, `-`, `_`, `.`, not starting with a dot. */
const PLAIN_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * The request path as a list of plain segments, or a status code: 400 for a path that is not a
 * clean absolute path (bad or double percent-encoding, encoded `/` or `\`, backslashes, NUL,
 * control characters, `.` / `..` segments, empty segments), 404 for dot-files.
 * Each segment is decoded exactly once; a `%` left after decoding is double encoding.
 * @param {string} raw the request target as sent (req.url)
 * @returns {string[] | 400 | 404}
 */
export function parseRequestPath(raw) {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.startsWith('//')) return 400;
  const q = raw.search(/[?#]/);
  const p = q >= 0 ? raw.slice(0, q) : raw;
  if (p === '/') return [];
  const parts = p.slice(1).split('/');
  const out = [];
  for (let i = 0; i < parts.length; i++) {
    const enc = parts[i];
    if (enc.includes('\\')) return 400;
    let seg;
    try {
      seg = decodeURIComponent(enc);
    } catch {
      return 400;
    }
    // eslint-disable-next-line no-control-regex
    if (seg === '' || seg === '.' || seg === '..' || /[/\\%\u0000-\u001f\u007f]/.test(seg)) return 400;
    if (!PLAIN_NAME.test(seg)) return 404;
    out.push(seg);
  }
  return out;
}

/** `file` if it is a regular file whose real path lies inside the real path of `dir`, else undefined. */
function inside(dir, name) {
  try {
    const realDir = fs.realpathSync(dir);
    const real = fs.realpathSync(path.join(realDir, name));
    if (path.dirname(real) !== realDir) return undefined; // a symlink leading out of the folder
    return fs.statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

/** The Host header values that name this server: `addr:port` (IPv6 in brackets), and localhost for a loopback bind. */
function allowedHosts(server) {
  const a = server.address();
  if (!a || typeof a === 'string') return new Set();
  const port = a.port;
  const fmt = (h) => (h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`);
  const hosts = new Set([fmt(a.address)]);
  const loopback = a.address === '127.0.0.1' || a.address === '::1' || a.address.startsWith('127.');
  const any = a.address === '0.0.0.0' || a.address === '::';
  if (loopback || any) for (const h of ['localhost', '127.0.0.1', '[::1]']) hosts.add(`${h}:${port}`);
  // Bound to every interface (only with an explicit --host): the machine's own addresses name it.
  if (any) for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) hosts.add(fmt(i.address));
  return hosts;
}

/**
 * The explorer's server (not yet listening; `listenWebServer` binds it to 127.0.0.1). Needs
 * `npm run build` (dist/) for the digits. `pages` adds HTML pages by path (the browser tests serve
 * their own pages beside the explorer).
 *
 * Served: `/` and the .html/.js/.css files of web/; the bundle's glasswing.js, the pool's worker bundle
 * glasswing-worker.js and the .wasm files;
 * `/models/NAME/FILE` for the shipped classifiers and generators (model.json, generator.json,
 * .bin weights); /digits.json and /models.json (made here). Nothing else.
 */
export async function createWebServer({ count = 48, pages = {} } = {}) {
  const bundle = await buildBrowser();
  const { loadMnist, initBackend } = await import(pathToFileURL(path.join(root, 'dist', 'src', 'index.js')).href);
  await initBackend();
  const test = await loadMnist({ split: 'test', limit: count });
  const digits = JSON.stringify({ count, size: 28, labels: Array.from(test.labels), pixels: Array.from(await test.images.data(), (v) => Math.round(v * 1000) / 1000) });
  test.dispose();
  const models = JSON.stringify(MODELS.filter((m) => fs.existsSync(path.join(root, 'models', m, 'model.json'))));
  // Model folders the page may fetch: the classifiers in its menu and the generators its methods name.
  const modelDirs = new Set(
    fs.readdirSync(path.join(root, 'models')).filter((m) => PLAIN_NAME.test(m) && ['model.json', 'generator.json'].some((f) => fs.existsSync(path.join(root, 'models', m, f)))),
  );
  const generated = new Map([['digits.json', digits], ['models.json', models]]);
  const web = path.join(root, 'web');

  /** The file or generated body for a parsed path, or undefined (404). */
  function resolve(segs) {
    if (segs.length === 0) return { file: inside(web, 'index.html') };
    if (segs.length === 1) {
      const [name] = segs;
      if (generated.has(name)) return { body: generated.get(name), type: TYPES['.json'] };
      const ext = path.extname(name);
      if (['.html', '.js', '.css'].includes(ext)) {
        const f = inside(web, name);
        if (f) return { file: f };
      }
      // the bundle, the pool's Web Worker bundle, and the wasm binaries (SIMD and threaded-SIMD)
      if (name === 'glasswing.js' || name === 'glasswing-worker.js' || ext === '.wasm') {
        const f = inside(bundle, name);
        if (f) return { file: f };
      }
      return undefined;
    }
    if (segs.length === 3 && segs[0] === 'models' && modelDirs.has(segs[1])) {
      const name = segs[2];
      if (name === 'model.json' || name === 'generator.json' || path.extname(name) === '.bin') {
        const f = inside(path.join(root, 'models', segs[1]), name);
        if (f) return { file: f };
      }
    }
    return undefined;
  }

  const server = http.createServer((req, res) => {
    const fail = (code, extra = {}) => res.writeHead(code, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', ...extra }).end(`${code} ${http.STATUS_CODES[code]}\n`);
    const host = req.headers.host;
    if (!host) return fail(400);
    if (!allowedHosts(server).has(host.toLowerCase())) return fail(421);
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, { allow: 'GET, HEAD' });
    const segs = parseRequestPath(req.url ?? '');
    if (typeof segs === 'number') return fail(segs);
    const key = '/' + segs.join('/');
    const found = pages[key] !== undefined ? { body: pages[key], type: TYPES['.html'] } : resolve(segs);
    if (!found || (!found.file && found.body === undefined)) return fail(404);
    const body = found.file ? fs.readFileSync(found.file) : found.body;
    const type = found.type ?? TYPES[path.extname(found.file)] ?? 'application/octet-stream';
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-cache', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return server;
}

/** Listen on `host` (default 127.0.0.1, the loopback interface only) and `port` (0 = any free port); resolves with the base URL. */
export function listenWebServer(server, { port = 8080, host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      const h = a.address.includes(':') ? `[${a.address}]` : a.address;
      resolve(`http://${h}:${a.port}/`);
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const port = Number(arg('--port') ?? 8080);
  const host = arg('--host') ?? '127.0.0.1';
  const server = await createWebServer();
  console.log(`Glasswing explorer: ${await listenWebServer(server, { port, host })}`);
}
