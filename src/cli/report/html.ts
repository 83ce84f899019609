/** The demo's HTML report: one row per method, one column per digit, with times and key figures. */
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export interface ReportMethodRow {
  method: string;
  family: string;
  description: string;
  signed: boolean;
  model: string;
  msPerImage: number;
  maps: string[];
  targets?: number[];
  /** How the explained class was chosen, when not the prediction. */
  targetSpec?: string;
  extras: Record<string, unknown>[];
  error?: string;
}

export interface ReportInput {
  outDir: string;
  backend: string;
  digits: Array<{ index: number; label: number; input: string; /** Column heading (default "digit LABEL"). */ heading?: string; /** Under the input (default "test #INDEX"). */ note?: string }>;
  methods: ReportMethodRow[];
  accuracy: Array<{ model: string; accuracy: number }>;
  /** Page title and heading (default "Glasswing demo"); `glasswing run` reuses this page for its summary. */
  title?: string;
  /** HTML paragraph(s) replacing the demo's introduction and overview image. */
  intro?: string;
  /** Heading of the accuracy column (default "MNIST test accuracy"). */
  accuracyLabel?: string;
  /** Companion pages linked under the introduction (e.g. the demo's metric report). */
  links?: Array<{ href: string; text: string }>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function extrasText(e: Record<string, unknown>): string {
  return Object.entries(e)
    .slice(0, 3)
    .map(([k, v]) => `${k}: ${typeof v === 'number' ? Number(v.toPrecision(3)) : String(v)}`)
    .join('<br>');
}

const DEMO_INTRO = (backend: string) => `<p>Real MNIST test digits explained with every registered method on the shipped default models
(backend <b>${esc(backend)}</b>, ${new Date().toISOString().slice(0, 19)}Z). Each map is drawn over the input in grey:
signed maps use the diverging blue–white–red scale centred on 0 (red: evidence for the explained class, blue: against),
magnitudes use the sequential scale. The explained class is the prediction unless a row says otherwise; a target class is shown under each map. Times are wall time per image for the whole batch.</p>
<p><img src="overview.png" alt="overview" style="width:auto;height:auto;max-width:100%"></p>`;

/** Write DIR/index.html (atomically) and return its path. */
export function writeHtmlReport(r: ReportInput): string {
  const head = r.digits.map((d) => `<th>${esc(d.heading ?? `digit ${d.label}`)}<br><img src="${d.input}" alt="input ${d.label}"><br><small>${esc(d.note ?? `test #${d.index}`)}</small></th>`).join('');
  const families = [...new Set(r.methods.map((m) => m.family))];
  const body = families
    .map((fam) => {
      const rows = r.methods
        .filter((m) => m.family === fam)
        .map((m) => {
          const label = `<th class="m"><b>${esc(m.method)}</b><br><small>${esc(m.description)}</small><br>` +
            (m.error ? '' : `<span class="t">${m.msPerImage.toFixed(1)} ms/image · ${esc(m.model)}` +
              (m.targetSpec && m.targetSpec !== 'predicted' ? ` · target: ${m.targetSpec === 'second' ? 'second most likely class' : esc(m.targetSpec)}` : '') + '</span>') + '</th>';
          if (m.error) return `<tr>${label}<td colspan="${r.digits.length}" class="err">not run: ${esc(m.error)}</td></tr>`;
          const cells = m.maps
            .map((src, i) => `<td><img src="${src}" alt="${esc(m.method)} ${i}"><br><small>target ${m.targets?.[i] ?? '?'}<br>${extrasText(m.extras[i] ?? {})}</small></td>`)
            .join('');
          return `<tr>${label}${cells}</tr>`;
        })
        .join('\n');
      return `<tr class="fam"><td colspan="${r.digits.length + 1}">${esc(fam)}</td></tr>\n${rows}`;
    })
    .join('\n');
  const acc = r.accuracy.length
    ? `<h2>Models</h2><table class="acc"><tr><th>model</th><th>${esc(r.accuracyLabel ?? 'MNIST test accuracy')}</th></tr>${r.accuracy
        .map((a) => `<tr><td>${esc(a.model)}</td><td>${(a.accuracy * 100).toFixed(2)} %</td></tr>`)
        .join('')}</table>`
    : '';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title ?? 'Glasswing demo')} report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:4px 6px;text-align:center;vertical-align:top}
th.m{text-align:left;max-width:22em;font-weight:normal}
tr.fam td{background:#eee;text-align:left;font-weight:bold;text-transform:capitalize}
img{image-rendering:pixelated;width:112px;height:112px}
.t{color:#06c}.err{color:#a00;text-align:left}small{color:#666}
</style></head><body>
<h1>${esc(r.title ?? 'Glasswing demo')}</h1>
${r.intro ?? DEMO_INTRO(r.backend)}
${(r.links ?? []).map((l) => `<p><a href="${esc(l.href)}">${esc(l.text)}</a></p>`).join('\n')}
<table><tr><th></th>${head}</tr>
${body}
</table>
${acc}
</body></html>
`;
  const path = join(r.outDir, 'index.html');
  writeFileSync(path + '.tmp', html);
  renameSync(path + '.tmp', path);
  return path;
}
