/**
 * SLIC super-pixels (Achanta et al. 2012), as skimage.segmentation.slic: k-means in (colour, position)
 * space started from a regular grid of about nSegments centres (moved to the lowest gradient in their
 * 3×3 neighbourhood), each centre searching a 2S×2S window, distance
 * D² = d_colour² + (d_space / S)² · compactness². Then connectivity is enforced: every label becomes
 * 4-connected components, and components smaller than minSizeFactor · (HW/nSegments) are merged into
 * an adjacent segment.
 */
import { colourFeatures, connectedComponents, relabel, type Plane, type Segmentation } from './common.js';

export interface SlicOptions {
  nSegments: number;
  compactness: number;
  iterations: number;
  minSizeFactor: number;
  low: number;
  high: number;
}

export const SLIC_DEFAULTS: SlicOptions = { nSegments: 100, compactness: 10, iterations: 10, minSizeFactor: 0.5, low: 0, high: 1 };

export function slic(img: Plane, options: Partial<SlicOptions> = {}): Segmentation {
  const o = { ...SLIC_DEFAULTS, ...options };
  const feat = colourFeatures(img, o.low, o.high);
  const { height, width, channels, data } = feat;
  const n = height * width;
  const step = Math.max(1, Math.sqrt(n / Math.max(1, o.nSegments)));
  // Grid initialisation.
  const centres: number[][] = [];
  for (let r = step / 2; r < height; r += step) {
    for (let c = step / 2; c < width; c += step) {
      let rr = Math.min(height - 1, Math.floor(r));
      let cc = Math.min(width - 1, Math.floor(c));
      // Move to the lowest gradient position in the 3×3 neighbourhood.
      let best = Infinity;
      let br = rr;
      let bc = cc;
      for (let dr = -1; dr <= 1; dr++) {
        for (let dc = -1; dc <= 1; dc++) {
          const y = rr + dr;
          const x = cc + dc;
          if (y < 1 || x < 1 || y >= height - 1 || x >= width - 1) continue;
          let g = 0;
          for (let k = 0; k < channels; k++) {
            const gx = data[(y * width + x + 1) * channels + k] - data[(y * width + x - 1) * channels + k];
            const gy = data[((y + 1) * width + x) * channels + k] - data[((y - 1) * width + x) * channels + k];
            g += gx * gx + gy * gy;
          }
          if (g < best) {
            best = g;
            br = y;
            bc = x;
          }
        }
      }
      rr = br;
      cc = bc;
      const i = rr * width + cc;
      centres.push([rr, cc, ...Array.from({ length: channels }, (_, k) => data[i * channels + k])]);
    }
  }
  const labels = new Int32Array(n).fill(-1);
  const dist = new Float64Array(n);
  const m2 = (o.compactness / step) ** 2;
  const win = Math.ceil(step);
  for (let it = 0; it < o.iterations; it++) {
    dist.fill(Infinity);
    centres.forEach((ctr, k) => {
      const r0 = Math.max(0, Math.floor(ctr[0] - win));
      const r1 = Math.min(height, Math.ceil(ctr[0] + win + 1));
      const c0 = Math.max(0, Math.floor(ctr[1] - win));
      const c1 = Math.min(width, Math.ceil(ctr[1] + win + 1));
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) {
          const i = r * width + c;
          let dc = 0;
          for (let q = 0; q < channels; q++) dc += (data[i * channels + q] - ctr[2 + q]) ** 2;
          const d = dc + ((r - ctr[0]) ** 2 + (c - ctr[1]) ** 2) * m2;
          if (d < dist[i]) {
            dist[i] = d;
            labels[i] = k;
          }
        }
      }
    });
    const sums = centres.map(() => new Float64Array(2 + channels + 1));
    for (let i = 0; i < n; i++) {
      const k = labels[i];
      if (k < 0) continue;
      const s = sums[k];
      s[0] += Math.floor(i / width);
      s[1] += i % width;
      for (let q = 0; q < channels; q++) s[2 + q] += data[i * channels + q];
      s[2 + channels]++;
    }
    centres.forEach((ctr, k) => {
      const s = sums[k];
      const cnt = s[2 + channels];
      if (cnt > 0) for (let q = 0; q < 2 + channels; q++) ctr[q] = s[q] / cnt;
    });
  }
  // Unassigned pixels (possible only with degenerate windows) join their left/up neighbour.
  for (let i = 0; i < n; i++) if (labels[i] < 0) labels[i] = i > 0 ? labels[i - 1] : 0;
  let seg = connectedComponents(relabel(labels, height, width));
  const minSize = Math.floor(o.minSizeFactor * (n / Math.max(1, o.nSegments)));
  if (minSize > 1) seg = mergeSmall(seg, minSize);
  return seg;
}

/** Merge components smaller than minSize into the neighbour with which they share the longest border. */
function mergeSmall(seg: Segmentation, minSize: number): Segmentation {
  const { height, width } = seg;
  const labels = Int32Array.from(seg.labels);
  for (let pass = 0; pass < 4; pass++) {
    const sizes = new Map<number, number>();
    for (const l of labels) sizes.set(l, (sizes.get(l) ?? 0) + 1);
    const small = [...sizes.entries()].filter(([, s]) => s < minSize).map(([l]) => l);
    if (small.length === 0 || sizes.size <= 1) break;
    const smallSet = new Set(small);
    const border = new Map<number, Map<number, number>>();
    for (let r = 0; r < height; r++) {
      for (let c = 0; c < width; c++) {
        const l = labels[r * width + c];
        if (!smallSet.has(l)) continue;
        const nb = [r > 0 ? labels[(r - 1) * width + c] : l, r < height - 1 ? labels[(r + 1) * width + c] : l, c > 0 ? labels[r * width + c - 1] : l, c < width - 1 ? labels[r * width + c + 1] : l];
        for (const m of nb) {
          if (m === l) continue;
          const b = border.get(l) ?? new Map<number, number>();
          b.set(m, (b.get(m) ?? 0) + 1);
          border.set(l, b);
        }
      }
    }
    const target = new Map<number, number>();
    for (const l of small) {
      const b = border.get(l);
      if (!b) continue;
      let best = -1;
      let bestCount = -1;
      for (const [m, cnt] of b) if (cnt > bestCount) [best, bestCount] = [m, cnt];
      target.set(l, best);
    }
    if (target.size === 0) break;
    for (let i = 0; i < labels.length; i++) {
      const t = target.get(labels[i]);
      if (t !== undefined && !target.has(t)) labels[i] = t;
    }
  }
  return relabel(labels, height, width);
}
