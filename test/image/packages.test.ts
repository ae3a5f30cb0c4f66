// Debian's index formats: stanzas, Release, Depends, kernel resolution, version order, and the
// clear-signed text of InRelease.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareVersions,
  indexPackages,
  parseDepends,
  parseRelease,
  parseStanzas,
  resolveKernel,
} from '../../src/image/packages.js';
import { clearsignedBody } from '../../src/image/signature.js';

const H = (c: string) => c.repeat(64);

test('stanzas: lowercased fields, continuation lines, blank-line separators', async () => {
  const st = await parseStanzas(
    'Package: a\nDescription: short\n more\n .\n end\n\n\nPackage: b\nVersion: 1\n',
  );
  assert.equal(st.length, 2);
  assert.equal(st[0].get('package'), 'a');
  assert.equal(st[0].get('description'), 'short\nmore\n.\nend');
  assert.equal(st[1].get('version'), '1');
});

test('Release: suite, codename, architectures and the SHA256 list', async () => {
  const r = await parseRelease(
    [
      'Suite: oldstable',
      'Codename: bookworm',
      'Architectures: all amd64 i386',
      'Acquire-By-Hash: yes',
      'MD5Sum:',
      ` ${'f'.repeat(32)} 12 main/binary-i386/Packages.gz`,
      'SHA256:',
      ` ${H('a')}  11927458 main/binary-i386/Packages.gz`,
      ` ${H('b')}       524 contrib/binary-i386/Packages`,
    ].join('\n'),
  );
  assert.equal(r.codename, 'bookworm');
  assert.deepEqual(r.architectures, ['all', 'amd64', 'i386']);
  assert.equal(r.acquireByHash, true);
  assert.deepEqual(r.sha256.get('main/binary-i386/Packages.gz'), {
    sha256: H('a'),
    size: 11927458,
  });
  assert.equal(r.sha256.size, 2);
  await assert.rejects(parseRelease('<html>'), /not a Debian Release file: it has no SHA256 field/);
});

test('Depends: groups, alternatives, version constraints, architecture qualifiers', () => {
  assert.deepEqual(parseDepends('a (>= 1.2~), b:any | c (= 2), d'), [
    [{ name: 'a', relation: '>=', version: '1.2~' }],
    [
      { name: 'b', relation: undefined, version: undefined },
      { name: 'c', relation: '=', version: '2' },
    ],
    [{ name: 'd', relation: undefined, version: undefined }],
  ]);
});

const pkg = (name: string, version: string, depends = '') =>
  `Package: ${name}\nVersion: ${version}\nArchitecture: i386\nDepends: ${depends}\n` +
  `Filename: pool/${name}.deb\nSize: 10\nSHA256: ${H('0')}\n`;

test('the kernel metapackage resolves through Depends, not by name', async () => {
  const index = await indexPackages(
    [
      pkg('linux-image-6.1.0-99-686', '6.1.999-1'),
      pkg('linux-image-686', '6.1.176-1', 'linux-image-6.1.0-50-686 (= 6.1.176-1)'),
      pkg('linux-image-6.1.0-50-686', '6.1.176-1', 'kmod, linux-base (>= 4.3~)'),
    ]
      .join('\n')
      .split('\n'),
  );
  const k = resolveKernel(index, 'linux-image-686', 'test index');
  assert.equal(k.pkg.name, 'linux-image-6.1.0-50-686');
  assert.equal(k.kernelRelease, '6.1.0-50-686');
  assert.deepEqual(
    k.chain.map((p) => p.name),
    ['linux-image-686', 'linux-image-6.1.0-50-686'],
  );
});

test('a kernel dependency whose version the index does not have is an error', async () => {
  const index = await indexPackages(
    [
      pkg('linux-image-686', '6.1.176-1', 'linux-image-6.1.0-50-686 (= 6.1.176-1)'),
      pkg('linux-image-6.1.0-50-686', '6.1.170-1'),
    ]
      .join('\n')
      .split('\n'),
  );
  assert.throws(
    () => resolveKernel(index, 'linux-image-686', 'test index'),
    /depends on linux-image-6\.1\.0-50-686 \(= 6\.1\.176-1\), but test index has linux-image-6\.1\.0-50-686 6\.1\.170-1/,
  );
  assert.throws(
    () => resolveKernel(index, 'linux-image-686-pae', 'test index'),
    /no package 'linux-image-686-pae' in test index/,
  );
});

test('a name listed twice keeps its highest version', async () => {
  const index = await indexPackages(
    [pkg('x', '1.10-1'), pkg('x', '1.9-1'), pkg('x', '1:0.1-1'), pkg('x', '1:0.1~rc1-1')]
      .join('\n')
      .split('\n'),
  );
  assert.equal(index.get('x')?.version, '1:0.1-1');
});

test("dpkg's version order", () => {
  const ascending = [
    '1.0~rc1',
    '1.0',
    '1.0-1',
    '1.0-1+b1',
    '1.0a',
    '1.0.1',
    '1.9',
    '1.10',
    '1:0.1',
  ];
  for (let i = 0; i + 1 < ascending.length; i++) {
    assert.equal(
      compareVersions(ascending[i], ascending[i + 1]),
      -1,
      `${ascending[i]} < ${ascending[i + 1]}`,
    );
    assert.equal(compareVersions(ascending[i + 1], ascending[i]), 1);
  }
  assert.equal(compareVersions('6.1.176-1', '6.1.176-1'), 0);
  assert.equal(compareVersions('1.01', '1.1'), 0);
});

const signed = (body: string, tail = '') =>
  `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n${body}\n-----BEGIN PGP SIGNATURE-----\n\nxyz\n-----END PGP SIGNATURE-----\n${tail}`;

test('the clear-signed text of InRelease, dash-escapes undone', () => {
  assert.equal(
    clearsignedBody(signed('Suite: x\n- -----weird\nSHA256:')),
    'Suite: x\n-----weird\nSHA256:\n',
  );
});

test('InRelease with text outside the signed part, or no signature, is refused', () => {
  assert.throws(
    () => clearsignedBody(signed('Suite: x', 'Suite: evil\n')),
    /text after the signature/,
  );
  assert.throws(() => clearsignedBody('Suite: x\n'), /not a clear-signed message/);
  assert.throws(
    () => clearsignedBody('-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: x\n'),
    /has no signature/,
  );
});
