// Reading attributes of an accel-config JSON object, for the configuration's validation:
// problems are pushed to `errors` (unusable) or `warnings` (usable as adjusted).

export function attributeNames(list: string): Set<string> {
  return new Set(list.trim().split(/\s+/));
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0 && Number.isInteger(n);
}

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

export function intAttr(
  obj: Record<string, unknown>,
  key: string,
  where: string,
  errors: string[],
  min: number,
  max: number,
): number | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    errors.push(`${where}: ${key} must be an integer, got ${JSON.stringify(v)}`);
    return undefined;
  }
  if (v < min || v > max) {
    errors.push(`${where}: ${key} ${v} is out of range (${min}..${max})`);
    return undefined;
  }
  return v;
}

export function unknownAttrs(
  obj: Record<string, unknown>,
  known: Set<string>,
  where: string,
  warnings: string[],
): void {
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) warnings.push(`${where}: unknown attribute '${k}' ignored`);
  }
}

/** A size attribute the kernel keeps as a power of two: rounded up, with a warning. */
export function pow2Attr(value: number, key: string, where: string, warnings: string[]): number {
  if (isPow2(value)) return value;
  const p = nextPow2(value);
  warnings.push(`${where}: ${key} ${value} rounded up to ${p} (the kernel keeps powers of two)`);
  return p;
}
