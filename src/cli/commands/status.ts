import { OptionError } from '../../core/errors.js';
import { queueStatus, DEFAULT_QUEUE_NAME } from '../../jobs/queue.js';
import { readSpec } from '../../jobs/spec.js';
import { flag, str } from '../args.js';
import type { Command } from './index.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'progress, failures and throughput of the Redis queue (and of one run with --out)',
  usage: [
    'glasswing status --queue redis://HOST:PORT [--out DIR] [--queue-name glasswing] [--json]',
    '',
    '  --out  also count the run\'s finished shards in DIR and list only that run\'s failures',
  ].join('\n'),
  async run(args) {
    const url = str(args, 'queue');
    if (!url) throw new OptionError('expected --queue redis://HOST:PORT; got none');
    const out = str(args, 'out');
    const spec = out ? readSpec(out) : undefined;
    if (out && !spec) throw new OptionError(`expected ${out}/job.json (a run's output folder); got none`);
    const s = await queueStatus(url, { queueName: str(args, 'queue-name', DEFAULT_QUEUE_NAME), outDir: out, spec });
    if (flag(args, 'json')) {
      process.stdout.write(JSON.stringify(s) + '\n');
      return;
    }
    const c = s.counts;
    const lines = [
      `queue: ${c.waiting ?? 0} waiting, ${c.active ?? 0} active, ${c.delayed ?? 0} delayed (retry backoff), ${c.completed ?? 0} completed, ${c.failed ?? 0} failed; ${s.workers} workers connected`,
    ];
    if (s.run) lines.push(`run ${s.run.key}: ${s.run.done}/${s.run.shards} shards finished (${((100 * s.run.done) / Math.max(1, s.run.shards)).toFixed(1)} %)`);
    const t = s.throughput;
    if (t.jobs) lines.push(`throughput: ${t.images} images in ${t.jobs} jobs over ${t.seconds.toFixed(1)} s = ${t.imagesPerSecond.toFixed(1)} images/s (${t.msPerJob.toFixed(0)} ms per job)`);
    for (const f of s.failed) lines.push(`failed ${f.shard} (run ${f.key}) after ${f.attempts} attempts: ${f.reason}`);
    process.stdout.write(lines.join('\n') + '\n');
  },
};
