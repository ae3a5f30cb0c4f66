// The ar reader (the container of a .deb): members of a good archive, clear errors for bad ones.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readArMembers } from '../../src/image/ar.js';
import { makeAr } from './fixture-archive.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'livemig-ar-'));
});
after(() => rm(dir, { recursive: true, force: true }));

let n = 0;
async function file(bytes: Buffer): Promise<string> {
  const p = join(dir, `f${++n}.deb`);
  await writeFile(p, bytes);
  return p;
}

const good = makeAr([
  { name: 'debian-binary', data: Buffer.from('2.0\n') },
  { name: 'odd', data: Buffer.from('abc') }, // odd size: a padding byte follows
  { name: 'data.tar.xz', data: Buffer.from('0123456789') },
]);

test('members with their offsets and sizes, across odd-size padding', async () => {
  const members = await readArMembers(await file(good));
  assert.deepEqual(members, [
    { name: 'debian-binary', offset: 68, size: 4 },
    { name: 'odd', offset: 132, size: 3 },
    { name: 'data.tar.xz', offset: 196, size: 10 },
  ]);
  assert.equal(good.toString('latin1', 196, 206), '0123456789');
});

test('a file that is not an ar archive names what it starts with', async () => {
  const p = await file(Buffer.from('<!DOCTYPE html>\n<html>not found</html>'));
  await assert.rejects(readArMembers(p), (e: Error) => {
    assert.ok(e.message.includes(p));
    assert.match(
      e.message,
      /not an ar archive \(a \.deb\): it starts with "<!DOCTYP", expected "!<arch>\\n"/,
    );
    return true;
  });
});

test('a truncated header is an error with its offset', async () => {
  const p = await file(good.subarray(0, 68 + 4 + 30));
  await assert.rejects(
    readArMembers(p),
    /truncated: a member header at offset 72 needs 60 bytes, 30 remain/,
  );
});

test('a member larger than the rest of the file is an error', async () => {
  const p = await file(good.subarray(0, good.length - 4));
  await assert.rejects(
    readArMembers(p),
    /member 'data\.tar\.xz' at offset 136 says it has 10 bytes, but only 6 remain/,
  );
});

test('a header without its terminator or with a bad size field is an error', async () => {
  const noMagic = Buffer.from(good);
  noMagic[8 + 58] = 0x20;
  await assert.rejects(readArMembers(await file(noMagic)), /offset 8 does not end with/);
  const badSize = Buffer.from(good);
  badSize.write('12x4      ', 8 + 48, 'latin1');
  await assert.rejects(
    readArMembers(await file(badSize)),
    /member 'debian-binary'\) has an invalid size field "12x4 {6}"/,
  );
});
