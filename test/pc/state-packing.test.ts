// state-packing.ts: the device state's zero blocks left out on the way and put back, and every
// malformed packing refused by name before anything is restored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { packZeroBlocks, unpackZeroBlocks } from '../../src/machine/pc/state-packing.js';

/** 40 blocks and a short one; blocks 0, 7, 8 and the last carry bytes, the rest are zero. */
function state(): Uint8Array {
  const s = new Uint8Array(40 * 4096 + 123);
  for (const b of [0, 7, 8]) randomFillSync(s, b * 4096, 4096);
  s[40 * 4096 + 100] = 9;
  s[0] |= 1; // block 0 not zero, whatever the random bytes
  s[7 * 4096] |= 1;
  s[8 * 4096] |= 1;
  return s;
}

test('a packed state unpacks to the same bytes, without its zero blocks', () => {
  const s = state();
  const packed = packZeroBlocks(s);
  assert.equal(
    packed.length,
    8 + 6 + 3 * 4096 + 123,
    'header, 41 bits of map, 3 blocks and the short one',
  );
  assert.deepEqual(unpackZeroBlocks(packed, s.length), s);
  const empty = new Uint8Array(0);
  assert.deepEqual(unpackZeroBlocks(packZeroBlocks(empty), 0), empty);
  const zero = new Uint8Array(10 * 4096);
  assert.equal(packZeroBlocks(zero).length, 8 + 2, 'all zero: header and map only');
});

test('a packed state that does not add up is refused, naming what is wrong', () => {
  const s = state();
  const packed = packZeroBlocks(s);
  const edit = (f: (b: Uint8Array) => void): Uint8Array => {
    const b = packed.slice();
    f(b);
    return b;
  };
  for (const [what, bytes, expected, error] of [
    ['too short', packed.subarray(0, 5), s.length, /5 bytes: too short/],
    ['bad magic', edit((b) => (b[0] ^= 1)), s.length, /packed state magic 0x425a4d4d/],
    ['another length', packed, s.length + 1, /unpacks to 163963 bytes, the source sent 163964/],
    ['no length', packed, undefined, /the source sent undefined/],
    ['map cut short', packed.subarray(0, 10), s.length, /ends inside its block map/],
    ['a block cut short', packed.subarray(0, packed.length - 200), s.length, /ends inside block 8/],
    ['bytes after', Uint8Array.from([...packed, 0]), s.length, /1 bytes after its last block/],
    [
      'a block past the last',
      edit((b) => (b[8 + 5] |= 0x80)),
      s.length,
      /marks block 47, past its last \(40\)/,
    ],
  ] as const) {
    assert.throws(() => unpackZeroBlocks(bytes, expected), error, what);
  }
});
