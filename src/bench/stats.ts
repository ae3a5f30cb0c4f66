// Small statistics for benchmark reports.

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function minMax(xs: number[]): [number, number] {
  return [Math.min(...xs), Math.max(...xs)];
}

/** Median with min and max; null for no values. */
export function stat(xs: number[]): { median: number; min: number; max: number } | null {
  if (xs.length === 0) return null;
  const [min, max] = minMax(xs);
  return { median: median(xs), min, max };
}
