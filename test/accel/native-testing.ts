// The native addon's test-only entry points: read and write bytes at an address of this
// process, and MOVDIR64B into ordinary memory (only tests use them, so this wrapper is test
// code). The FIFO test device uses them to execute descriptors on the real
// virtual addresses the driver puts in them, as DSA does through SVA.
//
// peek/poke go through process_vm_readv/writev, so an address that is not mapped (or not
// readable) gives a short count instead of crashing the process: the test device turns that
// into a PAGE_FAULT_NOBOF partial completion, as hardware does.

import { loadAddon, type NativeDsa } from '../../src/accel/hw/addon.js';

function native(): NativeDsa {
  const n = loadAddon();
  if (!n) throw new Error('the native addon is not available');
  return n;
}

/** Up to `length` bytes at `address`: fewer when a page on the way is not readable. */
export function peek(address: number, length: number): Buffer {
  return native().testing.peek(address, length);
}

/**
 * Write `bytes` at `address`; with `statusByteLast`, every byte but the first, then the first
 * (a completion record's status byte). Returns the number of bytes written.
 */
export function poke(address: number, bytes: ArrayBufferView, statusByteLast = false): number {
  return native().testing.poke(address, bytes, statusByteLast);
}

/** MOVDIR64B of `src`'s first 64 bytes to `dst` (64-byte aligned; the CPU must have it). */
export function movdir64bTo(dst: ArrayBufferView, src: ArrayBufferView): number {
  return native().testing.movdir64b(dst, src);
}

/** The address of a view's first byte. */
export function addressOf(view: ArrayBufferView): number {
  return native().address(view);
}
