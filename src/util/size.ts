// Sizes in QEMU's `-m` notation: a number with an optional K/M/G/T suffix (binary units).
// A bare number means mebibytes for `-m` in QEMU; livemig follows that for --ram.

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/** Parse "64M", "4G", "512k" into bytes. `bareUnit` is the unit of a number without suffix. */
export function parseSize(text: string, bareUnit: 'B' | 'M' = 'B'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgtBKMGT]?)(?:i?[bB])?\s*$/.exec(text);
  if (!m) {
    throw new Error(
      `invalid size '${text}': expected a number with an optional K, M, G or T suffix`,
    );
  }
  const suffix = m[2].toUpperCase();
  const unit = suffix === '' ? UNITS[bareUnit] : UNITS[suffix];
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(Math.round(bytes)) || bytes <= 0) {
    throw new Error(`invalid size '${text}': must be a positive size`);
  }
  return Math.round(bytes);
}

/** 1536 -> "1.5 KiB"; used in human-readable output only. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}
