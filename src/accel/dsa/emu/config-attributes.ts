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

/** 'a work queue', 'an engine'. */
export function article(noun: string): string {
  return /^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`;
}

/**
 * The M of `name` (wqN.M, engineN.M or groupN.M: a form the schema checked) when N is the
 * device's number, M is below `count` (how many the device has) and M was not seen before;
 * otherwise undefined, with an error that says which. `noun` is what it names: 'work queue'.
 */
export function memberIndex(
  name: string,
  noun: string,
  dev: { name: string; id: number },
  count: number,
  seen: Set<number>,
  errors: string[],
): number | undefined {
  const [, prefix, n, m] = /^([a-z]+)(\d+)\.(\d+)$/.exec(name) ?? [];
  const index = Number(m);
  const range = `${prefix}${dev.id}.0 .. ${prefix}${dev.id}.${count - 1}`;
  if (Number(n) !== dev.id) {
    errors.push(
      `${dev.name}: ${noun} '${name}' does not name ${article(noun)} of ${dev.name} (${range})`,
    );
  } else if (index >= count) {
    errors.push(`${dev.name}/${name}: ${dev.name} has ${count} ${noun}s (${range})`);
  } else if (seen.has(index)) {
    errors.push(`${dev.name}/${name}: the ${noun} appears twice`);
  } else {
    seen.add(index);
    return index;
  }
  return undefined;
}

/** A size attribute the kernel keeps as a power of two: rounded up, with a warning. */
export function pow2Attr(value: number, key: string, where: string, warnings: string[]): number {
  if (isPow2(value)) return value;
  const p = nextPow2(value);
  warnings.push(`${where}: ${key} ${value} rounded up to ${p} (the kernel keeps powers of two)`);
  return p;
}
