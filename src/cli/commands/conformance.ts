import { DataError } from '../../core/errors.js';
import { defaultConformanceDir, findFixtures, runConformance, type ConformanceResult, type ConformanceRow } from '../../conformance/index.js';
import { formatTable } from '../../tasks/registry.js';
import { flag, num, str } from '../args.js';
import type { Command } from './index.js';

const exp = (v: number) => (Number.isFinite(v) ? v.toExponential(2) : String(v));

/** One table row: the error, the bound it was checked against, and where the bound came from. */
function tableRow(r: ConformanceRow): Record<string, string | number> {
  return {
    output: r.method,
    metric: r.metric === 'abs' ? 'max abs' : 'rel L2',
    error: exp(r.error),
    tolerance: exp(r.tolerance),
    calibration: r.calibration !== undefined ? exp(r.calibration) : '-',
    'zero maps': r.zeroImages ? `${r.zeroImages.join(',')}: max|out| ${exp(r.zeroMaxAbs ?? 0)}` : '',
    ms: Math.round(r.ms),
    result: r.pass ? 'pass' : 'FAIL',
  };
}

function printReport(report: ConformanceResult): void {
  process.stdout.write(`${report.dir}: model ${report.model ?? '?'} (${report.kind === 'model' ? 'model/ in the fixture' : 'weights/ bundle'}), ${report.images} images, `
    + `${report.calibrated ? `tolerance per output = max(${report.tolerance}, 3 × calibration)` : `tolerance ${report.tolerance}`}\n\n`);
  process.stdout.write(`${formatTable(report.rows.map(tableRow))}\n`);
  const notes = report.rows.filter((r) => r.note && !r.note.startsWith('layer ')).map((r) => `  ${r.method}: ${r.note}`);
  if (notes.length) process.stdout.write(`\nnotes:\n${notes.join('\n')}\n`);
  if (report.skipped.length) {
    process.stdout.write(`\nnot checked: ${report.skipped.map((s) => `${s} (${report.skippedReasons[s] ?? 'no Glasswing counterpart'})`).join(', ')}\n`);
  }
  const failed = report.rows.filter((r) => !r.pass);
  process.stdout.write(`\n${report.rows.length - failed.length} passed, ${failed.length} failed${failed.length ? `: ${failed.map((r) => r.method).join(', ')}` : ''}\n\n`);
}

export const conformanceCommand: Command = {
  name: 'conformance',
  summary: 'check Glasswing against reference attributions (Captum/Zennit fixture folders)',
  usage: [
    'glasswing conformance [DIR] [--tolerance 1e-4] [--only a,b] [--json]',
    '',
    'Without DIR: $GLASSWING_CONFORMANCE_DIR, else the fixtures vendored in the package (test/fixtures/conformance).',
    'DIR is a fixture folder or a folder of fixtures (format: xai-anchors-tensors v1, FORMAT.md). A fixture',
    'holds attributions/ and input/ bundles and either model/ (a TF.js layers model: model.json + weight',
    'shards, with calibration.json) or a weights/ bundle of a registered architecture (mnist_cnn, mnist_mlp).',
    'Each output passes when its per-image error (relative L2; max |difference| for *_delta outputs of a',
    'calibrated fixture) is within max(--tolerance, 3 × calibration); without calibration.json, within',
    '--tolerance. Exits 1 when any output fails.',
  ].join('\n'),
  async run(args) {
    const dir = args.positional[0] ?? defaultConformanceDir();
    const tolerance = num(args, 'tolerance', 1e-4);
    const only = str(args, 'only')?.split(',').map((s) => s.trim()).filter(Boolean);
    const fixtures = findFixtures(dir);
    if (fixtures.length === 0) throw new DataError(`expected ${dir} to be a fixture folder or to contain fixture folders; got none`);
    const reports: ConformanceResult[] = [];
    for (const f of fixtures) {
      const report = await runConformance(f, { tolerance, only });
      printReport(report);
      reports.push(report);
    }
    if (fixtures.length > 1) {
      const bad = reports.filter((r) => !r.pass);
      process.stdout.write(`${fixtures.length - bad.length} of ${fixtures.length} fixtures pass${bad.length ? `; failing: ${bad.map((r) => r.dir).join(', ')}` : ''}\n`);
    }
    if (flag(args, 'json')) {
      process.stdout.write(JSON.stringify({ conformance: dir, tolerance, fixtures: reports.map((r) => ({ dir: r.dir, model: r.model, kind: r.kind, calibrated: r.calibrated, pass: r.pass, rows: r.rows, skipped: r.skippedReasons })) }) + '\n');
    }
    if (reports.some((r) => !r.pass)) process.exitCode = 1;
  },
};
