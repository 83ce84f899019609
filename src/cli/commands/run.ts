import { OptionError } from '../../core/errors.js';
import { buildSpec, DEFAULT_SHARD_SIZE, prepareRun, runLocal } from '../../jobs/local.js';
import { enqueueShards, queueStatus, waitForRun, DEFAULT_QUEUE_NAME } from '../../jobs/queue.js';
import { finalizeRun, type RunSummary } from '../../jobs/finalize.js';
import { readSpec, type JobSpec } from '../../jobs/spec.js';
import { progress } from '../../util/progress.js';
import { flag, methodOptions, num, str, type ParsedArgs } from '../args.js';
import { loadJobModel } from '../../jobs/model-source.js';
import type { Command } from './index.js';
import '../../attribution/index.js';
import '../../counterfactual/index.js';
import '../../robustness/index.js';

function summaryText(s: RunSummary): string {
  const lines = s.perMethod.map((p) => `  ${p.method.padEnd(24)} ${String(p.images).padStart(7)} images  ${p.msPerImage.toFixed(2).padStart(8)} ms/image  accuracy ${(p.accuracy * 100).toFixed(1)} %` +
    Object.entries(p.metrics).map(([m, v]) => `  ${m} ${v.toPrecision(4)}`).join(''));
  return [`run ${s.key}: ${s.images} images × ${s.methods.length} methods in ${s.shards} shards`, ...lines, `  index ${s.files.jsonl}, ${s.files.csv}`, `  report ${s.files.report}`].join('\n') + '\n';
}

function jsonOption(args: ParsedArgs, key: string): Record<string, unknown> | undefined {
  const text = str(args, key);
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new OptionError(`expected --${key} to be a JSON object such as '{"steps": 20}'; got ${text}`);
}

/** The job of this command line: --resume with only --out reads the stored spec; otherwise it is built from the options. */
async function jobFor(args: ParsedArgs, out: string): Promise<JobSpec> {
  const stored = readSpec(out);
  if (flag(args, 'resume') && !args.flags.has('methods')) {
    if (!stored) throw new OptionError(`expected ${out}/job.json to resume (no job there); give --model, --dataset and --methods to start one`);
    return stored;
  }
  const methods = str(args, 'methods');
  if (!methods) throw new OptionError('expected --methods a,b,…; got none');
  return buildSpec({
    model: str(args, 'model', 'mnist-cnn'),
    dataset: str(args, 'dataset', 'mnist'),
    split: str(args, 'split'),
    limit: args.flags.has('limit') ? num(args, 'limit', 0) : undefined,
    methods: methods.split(',').map((m) => m.trim()).filter(Boolean),
    options: methodOptions(args),
    target: str(args, 'target', 'predicted'),
    metrics: str(args, 'metrics')?.split(',').map((m) => m.trim()).filter(Boolean),
    metricOptions: jsonOption(args, 'metric-options'),
    shardSize: num(args, 'shard-size', DEFAULT_SHARD_SIZE),
    batch: args.flags.has('batch') ? num(args, 'batch', 0) : undefined,
  });
}

