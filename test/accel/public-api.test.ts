// The package entry `livemig/accel`, imported the way a user does: by the package name (Node
// resolves it through package.json "exports", here by self-reference), and the example of
// docs/accelerator.md run as its own program.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as accelApi from 'livemig/accel';
import { attachAccelerator, openAccelerator } from 'livemig/accel';
import { openAccelerator as fromSource } from '../../src/accel/driver.js';

const root = new URL('../../../', import.meta.url);

test('livemig/accel is the accelerator entry: open, classify, close, small', () => {
  assert.equal(openAccelerator, fromSource, 'the same module as the build of src/accel');
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
    exports: Record<string, { types: string; default: string }>;
    bin: Record<string, string>;
  };
  assert.equal(pkg.exports['./accel'].default, './dist/src/accel/index.js');
  assert.ok(readFileSync(new URL(pkg.exports['./accel'].types, root), 'utf8').length > 0);
  assert.ok(readFileSync(new URL(pkg.bin.livemig, root), 'utf8').startsWith('#!'), 'bin kept');
  assert.deepEqual(Object.keys(accelApi).sort(), [
    'Accelerator',
    'AcceleratorClient',
    'BatchTask',
    'DsaEmu',
    'FALLBACK_REASONS',
    'addonStatus',
    'attachAccelerator',
    'formatAccelTarget',
    'openAccelerator',
    'parseAccelPath',
  ]);
});

test("the example's code, in this process: results, counters, and another thread's client", async () => {
  const accel = await openAccelerator('dsa-emu:dsa0/wq0.0');
  try {
    const block = new SharedArrayBuffer(64 * 4096);
    new Uint8Array(block)[5 * 4096 + 100] = 1;
    const pages = Uint32Array.from({ length: 64 }, (_, i) => i);
    const results = new Uint8Array(64);
    const zeros = await accel.zeroPages(block, pages, 64, results);
    assert.equal(zeros, 63);
    assert.deepEqual(
      [...results],
      [...pages].map((p) => (p === 5 ? 0 : 1)),
    );
    const c = accel.counters();
    assert.equal(c.pagesDevice, 64);
    assert.equal(c.pagesCpu, 0);
    // The handle is what a worker attaches with (structured-cloneable).
    const client = attachAccelerator(structuredClone(accel.handle));
    results.fill(9);
    assert.equal(await client.zeroPages(block, pages, 64, results), 63);
    assert.equal(results[5], 0);
    client.closeClient();
  } finally {
    await accel.close();
  }
});

test('the example in docs/accelerator.md runs as a program and prints what the docs say', async () => {
  const doc = readFileSync(new URL('docs/accelerator.md', root), 'utf8');
  const at = doc.indexOf('<!-- example: livemig/accel');
  assert.ok(at >= 0, 'the example marker');
  const m = /```js\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(m, 'the example block');
  assert.match(m[1], /from 'livemig\/accel'/);
  // Inside the package, so that 'livemig/accel' resolves as it does for an installed package.
  const file = new URL('dist/example-accel.mjs', root);
  writeFileSync(file, m[1]);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(file)], {
      cwd: fileURLToPath(root),
    });
    assert.equal(
      stdout,
      '63 zero pages; page 5 is normal\ndecided by the device: 64, by the CPU: 0\n',
    );
  } finally {
    rmSync(file, { force: true });
  }
});
