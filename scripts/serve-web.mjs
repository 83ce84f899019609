/**
 * The in-browser explorer: builds the browser bundle, then serves web/ with it, the shipped MNIST
 * models and 48 MNIST test digits on http://127.0.0.1:PORT (default 8080). Local only; nothing is
 * fetched from elsewhere.
 *
 *   npm run web [-- --port 8080]
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildBrowser } from './build-browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODELS = ['mnist-cnn', 'mnist-mlp', 'mnist-cnn-nobias', 'mnist-cnn-biased'];
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.bin': 'application/octet-stream' };

/**
 * The explorer's server (not yet listening). Needs `npm run build` (dist/) for the digits. `pages`
 * adds HTML pages by path (the browser tests serve their own pages beside the explorer).
 */
export async function createWebServer({ count = 48, pages = {} } = {}) {
  const bundle = await buildBrowser();
  const { loadMnist, initBackend } = await import(pathToFileURL(path.join(root, 'dist', 'src', 'index.js')).href);
  await initBackend();
  const test = await loadMnist({ split: 'test', limit: count });
  const digits = JSON.stringify({ count, size: 28, labels: Array.from(test.labels), pixels: Array.from(await test.images.data(), (v) => Math.round(v * 1000) / 1000) });
  test.dispose();
  const models = JSON.stringify(MODELS.filter((m) => fs.existsSync(path.join(root, 'models', m, 'model.json'))));
  return http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]);
    const send = (body, type) => res.writeHead(200, { 'content-type': type }).end(body);
    if (url === '/' || url === '/index.html') return send(fs.readFileSync(path.join(root, 'web', 'index.html')), TYPES['.html']);
    if (pages[url]) return send(pages[url], TYPES['.html']);
    if (url === '/digits.json') return send(digits, TYPES['.json']);
    if (url === '/models.json') return send(models, TYPES['.json']);
    const file = url.startsWith('/models/') ? path.join(root, url) : url === '/explorer.js' ? path.join(root, 'web', 'explorer.js') : path.join(bundle, url);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) return res.writeHead(404).end();
    send(fs.readFileSync(file), TYPES[path.extname(file)] ?? 'application/octet-stream');
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--port');
  const port = i >= 0 ? Number(process.argv[i + 1]) : 8080;
  const server = await createWebServer();
  server.listen(port, '127.0.0.1', () => console.log(`Glasswing explorer: http://127.0.0.1:${port}/`));
}
