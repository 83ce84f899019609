/**
 * A progress bar for long work (training, LIME sampling, experiments). Draws on stderr when it is
 * a terminal, prints a line every 10 % otherwise (CI logs), and nothing when GLASSWING_QUIET=1.
 */
export interface Progress {
  /** Set the number of finished units; `info` is shown after the bar (e.g. "loss 0.12"). */
  update(done: number, info?: string): void;
  tick(info?: string): void;
  done(info?: string): void;
}

export function progress(label: string, total: number): Progress {
  const quiet = process.env.GLASSWING_QUIET === '1' || process.env.VITEST !== undefined;
  const tty = Boolean(process.stderr.isTTY);
  const start = Date.now();
  let current = 0;
  let lastDecile = -1;
  const render = (info?: string, final = false) => {
    if (quiet) return;
    const frac = total > 0 ? Math.min(1, current / total) : 1;
    const secs = (Date.now() - start) / 1000;
    const eta = frac > 0 && !final ? ` eta ${((secs / frac) * (1 - frac)).toFixed(0)}s` : '';
    const text = `${label} ${current}/${total} ${(frac * 100).toFixed(0)}% ${secs.toFixed(1)}s${eta}${info ? ' ' + info : ''}`;
    if (tty) {
      const width = 24;
      const filled = Math.round(frac * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K${final ? '\n' : ''}`);
    } else {
      const decile = Math.floor(frac * 10);
      if (decile !== lastDecile || final) {
        lastDecile = decile;
        process.stderr.write(text + '\n');
      }
    }
  };
  return {
    update(done, info) {
      current = done;
      render(info);
    },
    tick(info) {
      current += 1;
      render(info);
    },
    done(info) {
      current = total;
      render(info, true);
    },
  };
}
