/**
 * Similarity of two attribution maps (per-pixel, H×W, float64), as the randomization tests of
 * Adebayo et al. (2018) measure them: Spearman rank correlation, structural similarity (SSIM) and
 * the Pearson correlation of histogram-of-oriented-gradients (HOG) descriptors. Maps are compared
 * after scaling each by its largest magnitude, so a method's overall scale does not count — only
 * where its relevance is.
 */
import { OptionError } from '../core/errors.js';
import { pearson, spearman } from './common.js';

export type SimilarityName = 'spearman' | 'ssim' | 'hog';
export const SIMILARITIES: readonly SimilarityName[] = ['spearman', 'ssim', 'hog'];

export function similarityName(v: unknown): SimilarityName {
  if (typeof v !== 'string' || !SIMILARITIES.includes(v as SimilarityName)) {
    throw new OptionError(`expected option similarity to be one of ${SIMILARITIES.join(', ')}; got ${JSON.stringify(v)}`);
  }
  return v as SimilarityName;
}

/** The map divided by its largest magnitude (absolute values first when `abs`). */
export function normaliseMap(m: Float64Array, abs: boolean): Float64Array {
  const out = new Float64Array(m.length);
  let mx = 0;
  for (let i = 0; i < m.length; i++) {
    out[i] = abs ? Math.abs(m[i]) : m[i];
    mx = Math.max(mx, Math.abs(out[i]));
  }
  if (mx > 0) for (let i = 0; i < m.length; i++) out[i] /= mx;
  return out;
}

/**
 * Mean SSIM (Wang et al. 2004) with a uniform win×win window over the positions where it fits
 * (skimage.metrics.structural_similarity's defaults: win 7, K1 0.01, K2 0.03, sample covariance),
 * data range the joint range of both maps.
 */
export function ssim(a: Float64Array, b: Float64Array, h: number, w: number, win = 7): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < a.length; i++) {
    lo = Math.min(lo, a[i], b[i]);
    hi = Math.max(hi, a[i], b[i]);
  }
  const range = hi - lo || 1;
  let size = Math.min(win, h, w);
  if (size % 2 === 0) size -= 1;
  size = Math.max(1, size);
  const c1 = (0.01 * range) ** 2;
  const c2 = (0.03 * range) ** 2;
  const np = size * size;
  const cov = np > 1 ? np / (np - 1) : 1;
  let total = 0;
  let count = 0;
  for (let r0 = 0; r0 + size <= h; r0++) {
    for (let c0 = 0; c0 + size <= w; c0++) {
      let sa = 0;
      let sb = 0;
      let saa = 0;
      let sbb = 0;
      let sab = 0;
      for (let r = r0; r < r0 + size; r++) {
        for (let c = c0; c < c0 + size; c++) {
          const va = a[r * w + c];
          const vb = b[r * w + c];
          sa += va;
          sb += vb;
          saa += va * va;
          sbb += vb * vb;
          sab += va * vb;
        }
      }
      const ma = sa / np;
      const mb = sb / np;
      const va = cov * (saa / np - ma * ma);
      const vb = cov * (sbb / np - mb * mb);
      const vab = cov * (sab / np - ma * mb);
      total += ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      count++;
    }
  }
  return total / count;
}

/**
 * HOG descriptor: central-difference gradients, unsigned orientation in 9 bins over [0°, 180°),
 * magnitude-weighted histograms per cell (cell ≈ 1/7 of the shorter side, at least 2 pixels), each
 * cell's histogram L2-normalised.
 */
export function hog(m: Float64Array, h: number, w: number, bins = 9): Float64Array {
  const cell = Math.max(2, Math.round(Math.min(h, w) / 7));
  const ch = Math.ceil(h / cell);
  const cw = Math.ceil(w / cell);
  const out = new Float64Array(ch * cw * bins);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const gx = (c + 1 < w ? m[r * w + c + 1] : m[r * w + c]) - (c > 0 ? m[r * w + c - 1] : m[r * w + c]);
      const gy = (r + 1 < h ? m[(r + 1) * w + c] : m[r * w + c]) - (r > 0 ? m[(r - 1) * w + c] : m[r * w + c]);
      const mag = Math.hypot(gx, gy);
      if (mag === 0) continue;
      let ang = (Math.atan2(gy, gx) * 180) / Math.PI;
      if (ang < 0) ang += 180;
      if (ang >= 180) ang -= 180;
      const bin = Math.min(bins - 1, Math.floor((ang / 180) * bins));
      out[(Math.floor(r / cell) * cw + Math.floor(c / cell)) * bins + bin] += mag;
    }
  }
  for (let k = 0; k < ch * cw; k++) {
    let s = 0;
    for (let j = 0; j < bins; j++) s += out[k * bins + j] ** 2;
    const nrm = Math.sqrt(s) + 1e-12;
    for (let j = 0; j < bins; j++) out[k * bins + j] /= nrm;
  }
  return out;
}

/** Similarity of two maps (already normalised) by name. */
export function similarity(name: SimilarityName, a: Float64Array, b: Float64Array, h: number, w: number): number {
  switch (name) {
    case 'spearman':
      return spearman(a, b);
    case 'ssim':
      return ssim(a, b, h, w);
    case 'hog':
      return pearson(hog(a, h, w), hog(b, h, w));
  }
}
