// The newc cpio writer, read back by an independent reader; and the initramfs built with it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { writeCpio, type CpioEntry } from '../../src/image/cpio.js';
import { buildInitramfs, INITRAMFS_DIRS } from '../../src/image/initramfs.js';
import { guestScripts, INIT_SCRIPT } from '../../src/image/init-script.js';
import { fakeBusybox, sha256 } from './fixture-archive.js';
import { readNewc } from './newc-reader.js';

const S_IFMT = 0o170000;

const entries: CpioEntry[] = [
  { type: 'file', path: '/init', mode: 0o755, data: Buffer.from('#!/bin/sh\n') },
  { type: 'dir', path: '/dev', mode: 0o755 },
  { type: 'char', path: '/dev/console', mode: 0o600, major: 5, minor: 1 },
  { type: 'file', path: '/bin/a', mode: 0o644, data: Buffer.from('abcde') }, // 5 bytes: padded
  { type: 'dir', path: '/bin', mode: 0o755 },
  { type: 'symlink', path: '/bin/sh', target: 'busybox' },
];

test('what the writer writes reads back: names, modes, device node, data, trailer', () => {
  const buf = writeCpio(entries);
  const { entries: got, trailerEnd } = readNewc(buf);
  assert.equal(trailerEnd, buf.length, 'the trailer ends the archive');
  assert.equal(buf.length % 4, 0);
  assert.deepEqual(
    got.map((e) => e.name),
    ['bin', 'bin/a', 'bin/sh', 'dev', 'dev/console', 'init'],
    'sorted, parents first, no leading slash',
  );
  const by = new Map(got.map((e) => [e.name, e]));
  assert.equal(by.get('init')!.mode, 0o100755);
  assert.equal(by.get('init')!.data.toString(), '#!/bin/sh\n');
  assert.equal(by.get('bin/a')!.mode, 0o100644);
  assert.equal(by.get('bin/a')!.data.toString(), 'abcde');
  assert.equal(by.get('bin')!.mode, 0o040755);
  assert.equal(by.get('bin/sh')!.mode & S_IFMT, 0o120000);
  assert.equal(by.get('bin/sh')!.data.toString(), 'busybox');
  const con = by.get('dev/console')!;
  assert.equal(con.mode, 0o020600);
  assert.deepEqual([con.rdevmajor, con.rdevminor], [5, 1]);
  assert.equal(con.data.length, 0);
  for (const e of got) {
    assert.deepEqual([e.uid, e.gid, e.mtime], [0, 0, 0], e.name);
  }
  assert.equal(new Set(got.map((e) => e.ino)).size, got.length, 'distinct inode numbers');
});

test('the same entries in another order give the same bytes', () => {
  const a = writeCpio(entries);
  const b = writeCpio([...entries].reverse());
  assert.equal(sha256(a), sha256(b));
});

test('bad input is refused with the path named', () => {
  assert.throws(
    () => writeCpio([...entries, { type: 'dir', path: '/bin/', mode: 0o755 }]),
    /cpio path '\/bin' appears twice/,
  );
  assert.throws(
    () => writeCpio([{ type: 'dir', path: '/x', mode: 0o20000 }]),
    /invalid mode 8192 for '\/x'/,
  );
  assert.throws(
    () => writeCpio([{ type: 'dir', path: '/a/../b', mode: 0o755 }]),
    /invalid cpio path '\/a\/\.\.\/b'/,
  );
});

test('the initramfs holds busybox, the scripts, the directories and /dev/console', () => {
  const busybox = fakeBusybox();
  const img = buildInitramfs(busybox);
  assert.equal(img.data[0], 0x1f, 'gzip');
  assert.equal(img.sha256, sha256(img.data));
  assert.equal(img.initSha256, sha256(INIT_SCRIPT));
  const by = new Map(readNewc(gunzipSync(img.data)).entries.map((e) => [e.name, e]));
  for (const d of [
    'dev',
    'proc',
    'sys',
    'tmp',
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'root',
    'etc',
  ]) {
    assert.equal(by.get(d)!.mode & S_IFMT, 0o040000, d);
    assert.equal(by.get(d)!.mode & 0o7777, INITRAMFS_DIRS[`/${d}`], d);
  }
  assert.equal(by.get('init')!.mode, 0o100755);
  assert.equal(by.get('init')!.data.toString(), INIT_SCRIPT);
  assert.equal(by.get('bin/busybox')!.mode, 0o100755);
  assert.deepEqual(by.get('bin/busybox')!.data, busybox);
  assert.equal(by.get('bin/livemig-workload')!.mode, 0o100755);
  assert.equal(by.get('etc/profile')!.data.toString(), guestScripts()['/etc/profile'].text);
  const con = by.get('dev/console')!;
  assert.equal(con.mode & S_IFMT, 0o020000, 'a character device');
  assert.deepEqual([con.rdevmajor, con.rdevminor], [5, 1]);
});

test('the initramfs is deterministic and follows its inputs', () => {
  const a = buildInitramfs(fakeBusybox());
  const b = buildInitramfs(fakeBusybox());
  assert.equal(a.sha256, b.sha256);
  const other = buildInitramfs(fakeBusybox('another build'));
  assert.notEqual(other.sha256, a.sha256);
  const scripts = { ...guestScripts(), '/init': { text: '#!/bin/sh\n', mode: 0o755 } };
  const c = buildInitramfs(fakeBusybox(), scripts);
  assert.notEqual(c.scriptsSha256, a.scriptsSha256);
  assert.notEqual(c.initSha256, a.initSha256);
});

test('a busybox that is not a 32-bit x86 ELF is refused', () => {
  const amd64 = fakeBusybox();
  amd64[4] = 2;
  amd64.writeUInt16LE(62, 18);
  assert.throws(() => buildInitramfs(amd64), /ELF for machine 62 \(64-bit\), expected 32-bit x86/);
  assert.throws(() => buildInitramfs(Buffer.from('#!/bin/sh\n')), /not an ELF executable/);
});
