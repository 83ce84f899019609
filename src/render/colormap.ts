/**
 * Colour maps. A signed map takes values in [−1, 1] (0 is the neutral colour), an unsigned one
 * values in [0, 1]. Values outside the domain are clamped. Normalisation of attributions into these
 * domains happens in heatmap.ts, never in the methods.
 */
import { OptionError } from '../core/errors.js';

export type RGB = [number, number, number];

export type ColormapName =
  | 'diverging'
  | 'sequential'
  | 'yellow-blue'
  | 'yellow-blue-binary'
  | 'viridis'
  | 'gray';

export interface Colormap {
  /** A ColormapName for the built-in maps. */
  name: string;
  /** true: domain [−1, 1]; false: domain [0, 1]. */
  signed: boolean;
  /** Colour of one value (clamped into the domain), as 0–255 integers. */
  (value: number): RGB;
}

type Stop = [number, RGB];

function interpolate(stops: Stop[], t: number): RGB {
  if (!(t > stops[0][0])) return [...stops[0][1]] as RGB; // also catches NaN
  for (let i = 1; i < stops.length; i++) {
    const [t1, c1] = stops[i];
    if (t <= t1) {
      const [t0, c0] = stops[i - 1];
      const f = (t - t0) / (t1 - t0);
      return [
        Math.round(c0[0] + f * (c1[0] - c0[0])),
        Math.round(c0[1] + f * (c1[1] - c0[1])),
        Math.round(c0[2] + f * (c1[2] - c0[2])),
      ];
    }
  }
  return [...stops[stops.length - 1][1]] as RGB;
}

/** Blue–white–red (matplotlib "bwr"): −1 blue, 0 white, +1 red; linear in each half. */
const DIVERGING: Stop[] = [
  [-1, [0, 0, 255]],
  [0, [255, 255, 255]],
  [1, [255, 0, 0]],
];

/** White → orange → dark red, for magnitudes (0 is white, like the diverging map's centre). */
const SEQUENTIAL: Stop[] = [
  [0, [255, 255, 255]],
  [0.25, [252, 187, 161]],
  [0.5, [251, 106, 74]],
  [0.75, [203, 24, 29]],
  [1, [103, 0, 13]],
];

/** matplotlib viridis, sampled at 9 points: dark blue/purple → teal → green → yellow. */
const VIRIDIS: Stop[] = [
  [0, [68, 1, 84]],
  [0.125, [71, 45, 123]],
  [0.25, [59, 82, 139]],
  [0.375, [44, 114, 142]],
  [0.5, [33, 145, 140]],
  [0.625, [40, 174, 128]],
  [0.75, [94, 201, 98]],
  [0.875, [173, 220, 48]],
  [1, [253, 231, 37]],
];

const GRAY: Stop[] = [
  [0, [0, 0, 0]],
  [1, [255, 255, 255]],
];

/** Seed 002 binary LIME maps: yellow = evidence for, light blue = against, dark blue = unimportant. */
export const YELLOW_BLUE_BINARY = {
  for: [253, 231, 37] as RGB,
  against: [86, 180, 233] as RGB,
  unimportant: [25, 35, 110] as RGB,
};

function make(name: string, signed: boolean, fn: (v: number) => RGB): Colormap {
  const f = ((v: number) => fn(v)) as Colormap;
  Object.defineProperty(f, 'name', { value: name });
  f.signed = signed;
  return f;
}

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

const MAPS: Record<ColormapName, Colormap> = {
  diverging: make('diverging', true, (v) => interpolate(DIVERGING, clamp(v, -1, 1))),
  sequential: make('sequential', false, (v) => interpolate(SEQUENTIAL, clamp(v, 0, 1))),
  // Seed 002 (Fig. 6): continuous maps run linearly from dark blue (evidence against, −1) to
  // yellow (evidence for, +1); drawn with viridis' perceptually uniform ramp.
  'yellow-blue': make('yellow-blue', true, (v) => interpolate(VIRIDIS, (clamp(v, -1, 1) + 1) / 2)),
  'yellow-blue-binary': make('yellow-blue-binary', true, (v) =>
    [...(v > 0 ? YELLOW_BLUE_BINARY.for : v < 0 ? YELLOW_BLUE_BINARY.against : YELLOW_BLUE_BINARY.unimportant)] as RGB,
  ),
  viridis: make('viridis', false, (v) => interpolate(VIRIDIS, clamp(v, 0, 1))),
  gray: make('gray', false, (v) => interpolate(GRAY, clamp(v, 0, 1))),
};

export const COLORMAP_NAMES = Object.keys(MAPS) as ColormapName[];

/** Looks a colour map up by name; throws OptionError for an unknown name. */
export function getColormap(name: ColormapName | Colormap): Colormap {
  if (typeof name === 'function') return name;
  const m = MAPS[name];
  if (!m) throw new OptionError(`unknown colour map "${String(name)}"; expected one of ${COLORMAP_NAMES.join(', ')}`);
  return m;
}

/** Builds a custom colour map from stops [[t, [r, g, b]], …] (t ascending; signed: t in [−1, 1]). */
export function customColormap(stops: Array<[number, RGB]>, signed: boolean, name = 'custom'): Colormap {
  if (stops.length < 2) throw new OptionError(`customColormap: need at least 2 stops; got ${stops.length}`);
  for (let i = 1; i < stops.length; i++) {
    if (!(stops[i][0] > stops[i - 1][0])) throw new OptionError('customColormap: stop positions must increase');
  }
  const lo = signed ? -1 : 0;
  return make(name, signed, (v) => interpolate(stops, clamp(v, lo, 1)));
}

/** CSS hex of a colour map at n evenly spaced points (for vega-lite colour scales). */
export function colormapRange(name: ColormapName | Colormap, n = 9): string[] {
  const m = getColormap(name);
  const lo = m.signed ? -1 : 0;
  return Array.from({ length: n }, (_, i) => {
    const [r, g, b] = m(lo + ((1 - lo) * i) / (n - 1));
    return '#' + [r, g, b].map((c) => c.toString(16).padStart(2, '0')).join('');
  });
}
