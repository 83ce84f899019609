/**
 * Shared pieces of the super-pixel segmentations: colour features of an image (Lab-like scale),
 * consecutive relabelling, a regular grid, and the maximum-super-pixel-size split (seed 002: LIME on
 * MNIST needs super-pixels down to single pixels).
 */

/** An image as float64 HWC data. */
export interface Plane {
  height: number;
  width: number;
  channels: number;
  data: Float64Array;
}

/** A label image: labels[r * width + c] ∈ 0..count−1. */
export interface Segmentation {
  labels: Int32Array;
  count: number;
  height: number;
  width: number;
}

/**
 * Features for colour distances: RGB in [low, high] is converted to CIE Lab (as skimage's rgb2lab);
 * a single channel is scaled to 0..100 (the range of Lab's L), so distance parameters mean the same.
 */
export function colourFeatures(img: Plane, low: number, high: number): Plane {
  const { height, width, channels, data } = img;
  const n = height * width;
  const span = high - low || 1;
  if (channels === 3) {
    const out = new Float64Array(n * 3);
    for (let i = 0; i < n; i++) {
      const lab = rgbToLab((data[i * 3] - low) / span, (data[i * 3 + 1] - low) / span, (data[i * 3 + 2] - low) / span);
      out.set(lab, i * 3);
    }
    return { height, width, channels: 3, data: out };
  }
  const out = new Float64Array(n * channels);
  for (let i = 0; i < n * channels; i++) out[i] = ((data[i] - low) / span) * 100;
  return { height, width, channels, data: out };
}

/** sRGB in [0,1] → CIE Lab (D65), as skimage.color.rgb2lab. */
export function rgbToLab(r: number, g: number, b: number): [number, number, number] {
  const lin = (v: number) => (v > 0.04045 ? ((v + 0.055) / 1.055) ** 2.4 : v / 12.92);
  const [R, G, B] = [lin(Math.min(1, Math.max(0, r))), lin(Math.min(1, Math.max(0, g))), lin(Math.min(1, Math.max(0, b)))];
  const x = (0.412453 * R + 0.35758 * G + 0.180423 * B) / 0.95047;
  const y = 0.212671 * R + 0.71516 * G + 0.072169 * B;
  const z = (0.019334 * R + 0.119193 * G + 0.950227 * B) / 1.08883;
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  const L = y > 0.008856 ? 116 * Math.cbrt(y) - 16 : 903.3 * y;
  return [L, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))];
}

/** Relabel arbitrary integer labels to 0..count−1 in order of first appearance (row-major). */
export function relabel(labels: Int32Array | number[], height: number, width: number): Segmentation {
  const map = new Map<number, number>();
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    let v = map.get(labels[i]);
    if (v === undefined) {
      v = map.size;
      map.set(labels[i], v);
    }
    out[i] = v;
  }
  return { labels: out, count: map.size, height, width };
}

/** Square cells of `cell` × `cell` pixels. */
export function gridSegmentation(height: number, width: number, cell: number): Segmentation {
  const labels = new Int32Array(height * width);
  const cols = Math.ceil(width / cell);
  for (let r = 0; r < height; r++) for (let c = 0; c < width; c++) labels[r * width + c] = Math.floor(r / cell) * cols + Math.floor(c / cell);
  return relabel(labels, height, width);
}

/**
 * Split every super-pixel with more than maxSize pixels into tiles of at most maxSize pixels
 * (t × t squares, t = ⌊√maxSize⌋, intersected with the super-pixel). maxSize 1 gives single pixels.
 */
export function limitSegmentSize(seg: Segmentation, maxSize: number): Segmentation {
  if (!Number.isFinite(maxSize) || maxSize <= 0) return seg;
  const sizes = new Int32Array(seg.count);
  for (const l of seg.labels) sizes[l]++;
  if (sizes.every((s) => s <= maxSize)) return seg;
  const t = Math.max(1, Math.floor(Math.sqrt(maxSize)));
  const { height, width } = seg;
  const tilesPerRow = Math.ceil(width / t);
  const tilesPerCol = Math.ceil(height / t);
  const keyed = new Int32Array(seg.labels.length);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const i = r * width + c;
      const l = seg.labels[i];
      keyed[i] = sizes[l] <= maxSize ? l * (tilesPerRow * tilesPerCol + 1) : l * (tilesPerRow * tilesPerCol + 1) + 1 + Math.floor(r / t) * tilesPerRow + Math.floor(c / t);
    }
  }
  return relabel(keyed, height, width);
}

/** Split labels into 4-connected components (a super-pixel must be one connected region). */
export function connectedComponents(seg: Segmentation): Segmentation {
  const { height, width, labels } = seg;
  const out = new Int32Array(labels.length).fill(-1);
  let next = 0;
  const stack: number[] = [];
  for (let start = 0; start < labels.length; start++) {
    if (out[start] >= 0) continue;
    const l = labels[start];
    out[start] = next;
    stack.push(start);
    while (stack.length) {
      const i = stack.pop()!;
      const r = Math.floor(i / width);
      const c = i - r * width;
      const nb = [r > 0 ? i - width : -1, r < height - 1 ? i + width : -1, c > 0 ? i - 1 : -1, c < width - 1 ? i + 1 : -1];
      for (const j of nb) {
        if (j >= 0 && out[j] < 0 && labels[j] === l) {
          out[j] = next;
          stack.push(j);
        }
      }
    }
    next++;
  }
  return { labels: out, count: next, height, width };
}
