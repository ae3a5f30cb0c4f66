// The emulated devices' address space: what a PASID's virtual address space is to real DSA.
//
// Memory the device may touch (guest RAM blocks, descriptor lists, completion records) is a
// SharedArrayBuffer *registered* here and gets a 64-bit device address:
//
//   address = 0x1000_0000_0000 + slot * 2^40 + offset      (slot 0..255, offset < 2^40)
//
// so the high u32 word alone names the region: hi = 0x1000 + slot * 0x100 + (offset >> 32).
// The region table lives in a SharedArrayBuffer, so every thread sees which slots are mapped
// and how long they are; the SharedArrayBuffer objects themselves reach the engines over a
// BroadcastChannel (postMessage is fine here: registration is off the hot path). A registrar
// posts the mapping *before* publishing the slot in the table and bumping the generation, and
// BroadcastChannel delivery to the other threads' queues is synchronous, so an engine that sees
// the new generation finds the message with receiveMessageOnPort (no event loop needed).
//
// An address outside every mapped region, past a region's end, or on a page marked not present
// by fault injection fails translation: the engine then ends the descriptor with
// PAGE_FAULT_NOBOF, fault_addr and bytes_completed, as hardware does without block-on-fault.

import { randomUUID } from 'node:crypto';
import { BroadcastChannel, receiveMessageOnPort } from 'node:worker_threads';
import { TWO_32, type Address, toBigAddr, uint32 } from '../address.js';
import { mulWide } from '../../../util/wide-math.js';
import { registerWasmRam, registerWasmView, wasmMemoryOf } from '../../../zero/wasm-zero.js';

export const REGION_SLOTS = 256;
/** Bytes of address space per region: 1 TiB, far more than a RAM block can be. */
export const REGION_SPAN = 2 ** 40;
export const REGION_HI_BASE = 0x1000;
/** Fault-injection granularity (the device's page size). */
export const FAULT_PAGE = 4096;
export const MAX_FAULTS = 64;

// Table layout (Int32 words).
const H_GEN = 0;
const H_FAULTS = 1;
const REGION_WORD = 16;
const REGION_STRIDE = 8; // state, lenLo, lenHi, version, owner
const R_STATE = 0;
const R_LEN_LO = 1;
const R_LEN_HI = 2;
const R_VERSION = 3;
const R_OWNER = 4;
const FAULT_WORD = REGION_WORD + REGION_SLOTS * REGION_STRIDE;
const FAULT_STRIDE = 4; // state, slot, page, remaining (-1 = until cleared)
const TABLE_WORDS = FAULT_WORD + MAX_FAULTS * FAULT_STRIDE;

const FREE = 0;
const RESERVED = 1;
const MAPPED = 2;

/** Buffer windows over a region: window k starts at k GiB and spans up to 4 GiB. */
const WINDOW_STEP = 2 ** 30;
const WINDOW_MAX = 2 ** 32;

/** What crosses threads: structured-cloneable. */
export interface AddressSpaceHandle {
  table: SharedArrayBuffer;
  channel: string;
}

/** A registered region as its registrar sees it. */
export interface Region {
  slot: number;
  /** The table version of the slot when registered (a reused slot has a newer one). */
  version: number;
  /** Who registered it (an accelerator's id; 0 = nobody in particular). */
  owner: number;
  /** Device address of byte 0 (a safe integer). */
  base: number;
  /** High u32 word of `base`; the low word is 0. */
  baseHi: number;
  length: number;
  sab: SharedArrayBuffer;
}

interface MapMsg {
  op: 'map' | 'unmap';
  slot: number;
  version: number;
  sab?: SharedArrayBuffer;
  /** Guest RAM's WebAssembly.Memory: the engines' zero checks then run in wasm over it. */
  memory?: WebAssembly.Memory;
}

