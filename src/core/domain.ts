/**
 * The input domain of a classifier: the image shape it takes, the range of valid pixel values, and
 * the affine map (offset/scale/inversion) the model applies before its first weight layer. z^B bounds,
 * GeoSal clipping, LIME masks and attack clipping all need it.
 */
export interface InputTransformSpec {
  /** x ↦ (invert ? 1 − x : x) · scale + offset, applied inside the model. */
  offset: number;
  scale: number;
  invert: boolean;
}

export interface InputDomain {
  /** [height, width, channels] */
  shape: [number, number, number];
  /** Lowest valid input value (before the model's own transform). */
  low: number;
  /** Highest valid input value. */
  high: number;
  /** Transform applied by the model to its input, if it has one. */
  transform?: InputTransformSpec;
}

/** Range of the values the first weight layer sees, after the model's own transform. */
export function firstLayerBounds(domain: InputDomain): { low: number; high: number } {
  const t = domain.transform;
  if (!t) return { low: domain.low, high: domain.high };
  const map = (v: number) => (t.invert ? 1 - v : v) * t.scale + t.offset;
  const a = map(domain.low);
  const b = map(domain.high);
  return { low: Math.min(a, b), high: Math.max(a, b) };
}
