// Extraction from .deb files: the wanted files out of data.tar.gz/.xz, decompression stopped
// once they are out, clear errors for missing paths and unreadable formats.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { extractFromDeb } from '../../src/image/deb.js';
import { makeAr, makeDeb, makeTar, sha256 } from './fixture-archive.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'livemig-deb-'));
});
after(() => rm(dir, { recursive: true, force: true }));

let n = 0;
async function file(bytes: Buffer): Promise<string> {
  const p = join(dir, `p${++n}.deb`);
  await writeFile(p, bytes);
  return p;
}
const out = (name: string) => join(dir, `${name}-${++n}`);

const kernel = randomBytes(5000);
const filler = randomBytes(4 << 20); // incompressible: the compressed stream stays long

test('wanted files come out with their bytes, sha256 and mode', async () => {
  const deb = await file(
    await makeDeb([
      { name: './', type: 'directory' },
      { name: './boot/vmlinuz-6.1.0-50-686', data: kernel },
      { name: './bin/busybox', data: Buffer.from('bb'), mode: 0o755 },
      { name: './usr/share/doc/x', data: Buffer.from('doc') },
    ]),
  );
  const [k, bb] = [out('vmlinuz'), out('busybox')];
  const got = await extractFromDeb(deb, 'test-pkg 1.0', {
    './boot/vmlinuz-6.1.0-50-686': k,
    'bin/busybox': bb,
  });
  assert.deepEqual(await readFile(k), kernel);
  assert.deepEqual(await readFile(bb), Buffer.from('bb'));
  const byPath = new Map(got.map((g) => [g.path, g]));
  assert.equal(byPath.get('boot/vmlinuz-6.1.0-50-686')?.sha256, sha256(kernel));
  assert.equal(byPath.get('bin/busybox')?.mode, 0o755);
  assert.equal(byPath.get('bin/busybox')?.size, 2);
});

/** A .deb whose data member is `compress(tar)` cut in half: only the start is readable. */
async function truncatedDeb(name: string, compress: (b: Buffer) => Buffer): Promise<string> {
  const tarball = await makeTar([
    { name: './boot/vmlinuz-6.1.0-50-686', data: kernel },
    { name: './lib/filler', data: filler },
    { name: './lib/last', data: Buffer.from('after the cut') },
  ]);
  const c = compress(tarball);
  return file(await makeDeb([], { name, bytes: c.subarray(0, c.length >> 1) }));
}

test('decompression stops once every wanted file is out (the rest is never read)', async () => {
  const deb = await truncatedDeb('data.tar.gz', (b) => gzipSync(b));
  const k = out('vmlinuz');
  await extractFromDeb(deb, 'cut-pkg 1.0', { './boot/vmlinuz-6.1.0-50-686': k });
  assert.deepEqual(await readFile(k), kernel);
  // The control: a file behind the cut does need the whole stream, and fails.
  await assert.rejects(
    extractFromDeb(deb, 'cut-pkg 1.0', { './lib/last': out('last') }),
    /^Error: cut-pkg 1\.0: cannot read data\.tar\.gz of .*: unexpected end of file/,
  );
});

const hasXz = (() => {
  try {
    execFileSync('xz', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test(
  'data.tar.xz: early stops release the decoder for the next extraction',
  { skip: hasXz ? false : 'no xz command to make the fixture' },
  async () => {
    const xz = (b: Buffer) => execFileSync('xz', ['-0', '-c'], { input: b, maxBuffer: 64 << 20 });
    const deb = await truncatedDeb('data.tar.xz', xz);
    for (let i = 0; i < 3; i++) {
      const k = out('vmlinuz');
      await extractFromDeb(deb, 'xz-pkg 1.0', { './boot/vmlinuz-6.1.0-50-686': k });
      assert.deepEqual(await readFile(k), kernel, `extraction ${i + 1}`);
    }
    await assert.rejects(
      extractFromDeb(deb, 'xz-pkg 1.0', { './lib/last': out('last') }),
      /xz-pkg 1\.0: cannot read data\.tar\.xz of .*: the xz data ends early \(truncated\)/,
    );
    const whole = await file(
      await makeDeb([], {
        name: 'data.tar.xz',
        bytes: xz(await makeTar([{ name: './a', data: Buffer.from('A') }])),
      }),
    );
    const a = out('a');
    await extractFromDeb(whole, 'xz-pkg 1.0', { './a': a });
    assert.equal(await readFile(a, 'utf8'), 'A');
  },
);

test('a wanted path missing from the package is named', async () => {
  const deb = await file(await makeDeb([{ name: './bin/sh', data: Buffer.from('x') }]));
  await assert.rejects(
    extractFromDeb(deb, 'busybox-static 1:1.35', { './bin/busybox': out('bb') }),
    /^Error: busybox-static 1:1\.35: data\.tar\.gz has no \.\/bin\/busybox$/,
  );
});

test('a wanted path that is a symlink is refused', async () => {
  const deb = await file(
    await makeDeb([{ name: './vmlinuz', type: 'symlink', linkname: 'boot/vmlinuz-6.1' }]),
  );
  await assert.rejects(
    extractFromDeb(deb, 'k 1', { './vmlinuz': out('v') }),
    /\.\/vmlinuz in data\.tar\.gz is a symlink, not a regular file/,
  );
});

test('data.tar.zst is refused with the formats that are read', async () => {
  const deb = await file(await makeDeb([], { name: 'data.tar.zst', bytes: Buffer.from('zst') }));
  await assert.rejects(
    extractFromDeb(deb, 'new-pkg 2', { './a': out('a') }),
    /new-pkg 2: its files are in data\.tar\.zst, a compression livemig cannot read; it reads data\.tar\.xz, data\.tar\.gz and data\.tar/,
  );
});

test('an ar archive that is not a .deb is refused', async () => {
  const ar = await file(makeAr([{ name: 'hello.o', data: Buffer.from('obj') }]));
  await assert.rejects(
    extractFromDeb(ar, 'x 1', { './a': out('a') }),
    /its first member is 'hello\.o', expected 'debian-binary'/,
  );
});