/** A region as an engine holds it: the memory plus lazily made views. */
export class RegionMemory {
  // Sized up front: an array that grows when a migration first reaches a window past the
  // first GiB makes V8 throw away the engine's optimized code (an out-of-bounds read). Filled,
  // so that every region's arrays hold objects from the start: a new region's array of holes
  // would be another kind of array to V8 than the warmed-up one's ("wrong map").
  private readonly bufs: (Buffer | undefined)[];
  private readonly i32s: (Int32Array | undefined)[];
  constructor(
    readonly sab: SharedArrayBuffer,
    readonly version: number,
    private readonly memory?: WebAssembly.Memory,
  ) {
    const windows = Math.max(1, Math.ceil(sab.byteLength / WINDOW_STEP));
    this.bufs = new Array<Buffer | undefined>(windows).fill(undefined);
    this.i32s = new Array<Int32Array | undefined>(windows).fill(undefined);
    if (memory !== undefined) registerWasmRam(sab, memory);
  }

  /** Buffer window containing byte `off` (valid for at least 2 GiB from `off`). */
  buffer(k: number): Buffer {
    let b = this.bufs[k];
    if (!b) {
      const start = k * WINDOW_STEP;
      b = Buffer.from(this.sab, start, Math.min(this.sab.byteLength - start, WINDOW_MAX));
      if (this.memory !== undefined) registerWasmView(b, start);
      this.bufs[k] = b;
    }
    return b;
  }

  int32(k: number): Int32Array {
    let a = this.i32s[k];
    if (!a) {
      const start = k * WINDOW_STEP;
      const len = Math.min(this.sab.byteLength - start, WINDOW_MAX - 4);
      a = new Int32Array(this.sab, start, Math.floor(len / 4));
      this.i32s[k] = a;
    }
    return a;
  }
}

/** Window index and in-window offset of byte `off` of a region. */
export function windowOf(off: number): number {
  return Math.floor(off / WINDOW_STEP);
}
export function windowBase(k: number): number {
  return mulWide(k, WINDOW_STEP); // 2 GiB and up: see wide-math.ts
}

/**
 * Result of a translation, reused (no allocation per access). After `translate` returns, the
 * first `ok` bytes of the range are accessible at `buf[off..]` (and `i32[off/4..]`), and when
 * `ok < len` the access faults at device address `faultAddr` (split in lo/hi).
 */
export class Translation {
  region: RegionMemory | undefined = undefined;
  window = 0;
  // Offsets reach 2^32. -0 is a double to V8, so these fields hold doubles from the start; a
  // field that starts as a small integer is re-laid-out the first time an offset passes 2^31,
  // and the engine's optimized code that read it is thrown away mid-migration.
  /** Offset of the range in `region.buffer(window)`. */
  off = -0;
  /** Bytes accessible before the first fault (== the length asked for when there is none). */
  ok = 0;
  faultLo = -0;
  faultHi = 0;
  /** Index of the injected fault that stopped the access, or -1. */
  faultEntry = -1;

  get buf(): Buffer {
    return this.region!.buffer(this.window);
  }
  get i32(): Int32Array {
    return this.region!.int32(this.window);
  }
}

const spaces = new Map<string, AddressSpace>();

/** One thread's view of an address space. */
export class AddressSpace {
  readonly words: Int32Array;
  /**
   * Regions this thread registered, by owner and buffer identity. Weak: a thread that drops a
   * RAM block must not keep it alive through a registration.
   */
  private readonly registered = new Map<number, WeakMap<SharedArrayBuffer, Region>>();
  /** Memory of every mapped region, for threads that translate (engines). */
  private readonly memory: (RegionMemory | undefined)[] = new Array(REGION_SLOTS);
  private receiver: BroadcastChannel | undefined;
  private seenGen = -1;

  private constructor(readonly handle: AddressSpaceHandle) {
    this.words = new Int32Array(handle.table);
  }

  /** A new, empty address space. */
  static create(): AddressSpace {
    const handle: AddressSpaceHandle = {
      table: new SharedArrayBuffer(TABLE_WORDS * 4),
      channel: `livemig-dsa-as-${randomUUID()}`,
    };
    const as = new AddressSpace(handle);
    spaces.set(handle.channel, as);
    return as;
  }

