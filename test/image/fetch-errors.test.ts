// fetchGuestImage when things go wrong: a .deb that does not match the index, a mirror that
// cannot be reached, answers 404 or 500, or never answers. Every error names what failed, and
// nothing half-fetched is ever taken for an image.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchGuestImage, findGuestImage } from '../../src/image/guest-image.js';
import {
  archiveFiles,
  closedPortUrl,
  FixtureServer,
  poolPath,
  sha256,
  standardFixture,
  testHttp,
  type Fixture,
} from './fixture-archive.js';

const NO_SYSTEM_BIOS = '/nonexistent/livemig-test-seabios';
let fx: Fixture;
let root: string;
let n = 0;
const newDir = () => join(root, `image-${++n}`);

before(async () => {
  fx = await standardFixture();
  root = await mkdtemp(join(tmpdir(), 'livemig-fetch-err-'));
});
after(() => rm(root, { recursive: true, force: true }));

async function withServer<T>(files: Map<string, Buffer>, fn: (s: FixtureServer) => Promise<T>) {
  const s = new FixtureServer(files);
  await s.start();
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const fetchFrom = (mirror: string, dir: string, force = false) =>
  fetchGuestImage({ dir, mirror, http: testHttp, systemSeabiosDir: NO_SYSTEM_BIOS, force });

test('a .deb that does not match the index: error with the package and both hashes, no image', async () => {
  const pkgs = fx.packages.map((p) =>
    p.name === 'busybox-static' ? { ...p, indexSha256: 'ab'.repeat(32) } : p,
  );
  const dir = newDir();
  await withServer(archiveFiles(pkgs), async (s) => {
    const bb = pkgs.find((p) => p.name === 'busybox-static')!;
    await assert.rejects(fetchFrom(s.url, dir), (e: Error) => {
      assert.match(e.message, /^busybox-static 1:1\.35\.0-4\+deb12u1: /);
      assert.ok(e.message.includes(sha256(bb.deb)), 'the sha256 received');
      assert.ok(e.message.includes('ab'.repeat(32)), "the index's sha256");
      assert.ok(e.message.includes(`${s.url}/${poolPath(bb)}`), 'the URL');
      return true;
    });
  });
  assert.equal(findGuestImage(dir, NO_SYSTEM_BIOS), null);
  // The kernel was fetched before busybox failed: it stayed in the (removed) staging area.
  assert.deepEqual(await readdir(dir), []);
});

test('a failed fetch over an existing image leaves that image as it was', async () => {
  const dir = newDir();
  await withServer(archiveFiles(fx.packages), (s) => fetchFrom(s.url, dir));
  const good = findGuestImage(dir, NO_SYSTEM_BIOS);
  assert.ok(good);
  const bad = fx.packages.map((p) =>
    p.name === 'seabios' ? { ...p, indexSha256: 'cd'.repeat(32) } : p,
  );
  await withServer(archiveFiles(bad), async (s) => {
    await assert.rejects(fetchFrom(s.url, dir, true), /seabios 1\.16\.2-1: .*cdcdcd/);
  });
  assert.deepEqual(findGuestImage(dir, NO_SYSTEM_BIOS), good);
  assert.ok(!(await readdir(dir)).some((f) => f.startsWith('.')), 'no staging or temp files');
});

test('an unreachable mirror: the error names the URL and the failure', async () => {
  const mirror = await closedPortUrl();
  const dir = newDir();
  await assert.rejects(fetchFrom(mirror, dir), (e: Error) => {
    assert.ok(e.message.includes(`${mirror}/dists/bookworm/InRelease`), e.message);
    assert.match(e.message, /connection refused \(ECONNREFUSED\)/);
    assert.match(e.message, /\(2 attempts\)/);
    return true;
  });
  assert.equal(existsSync(join(dir, 'manifest.json')), false);
});

test('a mirror without the suite: HTTP 404 for InRelease and Release, both URLs named', async () => {
  await withServer(archiveFiles(fx.packages), async (s) => {
    const before = s.requests.length;
    await assert.rejects(fetchFrom(`${s.url}/nope`, newDir()), (e: Error) => {
      assert.ok(e.message.includes(`${s.url}/nope/dists/bookworm/InRelease`), e.message);
      assert.ok(e.message.includes(`${s.url}/nope/dists/bookworm/Release`), e.message);
      assert.match(e.message, /HTTP 404/);
      return true;
    });
    assert.equal(s.requests.length - before, 2, '404 is not retried');
  });
});

test('a .deb missing from the pool: HTTP 404 with its URL', async () => {
  const files = archiveFiles(fx.packages);
  const kernel = fx.packages.find((p) => p.name === 'linux-image-6.1.0-50-686')!;
  files.delete(poolPath(kernel));
  await withServer(files, async (s) => {
    await assert.rejects(
      fetchFrom(s.url, newDir()),
      (e: Error) =>
        e.message.includes(`${s.url}/${poolPath(kernel)}`) && /HTTP 404 Not Found/.test(e.message),
    );
  });
});

test('HTTP 500 is retried a bounded number of times, then reported', async () => {
  await withServer(archiveFiles(fx.packages), async (s) => {
    s.overrides.set('dists/bookworm/InRelease', 500);
    await assert.rejects(fetchFrom(s.url, newDir()), /InRelease: HTTP 500 .*\(2 attempts\)/);
    assert.equal(s.requests.filter((p) => p === 'dists/bookworm/InRelease').length, 2);
  });
});

test('a server that never answers: the request times out with a clear error', async () => {
  await withServer(archiveFiles(fx.packages), async (s) => {
    s.overrides.set('dists/bookworm/InRelease', 0);
    await assert.rejects(
      fetchGuestImage({
        dir: newDir(),
        mirror: s.url,
        http: { attempts: 1, timeoutMs: 200 },
        systemSeabiosDir: NO_SYSTEM_BIOS,
      }),
      (e: Error) =>
        e.message.includes(`${s.url}/dists/bookworm/InRelease`) && /timed out/.test(e.message),
    );
  });
});

test('bad mirror and suite values are refused before any request', async () => {
  await assert.rejects(fetchFrom('ftp://example.org/debian', newDir()), /invalid mirror 'ftp:/);
  await assert.rejects(
    fetchGuestImage({ dir: newDir(), suite: '../etc', http: testHttp }),
    /invalid suite '\.\.\/etc'/,
  );
});

test('a suite without the kernel metapackage: the error names the package and the index', async () => {
  const pkgs = fx.packages.filter((p) => p.name !== 'linux-image-686');
  await withServer(archiveFiles(pkgs), async (s) => {
    await assert.rejects(
      fetchFrom(s.url, newDir()),
      new RegExp(`no package 'linux-image-686' in bookworm main/binary-i386 at ${s.url}`),
    );
  });
});
