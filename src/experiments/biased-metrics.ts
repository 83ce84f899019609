/**
 * Scores of an explanation against the biased-MNIST square (seed 001 §4.3), on plain arrays so that
 * they can be checked by hand: the share of the map's absolute mass inside the square, and the
 * pointing game on |map| (is the pixel of largest magnitude inside the square?).
 *
 * Both read |map| because a contrastive explanation is signed (red = add, blue = remove) and the
 * question is where it puts its weight, whichever the sign. A map that is zero everywhere (a
 * contrastive sweep that kept nothing) explains nothing: mass 0 and a miss, never a hit by the
 * accident of argmax landing on pixel 0, which is inside a top-left square.
 */
import { DataError } from '../core/errors.js';

function checkSizes(map: ArrayLike<number>, inside: ArrayLike<boolean | number>): void {
  if (map.length !== inside.length || map.length === 0) {
    throw new DataError(`square score: expected a map and a mask of the same non-zero length; got ${map.length} and ${inside.length}`);
  }
}

/** Σ_{p in square} |m_p| / Σ_p |m_p|; 0 for an all-zero map. */
export function squareMassShare(map: ArrayLike<number>, inside: ArrayLike<boolean | number>): number {
  checkSizes(map, inside);
  let tot = 0;
  let inn = 0;
  for (let p = 0; p < map.length; p++) {
    const v = Math.abs(map[p]);
    tot += v;
    if (inside[p]) inn += v;
  }
  return tot > 0 ? inn / tot : 0;
}

/** Pointing game on |map|: the first pixel of largest magnitude lies inside the square; false for an all-zero map. */
export function squarePointingHit(map: ArrayLike<number>, inside: ArrayLike<boolean | number>): boolean {
  checkSizes(map, inside);
  let best = -1;
  let bestV = 0;
  for (let p = 0; p < map.length; p++) {
    const v = Math.abs(map[p]);
    if (v > bestV) {
      bestV = v;
      best = p;
    }
  }
  return best >= 0 && Boolean(inside[best]);
}

/** Largest |m_p| inside and outside the square: why a pointing game misses when the square is drawn (grey 0.5) but strokes change by more. */
export function squarePeaks(map: ArrayLike<number>, inside: ArrayLike<boolean | number>): { inside: number; outside: number } {
  checkSizes(map, inside);
  let pin = 0;
  let pout = 0;
  for (let p = 0; p < map.length; p++) {
    const v = Math.abs(map[p]);
    if (inside[p]) pin = Math.max(pin, v);
    else pout = Math.max(pout, v);
  }
  return { inside: pin, outside: pout };
}

/**
 * Per-image maps [N, H·W] from a flat [N, H, W, C] buffer: channels summed, so a map of any channel
 * count is scored on the same H × W grid as the square.
 */
export function pixelMaps(values: ArrayLike<number>, n: number, hw: number, channels: number): Float32Array[] {
  if (values.length !== n * hw * channels) throw new DataError(`square score: expected ${n}×${hw}×${channels} values; got ${values.length}`);
  return Array.from({ length: n }, (_, i) => {
    const m = new Float32Array(hw);
    for (let p = 0; p < hw; p++) for (let ch = 0; ch < channels; ch++) m[p] += values[(i * hw + p) * channels + ch];
    return m;
  });
}