  /** This thread's view of the address space `handle` names (one per thread and space). */
  static attach(handle: AddressSpaceHandle): AddressSpace {
    let as = spaces.get(handle.channel);
    if (!as) {
      as = new AddressSpace(handle);
      spaces.set(handle.channel, as);
    }
    return as;
  }

  /**
   * Register `sab` for `owner`; returns the region this thread registered before for the same
   * owner and buffer if it is still mapped. Registration is synchronous and visible to the
   * engines before the next descriptor they run.
   */
  register(sab: SharedArrayBuffer, owner = 0): Region {
    const existing = this.regionOf(sab, owner);
    if (existing) return existing;
    if (sab.byteLength === 0 || sab.byteLength >= REGION_SPAN) {
      throw new RangeError(`cannot register a ${sab.byteLength}-byte buffer`);
    }
    const w = this.words;
    let slot = -1;
    for (let s = 0; s < REGION_SLOTS; s++) {
      const st = REGION_WORD + s * REGION_STRIDE + R_STATE;
      if (Atomics.compareExchange(w, st, FREE, RESERVED) === FREE) {
        slot = s;
        break;
      }
    }
    if (slot < 0) {
      throw new Error(
        `the device address space is full (${REGION_SLOTS} registered regions); unregister unused memory`,
      );
    }
    const r = REGION_WORD + slot * REGION_STRIDE;
    const version = Atomics.add(w, r + R_VERSION, 1) + 1;
    Atomics.store(w, r + R_LEN_LO, sab.byteLength % TWO_32);
    Atomics.store(w, r + R_LEN_HI, Math.floor(sab.byteLength / TWO_32));
    Atomics.store(w, r + R_OWNER, owner);
    const memory = wasmMemoryOf(sab);
    this.post({ op: 'map', slot, version, sab, memory });
    // Only translating threads (engines) hold the memory itself.
    if (this.receiver) this.memory[slot] = new RegionMemory(sab, version, memory);
    Atomics.store(w, r + R_STATE, MAPPED);
    Atomics.add(w, H_GEN, 1);
    const baseHi = REGION_HI_BASE + slot * (REGION_SPAN / TWO_32);
    const region: Region = {
      slot,
      version,
      owner,
      base: baseHi * TWO_32,
      baseHi,
      length: sab.byteLength,
      sab,
    };
    let m = this.registered.get(owner);
    if (!m) this.registered.set(owner, (m = new WeakMap()));
    m.set(sab, region);
    return region;
  }

  /** The still-mapped region this thread registered for `sab` and `owner`, if any. */
  regionOf(sab: SharedArrayBuffer, owner = 0): Region | undefined {
    const m = this.registered.get(owner);
    const region = m?.get(sab);
    if (!region) return undefined;
    const r = REGION_WORD + region.slot * REGION_STRIDE;
    if (
      Atomics.load(this.words, r + R_STATE) === MAPPED &&
      Atomics.load(this.words, r + R_VERSION) === region.version
    ) {
      return region;
    }
    m!.delete(sab); // unmapped by its owner from another thread
    return undefined;
  }

  /** Any still-mapped region this thread registered for `sab`, whoever the owner. */
  findRegion(sab: SharedArrayBuffer): Region | undefined {
    for (const owner of this.registered.keys()) {
      const r = this.regionOf(sab, owner);
      if (r) return r;
    }
    return undefined;
  }

  /** Remove a region this thread registered. Later accesses to it fault. */
  unregister(sab: SharedArrayBuffer, owner = 0): void {
    const region = this.regionOf(sab, owner);
    if (!region) return;
    this.registered.get(owner)!.delete(sab);
    this.unmapSlot(region.slot, region.version);
  }

  /** Remove every region registered for `owner`, by any thread. */
  unregisterOwner(owner: number): void {
    for (let s = 0; s < REGION_SLOTS; s++) {
      const r = REGION_WORD + s * REGION_STRIDE;
      if (Atomics.load(this.words, r + R_STATE) !== MAPPED) continue;
      if (Atomics.load(this.words, r + R_OWNER) !== owner) continue;
      this.unmapSlot(s, Atomics.load(this.words, r + R_VERSION));
    }
    this.registered.delete(owner);
  }