export const runCommand: Command = {
  name: 'run',
  summary: 'explain a whole dataset with several methods: .npy shards + index + report, locally or through a Redis queue',
  usage: [
    'glasswing run --model M --dataset mnist|fashion|DIR --methods a,b --out DIR',
    '              [--split test] [--limit N] [--shard-size 256] [--batch 32] [--target predicted|second|INDEX]',
    '              [--opt.KEY VALUE ...] [--options JSON] [--metrics m1,m2 [--metric-options JSON]]',
    '              [--queue redis://HOST:PORT [--detach] [--attempts 3] [--backoff-ms 2000] [--requeue-ms 10000]]',
    'glasswing run --resume --out DIR [--queue URL]',
    '',
    '  Writes DIR/shards/<method>/*.npy (float32 attributions, numpy-readable), DIR/index.jsonl and',
    '  DIR/index.csv (image id, label, prediction, target, method, timing, extras), DIR/manifest.json',
    '  (SHA-256 of every shard) and DIR/report/index.html. Run it again (or with --resume) to continue:',
    '  finished shards are verified by checksum and skipped, partial ones redone.',
    '  --model     a shipped model name, a model folder, or an http(s) URL of one (workers fetch it)',
    '  --queue     enqueue the missing shards as BullMQ jobs instead of running them here; workers',
    '              (glasswing worker --queue URL) write into DIR, which they must all reach. Waits and',
    '              finalizes unless --detach (then: glasswing status --queue URL --out DIR). While it',
    '              waits, shards whose jobs vanished from Redis are enqueued again (every --requeue-ms).',
    '  --options   JSON of method options: {"steps": 20} for every method with that option, or',
    '              {"integrated-gradients": {"steps": 20}} for one method',
    '  --metrics   evaluation metrics (see src/metrics) scored on every attribution: one score per image',
    '              and metric in the index (metric.NAME columns), means in the summary and report;',
    '              --metric-options as --options, keyed by metric',
  ].join('\n'),
  async run(args) {
    const out = str(args, 'out');
    if (!out) throw new OptionError('expected --out DIR; got none');
    const spec = await jobFor(args, out);
    const url = str(args, 'queue');
    const classifier = await loadJobModel(spec.model);
    if (!url) {
      const r = await runLocal(out, spec, classifier);
      process.stderr.write(`run ${spec.key}: ${r.written} shards computed, ${r.skipped} already finished${r.redone ? `, ${r.redone} redone (checksum mismatch)` : ''}\n`);
      process.stdout.write(summaryText(r.summary));
      if (flag(args, 'json')) process.stdout.write(JSON.stringify(r.summary) + '\n');
      return;
    }
    const queueName = str(args, 'queue-name', DEFAULT_QUEUE_NAME);
    const state = prepareRun(out, spec);
    const enqueueOpts = { queueName, attempts: num(args, 'attempts', 3), backoffMs: num(args, 'backoff-ms', 2000) };
    const q = await enqueueShards(url, out, spec, state.missing, enqueueOpts);
    process.stderr.write(`run ${spec.key}: ${state.done.length} shards finished, ${q.added} enqueued, ${q.alreadyQueued} already queued${state.broken.length ? `, ${state.broken.length} redone (checksum mismatch)` : ''}\n`);
    if (flag(args, 'json')) process.stdout.write(JSON.stringify({ key: spec.key, finished: state.done.length, enqueued: q.added, alreadyQueued: q.alreadyQueued }) + '\n');
    if (flag(args, 'detach')) return;
    const st = await queueStatus(url, { queueName });
    if (st.workers === 0) process.stderr.write(`run ${spec.key}: no worker is connected yet; start some with: glasswing worker --queue ${url}\n`);
    const bar = progress(`run ${spec.key}`, spec.dataset.size * spec.methods.length);
    const t0 = performance.now();
    const startImages = state.done.reduce((a, r) => a + r.rows, 0);
    const r = await waitForRun(url, out, spec, {
      queueName,
      requeue: {
        ...enqueueOpts,
        everyMs: num(args, 'requeue-ms', 10_000),
        onRequeue: (lost) => process.stderr.write(`\nrun ${spec.key}: ${lost.length} shards had lost their jobs (Redis restarted without its data?); enqueued again\n`),
      },
      onProgress: (_, images) => bar.update(images, `${((images - startImages) / Math.max((performance.now() - t0) / 1000, 1e-3)).toFixed(1)} img/s`),
    });
    if (r.failed.length) {
      bar.done(`${r.failed.length} shards failed`);
      for (const f of r.failed) process.stderr.write(`  failed ${f.shard} after ${f.attempts} attempts: ${f.reason}\n`);
      throw new OptionError(`expected every shard to finish; ${r.failed.length} of ${spec.shards.length} failed (fix the cause, then glasswing run --resume --out ${out} --queue ${url})`);
    }
    bar.done();
    const summary = await finalizeRun(out, spec, classifier);
    process.stdout.write(summaryText(summary));
    if (flag(args, 'json')) process.stdout.write(JSON.stringify(summary) + '\n');
  },
};
