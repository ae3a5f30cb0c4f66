// Guest RAM layout: blocks of SharedArrayBuffer, each seen through Buffer segments, since a
// Buffer view is limited to 4 GiB while a block can hold 16 GiB.

import { PAGE_SHIFT, PAGE_SIZE } from '../migration/protocol.js';
import { registerWasmRam, registerWasmView } from '../zero/wasm-zero.js';
import { allocatePageAligned } from './page-aligned.js';

/** A block as passed between threads (structured-cloneable). */
export interface RamBlockDesc {
  id: number;
  name: string;
  size: number;
  /** holds the block's `size` bytes from byte `base` on (page 0 on an OS page boundary) */
  ram: SharedArrayBuffer;
  base: number;
  /**
   * The block as shared WebAssembly.Memory whose buffer is `ram` (with `base` 0), when the block
   * fits one (4 GiB): zero checks then run in WebAssembly SIMD (src/zero/wasm-zero.ts).
   */
  memory?: WebAssembly.Memory;
  /** 1 bit per page, set by the vCPU with Atomics.or, taken by migration with Atomics.exchange */
  dirty: SharedArrayBuffer;
  /**
   * Which 64 KiB chunks are known to be zero without reading them (src/ram/known-zero.ts), for
   * a block whose writer keeps such a map (a PC source's mirror): pass 1 sends them unread.
   */
  knownZero?: SharedArrayBuffer;
}

/** A block holds at most 16 GiB; larger guests use several. */
export const MAX_BLOCK_SIZE = 16 * 1024 ** 3;
/**
 * Blocks are 4 GiB unless asked otherwise: the most a WebAssembly memory holds, so that every
 * block of a default guest gets the WebAssembly zero check.
 */
export const DEFAULT_BLOCK_SIZE = 4 * 1024 ** 3;
const WASM_PAGE = 64 * 1024;
/** 1 GiB per Buffer segment: a power of two, so page -> segment is a shift. */
export const SEGMENT_SHIFT = 30;
export const SEGMENT_PAGES_SHIFT = SEGMENT_SHIFT - PAGE_SHIFT;
export const SEGMENT_PAGE_MASK = (1 << SEGMENT_PAGES_SHIFT) - 1;

/**
 * Where page `page` of a block is: segment `segmentOf(page)` of its segmentViews (and friends),
 * at byte `offsetInSegment(page)`. The one place that says so, on every per-page path.
 * The shifts are written as numbers: V8 inlines these functions, but a module constant read
 * inside them is loaded again on every call (a loop over 256 Ki pages: 0.85 ms with the named
 * constants, 0.41 ms with numbers, 0.48 ms written out at the call site). The check below keeps
 * the numbers equal to the constants.
 */
export function segmentOf(page: number): number {
  return page >>> 18;
}

export function offsetInSegment(page: number): number {
  return (page & 0x3ffff) << 12;
}

if (SEGMENT_PAGES_SHIFT !== 18 || PAGE_SHIFT !== 12) {
  throw new Error('layout.ts: segmentOf and offsetInSegment must follow the segment size');
}

/** The part of a block descriptor that says where its bytes are. */
export type RamBytes = Pick<RamBlockDesc, 'ram' | 'base' | 'size' | 'memory'>;

/** Buffer views over a block, one per 1 GiB segment (the last may be shorter). */
export function segmentViews(b: RamBytes): Buffer[] {
  if (b.memory !== undefined) registerWasmRam(b.ram, b.memory);
  const views: Buffer[] = [];
  const seg = 2 ** SEGMENT_SHIFT;
  for (let off = 0; off < b.size; off += seg) {
    const view = Buffer.from(b.ram, b.base + off, Math.min(seg, b.size - off));
    if (b.memory !== undefined) registerWasmView(view, b.base + off);
    views.push(view);
  }
  return views;
}

/**
 * segmentViews as plain Uint8Arrays, for per-page `subarray` views (scatter-gather I/O): a
 * segment offset always fits in 31 bits, where a byte offset into the whole block would make V8
 * deoptimize the code that builds the view once it passes 2 GiB; and Uint8Array's `subarray`
 * makes its view natively, where Buffer's runs Node's JavaScript constructor.
 */
export function segmentBytes(b: RamBytes): Uint8Array[] {
  return segmentViews(b).map((v) => new Uint8Array(v.buffer, v.byteOffset, v.length));
}

/** segmentViews as Int32Arrays (page 0 is page-aligned, so word-aligned). */
export function segmentWords(b: RamBytes): Int32Array[] {
  return segmentViews(b).map((v) => new Int32Array(v.buffer, v.byteOffset, v.length >>> 2));
}

export function pagesOf(size: number): number {
  return Math.ceil(size / PAGE_SIZE);
}

export function dirtyWords(pages: number): number {
  return Math.ceil(pages / 32);
}

/** Split `totalBytes` into blocks of at most `blockSize` (page-aligned). Names follow QEMU's pc.ram. */
export function planBlocks(
  totalBytes: number,
  blockSize = DEFAULT_BLOCK_SIZE,
): { name: string; size: number }[] {
  if (totalBytes % PAGE_SIZE !== 0) {
    throw new Error(`RAM size ${totalBytes} is not a multiple of the page size ${PAGE_SIZE}`);
  }
  if (blockSize % PAGE_SIZE !== 0 || blockSize <= 0 || blockSize > MAX_BLOCK_SIZE) {
    throw new Error(
      `RAM block size ${blockSize} must be a positive multiple of ${PAGE_SIZE} up to ${MAX_BLOCK_SIZE}`,
    );
  }
  const out: { name: string; size: number }[] = [];
  for (let off = 0, i = 0; off < totalBytes; off += blockSize, i++) {
    out.push({
      name: i === 0 ? 'pc.ram' : `pc.ram.${i}`,
      size: Math.min(blockSize, totalBytes - off),
    });
  }
  return out;
}

export function allocateBlocks(totalBytes: number, blockSize = DEFAULT_BLOCK_SIZE): RamBlockDesc[] {
  return planBlocks(totalBytes, blockSize).map((p, id) => ({
    id,
    name: p.name,
    size: p.size,
    ...allocateRam(p.size),
    dirty: new SharedArrayBuffer(dirtyWords(pagesOf(p.size)) * 4),
  }));
}

/** A block's bytes: a shared WebAssembly.Memory (page-aligned, as mmap gives it) when it fits. */
function allocateRam(size: number): Pick<RamBlockDesc, 'ram' | 'base' | 'memory'> {
  if (size <= DEFAULT_BLOCK_SIZE) {
    const pages = Math.ceil(size / WASM_PAGE);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    return { ram: memory.buffer as SharedArrayBuffer, base: 0, memory };
  }
  const { sab, base } = allocatePageAligned(size);
  return { ram: sab, base };
}
