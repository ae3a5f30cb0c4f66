// The known-zero map (src/ram/known-zero.ts): a chunk is known zero until its writer clears it,
// and a run of pages is known zero only when every chunk it touches is.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  KNOWN_ZERO_CHUNK_BYTES,
  KNOWN_ZERO_CHUNK_PAGES,
  clearKnownZero,
  createKnownZeroMap,
  pagesKnownZero,
} from '../../src/ram/known-zero.js';

test('a fresh map knows every chunk zero, a block cut short included', () => {
  const map = new Uint8Array(createKnownZeroMap(3 * KNOWN_ZERO_CHUNK_BYTES + 4096));
  assert.equal(map.length, 4, 'the last, short chunk has a byte of its own');
  assert.ok(map.every((v) => v === 1));
  assert.equal(pagesKnownZero(map, 0, 3 * KNOWN_ZERO_CHUNK_PAGES + 1), true);
});

test('a run is known zero only when every chunk it touches is', () => {
  const map = new Uint8Array(createKnownZeroMap(8 * KNOWN_ZERO_CHUNK_BYTES));
  clearKnownZero(map, 2);
  const P = KNOWN_ZERO_CHUNK_PAGES;
  assert.equal(pagesKnownZero(map, 0, 2 * P), true, 'chunks 0 and 1');
  assert.equal(pagesKnownZero(map, 2 * P - 1, 1), true, "chunk 1's last page");
  assert.equal(pagesKnownZero(map, 2 * P - 1, 2), false, 'one page into chunk 2');
  assert.equal(pagesKnownZero(map, 2 * P + 5, 1), false, 'inside chunk 2');
  assert.equal(pagesKnownZero(map, 3 * P, 5 * P), true, 'chunks 3..7');
  assert.equal(pagesKnownZero(map, 0, 0), false, 'an empty run says nothing');
});

test("a writer thread's clear is seen by a reader in another thread", async () => {
  const buf = createKnownZeroMap(4 * KNOWN_ZERO_CHUNK_BYTES);
  const w = new Worker(
    `const { workerData } = require('node:worker_threads');
     import(workerData.module).then((m) => m.clearKnownZero(new Uint8Array(workerData.buf), 3));`,
    {
      eval: true,
      workerData: { buf, module: new URL('../../src/ram/known-zero.js', import.meta.url).href },
    },
  );
  await new Promise((resolve) => w.once('exit', resolve));
  const map = new Uint8Array(buf);
  assert.equal(pagesKnownZero(map, 0, 3 * KNOWN_ZERO_CHUNK_PAGES), true);
  assert.equal(pagesKnownZero(map, 3 * KNOWN_ZERO_CHUNK_PAGES, 1), false);
});
