// write-log.ts and the logged dirty sync (mirror-sync.ts syncLoggedPages), on shared memory laid
// out as the vCPU thread lays it out: the log at one place, guest RAM at another.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALWAYS_COMPARED_BYTES,
  LOG_BYTES,
  WriteLog,
  markRange,
} from '../../src/machine/pc/write-log.js';
import { syncLoggedPages } from '../../src/machine/pc/mirror-sync.js';
import { createKnownZeroMap } from '../../src/ram/known-zero.js';

const PAGE = 4096;
const LOG_BASE = 0;
const GUEST_BASE = LOG_BYTES; // guest RAM right after the log
const GUEST_BYTES = 4 * 1024 * 1024;

function setup(): {
  memory: SharedArrayBuffer;
  guest: Buffer;
  mirror: Buffer;
  dirty: Int32Array;
  zero: Uint8Array;
  log: WriteLog;
} {
  const memory = new SharedArrayBuffer(GUEST_BASE + GUEST_BYTES);
  return {
    memory,
    guest: Buffer.from(memory, GUEST_BASE, GUEST_BYTES),
    mirror: Buffer.from(new SharedArrayBuffer(GUEST_BYTES)),
    dirty: new Int32Array(new SharedArrayBuffer(GUEST_BYTES / PAGE / 8)),
    zero: new Uint8Array(createKnownZeroMap(GUEST_BYTES)),
    log: new WriteLog(memory, LOG_BASE, GUEST_BASE, GUEST_BYTES),
  };
}

/** As the vCPU thread writes: the bytes, then the mark. */
function write(s: ReturnType<typeof setup>, at: number, value: number): void {
  s.guest[at] = value;
  markRange(s.memory, LOG_BASE, GUEST_BASE + at, GUEST_BASE + at + 1);
}

function dirtyPages(dirty: Int32Array): number[] {
  const out: number[] = [];
  for (let p = 0; p < dirty.length * 32; p++) if (dirty[p >>> 5] & (1 << (p & 31))) out.push(p);
  return out;
}

test('the log takes each marked page once, in order, and clears it', () => {
  const s = setup();
  markRange(s.memory, LOG_BASE, GUEST_BASE + 5 * PAGE + 10, GUEST_BASE + 7 * PAGE + 1);
  markRange(s.memory, LOG_BASE, GUEST_BASE + 900 * PAGE, GUEST_BASE + 900 * PAGE + 1);
  markRange(s.memory, LOG_BASE, GUEST_BASE, GUEST_BASE); // empty: nothing
  const seen: number[] = [];
  assert.equal(
    s.log.take((p) => seen.push(p)),
    4,
  );
  assert.deepEqual(seen, [5, 6, 7, 900], 'pages 5..7 (the range), then 900');
  assert.equal(
    s.log.take(() => assert.fail('taken twice')),
    0,
  );
  markRange(s.memory, LOG_BASE, GUEST_BASE + PAGE, GUEST_BASE + 2 * PAGE);
  s.log.clear();
  assert.equal(
    s.log.take(() => assert.fail('cleared')),
    0,
  );
});

test('a log that does not fit, or guest RAM off a page boundary, is refused', () => {
  const memory = new SharedArrayBuffer(LOG_BYTES);
  assert.throws(() => new WriteLog(memory, 4096, 0, PAGE), /runs past the memory/);
  assert.throws(() => new WriteLog(memory, 0, 100, PAGE), /not page-aligned/);
});

test('a logged sync copies the marked pages that changed, and the pages after them', () => {
  const s = setup();
  const high = ALWAYS_COMPARED_BYTES; // above the always-compared low memory
  write(s, high + 3 * PAGE + 1, 7);
  // a store that crossed from page 10 into page 11 marks page 10 only
  s.guest[high + 11 * PAGE] = 8;
  markRange(
    s.memory,
    LOG_BASE,
    GUEST_BASE + high + 10 * PAGE + 4095,
    GUEST_BASE + high + 10 * PAGE + 4096,
  );
  // a page marked but rewritten with the bytes it had: not dirty
  markRange(s.memory, LOG_BASE, GUEST_BASE + high + 20 * PAGE, GUEST_BASE + high + 20 * PAGE + 1);
  const found = syncLoggedPages(s.guest, s.mirror, s.dirty, s.zero, s.log);
  const base = high / PAGE;
  assert.equal(found, 2);
  assert.deepEqual(dirtyPages(s.dirty), [base + 3, base + 11]);
  assert.ok(s.guest.equals(s.mirror), 'the mirror now holds guest RAM');
  assert.equal(
    s.log.take(() => {}),
    0,
    'the sync took every mark',
  );
});

test('a logged sync does not read what the log did not mark, except the low 1 MiB', () => {
  const s = setup();
  s.guest[ALWAYS_COMPARED_BYTES + 50 * PAGE] = 1; // written without a mark
  s.guest[100] = 2; // low memory: v86 writes it from JavaScript, unlogged
  const found = syncLoggedPages(s.guest, s.mirror, s.dirty, s.zero, s.log);
  assert.equal(found, 1);
  assert.deepEqual(dirtyPages(s.dirty), [0]);
  assert.equal(s.mirror[ALWAYS_COMPARED_BYTES + 50 * PAGE], 0, 'the unmarked page was not read');
});

test("a marked page in the mirror's known-zero chunk is checked for zero, then copied", () => {
  const s = setup();
  const at = ALWAYS_COMPARED_BYTES + 70 * PAGE;
  const chunk = Math.floor(at / 65536);
  assert.equal(s.zero[chunk], 1);
  markRange(s.memory, LOG_BASE, GUEST_BASE + at, GUEST_BASE + at + 1); // zero written: no change
  assert.equal(syncLoggedPages(s.guest, s.mirror, s.dirty, s.zero, s.log), 0);
  assert.equal(s.zero[chunk], 1, 'still known zero');
  write(s, at, 3);
  assert.equal(syncLoggedPages(s.guest, s.mirror, s.dirty, s.zero, s.log), 1);
  assert.equal(s.zero[chunk], 0, 'no longer known zero');
  assert.equal(s.mirror[at], 3);
});
