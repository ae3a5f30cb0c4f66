// Arithmetic on byte offsets that pass 2^31, without deoptimizing the hot code that does it.
//
// V8 compiles `page * 4096` as small-integer arithmetic while every result it has seen fits in
// 31 bits, and deoptimizes the function the first time one does not: for a guest over 2 GiB
// that is in the middle of a migration, followed by a second optimizing compile (measured with
// --trace-deopt: the driver's descriptor fill, the channel's whole-packet check and the emulated
// address space's windows were each compiled twice). With a factor that is not a small integer
// the multiplication is a double from its first use. Powers of two keep it exact.

const TWO_32 = 4294967296;

/** `a * b` for non-negative integers, exact while the product is below 2^53. */
export function mulWide(a: number, b: number): number {
  return (a * TWO_32 * b) / TWO_32;
}
