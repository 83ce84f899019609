/**
 * Quick shift super-pixels (Vedaldi & Soatto 2008), following skimage.segmentation.quickshift (the
 * segmentation LIME uses: kernel_size 4, max_dist 200, ratio 0.2): a Parzen density over the joint
 * (colour·ratio, position) space, each pixel linked to its nearest neighbour of higher density within
 * 3σ, links longer than maxDist cut, trees become segments. Ties are broken by a tiny seeded jitter.
 */
import { createRng } from '../../util/random.js';
import { colourFeatures, relabel, type Plane, type Segmentation } from './common.js';

export interface QuickshiftOptions {
  kernelSize: number;
  maxDist: number;
  ratio: number;
  seed: number;
  /** Value range of the image (for the colour scale). */
  low: number;
  high: number;
}

export const QUICKSHIFT_DEFAULTS: QuickshiftOptions = { kernelSize: 4, maxDist: 200, ratio: 0.2, seed: 0, low: 0, high: 1 };

export function quickshift(img: Plane, options: Partial<QuickshiftOptions> = {}): Segmentation {
  const o = { ...QUICKSHIFT_DEFAULTS, ...options };
  const feat = colourFeatures(img, o.low, o.high);
  const { height, width, channels } = feat;
  const rng = createRng(o.seed);
  const data = new Float64Array(feat.data.length);
  for (let i = 0; i < data.length; i++) data[i] = feat.data[i] * o.ratio + rng() * 1e-5;
  const sigma = o.kernelSize;
  const w = Math.ceil(3 * sigma);
  const inv = -0.5 / (sigma * sigma);
  const n = height * width;
  const density = new Float64Array(n);
  const dist2 = (a: number, b: number, dr: number, dc: number) => {
    let d = dr * dr + dc * dc;
    for (let k = 0; k < channels; k++) {
      const t = data[a * channels + k] - data[b * channels + k];
      d += t * t;
    }
    return d;
  };
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const i = r * width + c;
      let s = 0;
      for (let rr = Math.max(0, r - w); rr < Math.min(height, r + w + 1); rr++) {
        for (let cc = Math.max(0, c - w); cc < Math.min(width, c + w + 1); cc++) {
          s += Math.exp(dist2(i, rr * width + cc, r - rr, c - cc) * inv);
        }
      }
      density[i] = s;
    }
  }
  const parent = new Int32Array(n);
  const maxD2 = o.maxDist * o.maxDist;
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const i = r * width + c;
      let best = Infinity;
      parent[i] = i;
      for (let rr = Math.max(0, r - w); rr < Math.min(height, r + w + 1); rr++) {
        for (let cc = Math.max(0, c - w); cc < Math.min(width, c + w + 1); cc++) {
          const j = rr * width + cc;
          if (density[j] > density[i]) {
            const d = dist2(i, j, r - rr, c - cc);
            if (d < best) {
              best = d;
              parent[i] = j;
            }
          }
        }
      }
      if (best > maxD2) parent[i] = i;
    }
  }
  // Follow links to the roots.
  const root = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let j = i;
    while (parent[j] !== j) j = parent[j];
    root[i] = j;
  }
  return relabel(root, height, width);
}
