/** Median wall time in ms of `fn` over `repeats` runs after `warmup` runs (benchmarks only). */
export async function medianMs(fn: () => Promise<void> | void, repeats = 5, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
