// 64-bit device addresses as two u32 halves.
//
// Descriptors carry 64-bit addresses. The hot path (filling hundreds of COMPVAL descriptors per
// packet) writes the low and high 32-bit words into an Int32Array/Uint32Array view and never
// builds a BigInt; everything else may use `bigint` or a safe-integer `number`.

/** An address as the slow-path APIs accept it. */
export type Address = bigint | number;

export const TWO_32 = 4294967296;

/**
 * The unsigned value of a 32-bit word (an Int32Array element, or any number, taken modulo 2^32).
 * Hot paths use this rather than `x >>> 0`: V8 optimizes `>>> 0` for the small values it has seen
 * and deoptimizes the first time a word reaches 2^31 (a RAM offset past 2 GiB), recompiling in the
 * middle of a migration; this form is a double from the start.
 */
export function uint32(x: number): number {
  const s = x | 0;
  return s + TWO_32 * (s >>> 31);
}

/** The high u32 word of an address below 2^53 (an Int32Array store keeps only the low one). */
export function hiWord(a: number): number {
  return (a / TWO_32) | 0;
}

/** Join two u32 halves into a number; exact below 2^53, which all emulated addresses are. */
export function joinAddrNumber(lo: number, hi: number): number {
  return (hi >>> 0) * TWO_32 + (lo >>> 0);
}

/** Normalise an address to bigint, rejecting negative or fractional numbers. */
export function toBigAddr(a: Address): bigint {
  if (typeof a === 'bigint') {
    if (a < 0n || a > 0xffffffffffffffffn) throw new RangeError(`address ${a} is not a u64`);
    return a;
  }
  if (!Number.isSafeInteger(a) || a < 0) {
    throw new RangeError(`address ${a} is not a non-negative safe integer`);
  }
  return BigInt(a);
}
