// Comparing two RAM files page by page (the QEMU peer's check): which 4 KiB pages differ.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { differingPages, firstDifference } from '../../src/bench/ram-compare.js';

test('differing pages: none, some, and a short file read as zeros', () => {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-ram-compare-'));
  try {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const pages = 64;
    const buf = Buffer.alloc(pages * 4096);
    for (let i = 0; i < buf.length; i += 97) buf[i] = (i * 31) & 0xff;
    writeFileSync(a, buf);
    writeFileSync(b, buf);
    assert.deepEqual(differingPages(a, b, buf.length), []);
    const c = Buffer.from(buf);
    c[3 * 4096] ^= 1;
    c[3 * 4096 + 4095] ^= 1;
    c[40 * 4096 + 17] ^= 0x80;
    c[c.length - 1] ^= 1;
    writeFileSync(b, c);
    assert.deepEqual(differingPages(a, b, buf.length), [3, 40, 63]);
    assert.equal(firstDifference(a, b, buf.length), 3 * 4096);
    // Only the first `bytes` are compared.
    assert.deepEqual(differingPages(a, b, 40 * 4096), [3]);
    // A shorter file reads as zeros past its end.
    writeFileSync(a, Buffer.alloc(2 * 4096));
    writeFileSync(b, Buffer.alloc(4096));
    assert.deepEqual(differingPages(a, b, 2 * 4096), []);
    writeFileSync(a, Buffer.concat([Buffer.alloc(4096), Buffer.from([1])]));
    assert.deepEqual(differingPages(a, b, 2 * 4096), [1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
