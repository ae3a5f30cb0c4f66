// The copies between a PC's RAM (inside v86) and its mirror (the engine's RAM block), on plain
// buffers: what a dirty sync finds and flags, and what a destination zeroes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SYNC_CHUNK_BYTES,
  SYNC_STRIPE_BYTES,
  syncMirror,
  syncMirrorPart,
  zeroRam,
} from '../../src/machine/pc/mirror-sync.js';
import { preallocatePages } from '../../src/ram/fill.js';
import { createKnownZeroMap } from '../../src/ram/known-zero.js';

const PAGE = 4096;
const PAGES = 64 * 4; // 1 MiB: several 64 KiB chunks

function setup(): { guest: Buffer; mirror: Buffer; dirty: Int32Array; zero: Uint8Array } {
  return {
    zero: new Uint8Array(createKnownZeroMap(PAGES * PAGE)),
    guest: Buffer.alloc(PAGES * PAGE),
    mirror: Buffer.from(new SharedArrayBuffer(PAGES * PAGE)),
    dirty: new Int32Array(new SharedArrayBuffer(PAGES / 8)),
  };
}

function dirtyPages(dirty: Int32Array): number[] {
  const out: number[] = [];
  for (let p = 0; p < dirty.length * 32; p++) if (dirty[p >>> 5] & (1 << (p & 31))) out.push(p);
  return out;
}

test('a dirty sync copies exactly the pages that changed and sets their bits', () => {
  const { guest, mirror, dirty, zero } = setup();
  assert.equal(syncMirror(guest, mirror, dirty, zero), 0, 'zero RAM and a zero mirror agree');
  assert.deepEqual(dirtyPages(dirty), []);
  // First and last byte of a page, a page on each side of a chunk boundary, the last page.
  const chunkPages = SYNC_CHUNK_BYTES / PAGE;
  const touched = [0, 3, chunkPages - 1, chunkPages, PAGES - 1];
  guest[0] = 1;
  guest[3 * PAGE + PAGE - 1] = 2;
  guest[(chunkPages - 1) * PAGE + 100] = 3;
  guest[chunkPages * PAGE] = 4;
  guest[(PAGES - 1) * PAGE + 7] = 5;
  assert.equal(syncMirror(guest, mirror, dirty, zero), touched.length);
  assert.deepEqual(dirtyPages(dirty), touched);
  assert.ok(guest.equals(mirror), 'the mirror now holds the guest RAM');
  // Nothing changed since: the next sync finds nothing and sets no new bit.
  dirty.fill(0);
  assert.equal(syncMirror(guest, mirror, dirty, zero), 0);
  assert.deepEqual(dirtyPages(dirty), []);
});

test('a page rewritten with the bytes it had is not dirty', () => {
  const { guest, mirror, dirty, zero } = setup();
  guest.fill(9, 5 * PAGE, 6 * PAGE);
  syncMirror(guest, mirror, dirty, zero);
  dirty.fill(0);
  guest.fill(9, 5 * PAGE, 6 * PAGE);
  assert.equal(syncMirror(guest, mirror, dirty, zero), 0);
});

test('a chunk is compared against zeros only while its mirror is zero', () => {
  const { guest, mirror, dirty, zero } = setup();
  assert.ok(
    zero.every((z) => z === 1),
    'a fresh mirror is zero',
  );
  guest[PAGE * 20] = 1;
  assert.equal(syncMirror(guest, mirror, dirty, zero), 1);
  const chunk = Math.floor((PAGE * 20) / SYNC_CHUNK_BYTES);
  assert.equal(zero[chunk], 0, 'the chunk took data: compared with the mirror from now on');
  assert.equal(zero.filter((z) => z === 0).length, 1, 'the other chunks are still known zero');
});

test('a page that became zero again is copied (zero) and flagged', () => {
  const { guest, mirror, dirty, zero } = setup();
  guest.fill(7, 10 * PAGE, 11 * PAGE);
  syncMirror(guest, mirror, dirty, zero);
  dirty.fill(0);
  guest.fill(0, 10 * PAGE, 11 * PAGE);
  assert.equal(syncMirror(guest, mirror, dirty, zero), 1);
  assert.deepEqual(dirtyPages(dirty), [10]);
  assert.equal(
    mirror.subarray(10 * PAGE, 11 * PAGE).some((b) => b !== 0),
    false,
  );
});

test('guest RAM and a mirror of another size are refused', () => {
  const { guest, dirty, zero } = setup();
  assert.throws(
    () => syncMirror(guest, Buffer.alloc(PAGE), dirty, zero),
    /guest RAM 1048576 bytes, its mirror 4096/,
  );
});

test('zeroRam writes only the pages that are not zero', () => {
  const ram = Buffer.alloc(PAGES * PAGE);
  ram[PAGE + 1] = 1;
  ram[(PAGES - 2) * PAGE] = 1;
  assert.equal(zeroRam(ram), 2);
  assert.equal(
    ram.some((b) => b !== 0),
    false,
  );
  assert.equal(zeroRam(ram), 0);
});

test('preallocatePages writes every page without changing a byte', () => {
  const ram = Buffer.alloc(PAGES * PAGE);
  ram[PAGE + 5] = 7;
  const before = Buffer.from(ram);
  preallocatePages(ram);
  assert.ok(ram.equals(before));
});

test("two threads' shares of a sync (stripes) find what one sync of the whole finds", () => {
  const size = 4 * SYNC_STRIPE_BYTES + 3 * SYNC_CHUNK_BYTES; // a last stripe cut short
  const make = (): ReturnType<typeof setup> => ({
    zero: new Uint8Array(createKnownZeroMap(size)),
    guest: Buffer.alloc(size),
    mirror: Buffer.from(new SharedArrayBuffer(size)),
    dirty: new Int32Array(new SharedArrayBuffer(Math.ceil(size / PAGE / 32) * 4)),
  });
  const a = make();
  const b = make();
  const pages = size / PAGE;
  for (const p of [0, 1, 255, 256, 300, 511, 512, 700, pages - 1]) {
    a.guest[p * PAGE + 5] = (p % 250) + 1;
    b.guest[p * PAGE + 5] = (p % 250) + 1;
  }
  const whole = syncMirror(a.guest, a.mirror, a.dirty, a.zero);
  const even = syncMirrorPart(b.guest, b.mirror, b.dirty, b.zero, 0, 2);
  const odd = syncMirrorPart(b.guest, b.mirror, b.dirty, b.zero, 1, 2);
  assert.ok(even > 0 && odd > 0, 'both shares found pages');
  assert.equal(even + odd, whole);
  assert.deepEqual(dirtyPages(b.dirty), dirtyPages(a.dirty));
  assert.ok(b.mirror.equals(a.mirror));
  assert.deepEqual([...b.zero], [...a.zero]);
  assert.throws(() => syncMirror(b.guest, b.mirror, b.dirty, b.zero, 100, 4096), /64 KiB chunks/);
});
