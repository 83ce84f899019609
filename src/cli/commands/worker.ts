import { spawn, type ChildProcess } from 'node:child_process';
import { OptionError } from '../../core/errors.js';
import { startWorker, DEFAULT_QUEUE_NAME } from '../../jobs/queue.js';
import { flag, num, str } from '../args.js';
import type { Command } from './index.js';
import '../../attribution/index.js';
import '../../counterfactual/index.js';
import '../../robustness/index.js';

/** Resolves when SIGTERM or SIGINT arrives. */
const stopSignal = () => new Promise<NodeJS.Signals>((r) => {
  process.once('SIGTERM', () => r('SIGTERM'));
  process.once('SIGINT', () => r('SIGINT'));
});

export const workerCommand: Command = {
  name: 'worker',
  summary: 'take shards of `glasswing run --queue` jobs from Redis and write them to the shared output folder',
  usage: [
    'glasswing worker --queue redis://HOST:PORT [--concurrency N] [--lock-ms 30000] [--stalled-ms 30000] [--stop-ms 15000] [--in-process] [--queue-name glasswing]',
    '',
    '  Runs until SIGTERM/SIGINT (then finishes the shard in hand). Each job names its model (a shipped',
    '  name, a folder this machine must see at the same path, or an http(s) URL) and its output folder (shared).',
    '  --concurrency  worker processes to start (default 1): the backend uses one core per process',
    '  --lock-ms      a worker silent for this long is presumed dead and its job is taken over',
    '  --stop-ms      on SIGTERM, wait this long for the shard in hand before exiting',
    '  --in-process   compute in this process instead of a child process that BullMQ forks and reuses',
    '                 (then the job lock is only renewed between batches: keep batches shorter than --lock-ms)',
  ].join('\n'),
  async run(args) {
    const url = str(args, 'queue');
    if (!url) throw new OptionError('expected --queue redis://HOST:PORT; got none');
    const n = num(args, 'concurrency', 1);
    if (!Number.isInteger(n) || n < 1) throw new OptionError(`expected --concurrency to be a positive integer; got ${n}`);
    if (n > 1) {
      // One process per core: tfjs' wasm backend computes on one thread per process.
      const rest = process.argv.slice(3).filter((a, i, all) => a !== '--concurrency' && all[i - 1] !== '--concurrency' && !a.startsWith('--concurrency='));
      const children: ChildProcess[] = Array.from({ length: n }, () =>
        spawn(process.execPath, [process.argv[1], 'worker', ...rest, '--concurrency', '1'], { stdio: 'inherit' }),
      );
      const exits = children.map((c) => new Promise<number>((r) => c.on('exit', (code) => r(code ?? 1))));
      const sig = await Promise.race([stopSignal(), Promise.all(exits).then(() => undefined)]);
      if (sig) for (const c of children) c.kill(sig);
      const codes = await Promise.all(exits);
      if (codes.some((c) => c !== 0)) process.exitCode = 1;
      return;
    }
    const handle = await startWorker(url, {
      queueName: str(args, 'queue-name', DEFAULT_QUEUE_NAME),
      lockMs: num(args, 'lock-ms', 30_000),
      stalledMs: num(args, 'stalled-ms', 30_000),
      log: (line) => process.stderr.write(line + '\n'),
      sandbox: !flag(args, 'in-process'),
    });
    await handle.worker.waitUntilReady();
    process.stderr.write(`worker ${process.pid}: waiting for jobs on ${url}\n`);
    await stopSignal();
    // Let the shard in hand finish; give up after --stop-ms (Redis may be gone) or on a second signal.
    // An unfinished shard is not lost: its job's lock expires and another worker takes it over.
    const timeout = num(args, 'stop-ms', 15_000);
    await Promise.race([handle.close(), stopSignal(), new Promise((r) => setTimeout(r, timeout).unref())]);
    process.exit(0);
  },
};