  private unmapSlot(slot: number, version: number): void {
    const w = this.words;
    const r = REGION_WORD + slot * REGION_STRIDE;
    if (Atomics.load(w, r + R_VERSION) !== version) return;
    if (Atomics.compareExchange(w, r + R_STATE, MAPPED, RESERVED) !== MAPPED) return;
    this.post({ op: 'unmap', slot, version });
    this.memory[slot] = undefined;
    this.clearFaults(slot);
    Atomics.add(w, H_GEN, 1);
    Atomics.store(w, r + R_STATE, FREE);
  }

  private post(msg: MapMsg): void {
    // A short-lived channel: a thread that only registers must not accumulate other
    // threads' messages in a channel it never reads.
    const bc = new BroadcastChannel(this.handle.channel);
    bc.postMessage(msg);
    bc.close();
  }

  /** Start receiving mappings made by other threads (engines call this once). */
  enableTranslation(): void {
    if (this.receiver) return;
    this.receiver = new BroadcastChannel(this.handle.channel);
    (this.receiver as unknown as { unref?: () => void }).unref?.();
    this.sync(true);
  }

  /** Stop receiving (engine shutdown). */
  close(): void {
    this.receiver?.close();
    this.receiver = undefined;
    spaces.delete(this.handle.channel);
  }

  /** Apply pending mapping messages if the table changed since the last call. */
  sync(force = false): void {
    const gen = Atomics.load(this.words, H_GEN);
    if (!force && gen === this.seenGen) return;
    this.seenGen = gen;
    const rx = this.receiver;
    if (!rx) return;
    for (;;) {
      const m = receiveMessageOnPort(rx as never) as { message: MapMsg } | undefined;
      if (!m) break;
      const msg = m.message;
      const cur = this.memory[msg.slot];
      if (msg.op === 'map' && msg.sab) {
        if (!cur || cur.version < msg.version)
          this.memory[msg.slot] = new RegionMemory(msg.sab, msg.version, msg.memory);
      } else if (msg.op === 'unmap' && cur && cur.version === msg.version) {
        this.memory[msg.slot] = undefined;
      }
    }
  }

  /** The memory of mapped slot `slot`, current with the table, or undefined. */
  private regionMemory(slot: number): RegionMemory | undefined {
    const r = REGION_WORD + slot * REGION_STRIDE;
    if (Atomics.load(this.words, r + R_STATE) !== MAPPED) return undefined;
    const version = Atomics.load(this.words, r + R_VERSION);
    let mem = this.memory[slot];
    if (!mem || mem.version !== version) {
      this.sync(true);
      mem = this.memory[slot];
      if (!mem || mem.version !== version) return undefined;
    }
    return mem;
  }

  /**
   * Translate the `len`-byte range at device address (lo, hi). `len` must be ≤ 2^31. Fills
   * `t` and returns true when the whole range is accessible; otherwise `t.ok` bytes are, and
   * the access faults at (t.faultLo, t.faultHi). `present`: injected not-present pages are
   * taken as present (block-on-fault resolved them).
   */
  translate(lo: number, hi: number, len: number, t: Translation, present = false): boolean {
    hi = uint32(hi);
    lo = uint32(lo);
    t.faultEntry = -1;
    const rel = hi - REGION_HI_BASE;
    const slot = rel >>> 8;
    const mem = rel >= 0 && slot < REGION_SLOTS ? this.regionMemory(slot) : undefined;
    if (!mem) {
      t.region = undefined;
      t.ok = 0;
      t.faultLo = lo;
      t.faultHi = hi;
      return false;
    }
    const off = (rel & 0xff) * TWO_32 + lo;
    const size = mem.sab.byteLength;
    let ok = off >= size ? 0 : Math.min(len, size - off);
    if (!present && Atomics.load(this.words, H_FAULTS) > 0) {
      ok = this.injectedFaultLimit(slot, off, ok, t);
    }
    t.region = mem;
    const k = windowOf(Math.min(off, size - 1));
    t.window = k;
    t.off = off - windowBase(k);
    t.ok = ok;
    if (ok === len) return true;
    const faultOff = off + ok;
    t.faultLo = faultOff % TWO_32;
    t.faultHi = hi - (rel & 0xff) + Math.floor(faultOff / TWO_32);
    return false;
  }

