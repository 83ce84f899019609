/** The scalar and small-array parts of an Explanation's extras, for JSON output and reports. */
export function scalarExtras(extras: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extras)) {
    if (typeof v === 'number') out[k] = Number.isFinite(v) ? Number(v.toPrecision(6)) : v;
    else if (typeof v === 'string' || typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v) && v.length <= 64 && v.every((e) => typeof e === 'number' || typeof e === 'boolean')) {
      out[k] = v.map((e) => (typeof e === 'number' ? Number(e.toPrecision(6)) : e));
    }
  }
  return out;
}
