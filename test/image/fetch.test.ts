// fetchGuestImage against a fixture archive on a local HTTP server: what it downloads, what it
// extracts and records, and when it stays off the network.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  defaultBios,
  fetchGuestImage,
  findGuestImage,
  type FetchProgress,
} from '../../src/image/guest-image.js';
import { buildInitramfs } from '../../src/image/initramfs.js';
import { guestScripts, INIT_SCRIPT } from '../../src/image/init-script.js';
import { readManifest, writeManifest } from '../../src/image/manifest.js';
import {
  archiveFiles,
  closedPortUrl,
  fakeBusybox,
  FixtureServer,
  makeDeb,
  sha256,
  standardFixture,
  testHttp,
  type Fixture,
  type FixturePackage,
} from './fixture-archive.js';
import { readNewc } from './newc-reader.js';

let fx: Fixture;
let server: FixtureServer;
let root: string;
const NO_SYSTEM_BIOS = '/nonexistent/livemig-test-seabios';

before(async () => {
  fx = await standardFixture();
  server = new FixtureServer(archiveFiles(fx.packages));
  await server.start();
  root = await mkdtemp(join(tmpdir(), 'livemig-fetch-'));
});

after(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

let n = 0;
async function fetchInto(dir: string, extra: Parameters<typeof fetchGuestImage>[0] = {}) {
  return fetchGuestImage({
    dir,
    mirror: server.url,
    http: testHttp,
    systemSeabiosDir: NO_SYSTEM_BIOS,
    ...extra,
  });
}
const newDir = () => join(root, `image-${++n}`);

test('a first fetch resolves the kernel through Depends, extracts and records every part', async () => {
  const dir = newDir();
  const events: FetchProgress[] = [];
  const image = await fetchInto(dir, { onProgress: (p) => events.push(p) });
  const m = image.manifest;

  assert.equal(m.kernelRelease, '6.1.0-50-686');
  assert.equal(m.parts.kernel.package, 'linux-image-6.1.0-50-686');
  assert.equal(m.parts.kernel.version, '6.1.176-1');
  assert.equal(m.parts.kernel.pathInPackage, './boot/vmlinuz-6.1.0-50-686');
  assert.match(m.kernelVia, /^linux-image-686 6\.1\.176-1 -> linux-image-6\.1\.0-50-686/);
  assert.equal(m.parts.busybox.version, '1:1.35.0-4+deb12u1');
  assert.equal(m.parts.bios.package, 'seabios');
  assert.equal(
    m.parts.kernel.url,
    `${server.url}/pool/main/l/linux-image-6.1.0-50-686/linux-image-6.1.0-50-686_6.1.176-1_i386.deb`,
  );

  assert.deepEqual(await readFile(image.kernel), fx.kernel);
  assert.deepEqual(await readFile(join(dir, 'busybox')), fx.busybox);
  assert.deepEqual(await readFile(image.bios), fx.bios);
  assert.deepEqual(await readFile(image.vgaBios!), fx.vgaBios);
  assert.equal(image.kernel, join(dir, 'vmlinuz'));
  assert.equal(image.initrd, join(dir, 'initrd.img'));

  // The manifest's sha256s are those of the files on disk (and of the fixture's bytes).
  assert.equal(m.parts.kernel.sha256, sha256(fx.kernel));
  assert.equal(m.parts.busybox.sha256, sha256(fx.busybox));
  assert.equal(m.parts.bios.sha256, sha256(fx.bios));
  assert.equal(m.parts.vgaBios?.sha256, sha256(fx.vgaBios));
  assert.equal(m.parts.initrd.sha256, sha256(await readFile(image.initrd)));
  assert.equal(m.parts.initrd.initSha256, sha256(INIT_SCRIPT));
  assert.deepEqual(readManifest(dir), m);

  // The initrd holds the fetched busybox and this livemig's /init.
  const { entries } = readNewc(gunzipSync(await readFile(image.initrd)));
  const byName = new Map(entries.map((e) => [e.name, e]));
  assert.deepEqual(byName.get('bin/busybox')?.data, fx.busybox);
  assert.equal(byName.get('init')?.data.toString(), INIT_SCRIPT);

  // Only the image's files are left: no .deb, no staging directory.
  assert.deepEqual((await readdir(dir)).sort(), [
    'bios.bin',
    'busybox',
    'initrd.img',
    'manifest.json',
    'vgabios-stdvga.bin',
    'vmlinuz',
  ]);
  assert.match(m.signature, /^signature not checked: /);
  assert.ok(events.some((e) => e.step === 'download' && e.phase === 'bytes' && e.done > 0));
  assert.ok(events.some((e) => e.step === 'initrd' && e.phase === 'end'));
  assert.deepEqual(findGuestImage(dir, NO_SYSTEM_BIOS), image);
  assert.deepEqual(defaultBios(image, NO_SYSTEM_BIOS), {
    bios: image.bios,
    vgaBios: image.vgaBios,
  });
});

test('a second fetch of a complete image makes no request', async () => {
  const dir = newDir();
  const first = await fetchInto(dir);
  const before = server.requests.length;
  const second = await fetchInto(dir);
  assert.equal(server.requests.length, before, 'no HTTP request');
  assert.deepEqual(second.manifest, first.manifest);
});

test('force fetches everything again, to the same files', async () => {
  const dir = newDir();
  const first = await fetchInto(dir);
  const before = server.requests.length;
  const again = await fetchInto(dir, { force: true });
  const asked = server.requests.slice(before);
  assert.ok(asked.some((p) => p.endsWith('linux-image-6.1.0-50-686_6.1.176-1_i386.deb')));
  assert.ok(asked.some((p) => p.includes('busybox-static_')));
  assert.ok(asked.some((p) => p.includes('seabios_')));
  for (const part of ['kernel', 'initrd', 'busybox', 'bios'] as const) {
    assert.equal(again.manifest.parts[part].sha256, first.manifest.parts[part].sha256, part);
  }
});

test('an initrd built with other guest scripts is rebuilt from the cached busybox, offline', async () => {
  const dir = newDir();
  const fresh = await fetchInto(dir);
  // What an older livemig would have left: another /init, and a manifest recording it.
  const old = buildInitramfs(fx.busybox, {
    ...guestScripts(),
    '/init': { text: '#!/bin/busybox sh\necho old\n', mode: 0o755 },
  });
  await writeFile(fresh.initrd, old.data);
  const m = structuredClone(fresh.manifest);
  Object.assign(m.parts.initrd, {
    sha256: old.sha256,
    size: old.data.length,
    initSha256: old.initSha256,
    scriptsSha256: old.scriptsSha256,
  });
  await writeManifest(dir, m);
  assert.equal(findGuestImage(dir, NO_SYSTEM_BIOS), null, 'a stale initrd is no usable image');

  const rebuilt = await fetchInto(dir, { mirror: await closedPortUrl() });
  assert.equal(rebuilt.manifest.parts.initrd.sha256, fresh.manifest.parts.initrd.sha256);
  assert.equal(rebuilt.manifest.parts.initrd.initSha256, sha256(INIT_SCRIPT));
  assert.equal(sha256(await readFile(rebuilt.initrd)), fresh.manifest.parts.initrd.sha256);
});

test("with the system's SeaBIOS no seabios package is fetched, and it is the default", async () => {
  const dir = newDir();
  const sys = join(root, `system-seabios-${n}`);
  await mkdir(sys);
  await writeFile(join(sys, 'bios.bin'), 'system bios');
  await writeFile(join(sys, 'vgabios-stdvga.bin'), 'system vga bios');
  const before = server.requests.length;
  const image = await fetchInto(dir, { systemSeabiosDir: sys });
  assert.ok(!server.requests.slice(before).some((p) => p.includes('seabios')));
  assert.equal(image.bios, join(sys, 'bios.bin'));
  assert.equal(image.vgaBios, join(sys, 'vgabios-stdvga.bin'));
  assert.equal(image.manifest.parts.bios.source, 'system');
  assert.equal(image.manifest.parts.bios.path, join(sys, 'bios.bin'));
  assert.equal(image.manifest.parts.bios.sha256, sha256('system bios'));
  assert.ok(!(await readdir(dir)).includes('bios.bin'));
  assert.deepEqual(defaultBios(image, sys), {
    bios: join(sys, 'bios.bin'),
    vgaBios: join(sys, 'vgabios-stdvga.bin'),
  });
  assert.equal(defaultBios(null, NO_SYSTEM_BIOS), null);
});

test('a corrupt file is an error for findGuestImage; fetch gets only that package again', async () => {
  const dir = newDir();
  const image = await fetchInto(dir);
  const k = await readFile(image.kernel);
  k[k.length - 1] ^= 0xff;
  await writeFile(image.kernel, k);
  assert.throws(
    () => findGuestImage(dir, NO_SYSTEM_BIOS),
    (e: Error) =>
      e.message.includes(image.kernel) &&
      e.message.includes(sha256(k)) &&
      e.message.includes(image.manifest.parts.kernel.sha256) &&
      e.message.includes('livemig image fetch'),
  );
  const before = server.requests.length;
  const fixed = await fetchInto(dir);
  const asked = server.requests.slice(before);
  assert.ok(asked.some((p) => p.includes('linux-image-6.1.0-50-686_')));
  assert.ok(!asked.some((p) => p.includes('busybox-static_') || p.includes('seabios_')));
  assert.deepEqual(await readFile(fixed.kernel), fx.kernel);
});

test('update reads the index and fetches nothing when no package changed', async () => {
  const dir = newDir();
  await fetchInto(dir);
  const before = server.requests.length;
  await fetchInto(dir, { update: true });
  const asked = server.requests.slice(before);
  assert.ok(asked.includes('dists/bookworm/main/binary-i386/Packages.gz'));
  assert.ok(!asked.some((p) => p.startsWith('pool/')), asked.join(', '));
});

test('update fetches a package whose .deb changed, and rebuilds the initrd with it', async () => {
  const dir = newDir();
  const first = await fetchInto(dir);
  const pkgs: FixturePackage[] = fx.packages.map((p) => ({ ...p }));
  const bb = pkgs.find((p) => p.name === 'busybox-static')!;
  const newBusybox = fakeBusybox('a newer one');
  bb.version = '1:1.35.0-4+deb12u2';
  bb.deb = await makeDeb([{ name: './bin/busybox', data: newBusybox, mode: 0o755 }]);
  const updated = new FixtureServer(archiveFiles(pkgs));
  await updated.start();
  try {
    const image = await fetchInto(dir, { mirror: updated.url, update: true });
    const pool = updated.requests.filter((p) => p.startsWith('pool/'));
    assert.deepEqual(pool, ['pool/main/b/busybox-static/busybox-static_1.35.0-4+deb12u2_i386.deb']);
    assert.equal(image.manifest.parts.busybox.version, '1:1.35.0-4+deb12u2');
    assert.equal(image.manifest.parts.initrd.busyboxSha256, sha256(newBusybox));
    assert.notEqual(image.manifest.parts.initrd.sha256, first.manifest.parts.initrd.sha256);
    assert.equal(image.manifest.parts.kernel.sha256, first.manifest.parts.kernel.sha256);
  } finally {
    await updated.close();
  }
});

test('staging directories left by a dead fetch are removed', async () => {
  const dir = newDir();
  // No process has this pid (beyond Linux's pid_max), so its fetch is gone.
  const stale = join(dir, '.staging-2147483646-abc');
  await mkdir(stale, { recursive: true });
  await writeFile(join(stale, 'linux-image.deb'), 'partial download');
  await fetchInto(dir);
  assert.ok(!(await readdir(dir)).includes('.staging-2147483646-abc'));
});