  /** Bytes accessible in [off, off+ok) before an injected not-present page. */
  private injectedFaultLimit(slot: number, off: number, ok: number, t: Translation): number {
    const w = this.words;
    let limit = ok;
    for (let i = 0; i < MAX_FAULTS; i++) {
      const f = FAULT_WORD + i * FAULT_STRIDE;
      if (Atomics.load(w, f) !== MAPPED || Atomics.load(w, f + 1) !== slot) continue;
      const start = Atomics.load(w, f + 2) * FAULT_PAGE;
      const end = start + FAULT_PAGE;
      if (end <= off || start >= off + limit) continue;
      const at = Math.max(start, off) - off;
      if (at < limit || (at === limit && t.faultEntry < 0)) {
        limit = at;
        t.faultEntry = i;
      }
    }
    return limit;
  }

  /** Count a reported injected fault: a fault with a trigger count disappears at 0. */
  consumeFault(entry: number): void {
    if (entry < 0) return;
    const f = FAULT_WORD + entry * FAULT_STRIDE;
    const w = this.words;
    if (Atomics.load(w, f + 3) < 0) return;
    if (Atomics.sub(w, f + 3, 1) === 1) {
      if (Atomics.compareExchange(w, f, MAPPED, FREE) === MAPPED) Atomics.sub(w, H_FAULTS, 1);
    }
  }

  /**
   * Mark the device page containing `address` not present: accesses fault there until it has
   * been reported `times` times (default: until cleared), like a page the device must not touch
   * without block-on-fault.
   */
  injectFault(address: Address, times = -1): void {
    const a = Number(toBigAddr(address));
    const rel = Math.floor(a / TWO_32) - REGION_HI_BASE;
    const slot = rel >>> 8;
    if (rel < 0 || slot >= REGION_SLOTS) {
      throw new RangeError(`address 0x${a.toString(16)} is not in the device address space`);
    }
    const off = a - (REGION_HI_BASE + slot * 0x100) * TWO_32;
    const page = Math.floor(off / FAULT_PAGE);
    const w = this.words;
    for (let i = 0; i < MAX_FAULTS; i++) {
      const f = FAULT_WORD + i * FAULT_STRIDE;
      if (Atomics.compareExchange(w, f, FREE, RESERVED) !== FREE) continue;
      Atomics.store(w, f + 1, slot);
      Atomics.store(w, f + 2, page);
      Atomics.store(w, f + 3, times);
      Atomics.store(w, f, MAPPED);
      Atomics.add(w, H_FAULTS, 1);
      return;
    }
    throw new Error(`at most ${MAX_FAULTS} injected faults can be active`);
  }

  /** Remove injected faults (of one region slot, or all). */
  clearFaults(slot = -1): void {
    const w = this.words;
    for (let i = 0; i < MAX_FAULTS; i++) {
      const f = FAULT_WORD + i * FAULT_STRIDE;
      if (Atomics.load(w, f) !== MAPPED) continue;
      if (slot >= 0 && Atomics.load(w, f + 1) !== slot) continue;
      if (Atomics.compareExchange(w, f, MAPPED, FREE) === MAPPED) Atomics.sub(w, H_FAULTS, 1);
    }
  }

  /** Number of regions mapped (all threads). */
  mappedRegions(): number {
    let n = 0;
    for (let s = 0; s < REGION_SLOTS; s++) {
      if (Atomics.load(this.words, REGION_WORD + s * REGION_STRIDE + R_STATE) === MAPPED) n++;
    }
    return n;
  }
}
