import { DataError } from '../../core/errors.js';
import { runConformance } from '../../conformance/index.js';
import { formatTable } from '../../tasks/registry.js';
import { flag, num } from '../args.js';
import type { Command } from './index.js';

export const conformanceCommand: Command = {
  name: 'conformance',
  summary: 'check Glasswing against reference attributions (Captum/Zennit fixture folder)',
  usage: 'glasswing conformance DIR [--tolerance 1e-4] [--json]\n\nDIR holds weights/, input/ and attributions/ bundles (format: xai-anchors-tensors v1).',
  async run(args) {
    const dir = args.positional[0];
    if (!dir) throw new DataError('expected a fixture folder with weights/, input/ and attributions/; got none');
    const tolerance = num(args, 'tolerance', 1e-4);
    const report = await runConformance(dir, { tolerance });
    const table = report.rows.map((r) => ({ method: r.method, 'max rel L2': r.relL2.toExponential(2), images: r.perImage.length, ms: Number(r.ms.toFixed(1)), result: r.pass ? 'pass' : 'FAIL' }));
    process.stdout.write(`${dir}: model ${report.model ?? '?'}, ${report.images} images\n\n${formatTable(table)}\n`);
    if (report.skipped.length) process.stdout.write(`\nnot checked (no Glasswing counterpart): ${report.skipped.join(', ')}\n`);
    const failed = report.rows.filter((r) => !r.pass);
    process.stdout.write(`\n${report.rows.length - failed.length} passed, ${failed.length} failed (tolerance ${tolerance} relative L2)\n`);
    if (flag(args, 'json')) process.stdout.write(JSON.stringify({ conformance: dir, tolerance, rows: report.rows, skipped: report.skipped }) + '\n');
    if (failed.length) process.exitCode = 1;
  },
};
