// The archive's signature, checked with the real gpgv against a key made for the test: a good
// InRelease (or Release + Release.gpg) verifies, a tampered one or one signed by a stranger's
// key stops the fetch, and without gpgv the fetch goes on saying nothing was checked.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchGuestImage } from '../../src/image/guest-image.js';
import { DEBIAN_KEYRING, signatureTools } from '../../src/image/signature.js';
import { archiveFiles, FixtureServer, standardFixture, testHttp } from './fixture-archive.js';

const tools = signatureTools();
const hasGpg = (() => {
  try {
    execFileSync('gpg', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip =
  'missing' in tools ? tools.missing : hasGpg ? false : 'gpg is not installed (to make a test key)';
if (skip) console.log(`signature tests skipped: ${skip}`);

let root: string;
let home: string;
let keyring: string;
let files: Map<string, Buffer>;
let n = 0;
const NO_SYSTEM_BIOS = '/nonexistent/livemig-test-seabios';

function gpg(...args: string[]): Buffer {
  return execFileSync('gpg', ['--homedir', home, '--batch', '--yes', '--passphrase', '', ...args], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

async function sign(release: Buffer): Promise<{ inRelease: Buffer; detached: Buffer }> {
  const f = join(root, `Release-${++n}`);
  await writeFile(f, release);
  gpg('--clearsign', '-o', `${f}.in`, f);
  gpg('--detach-sign', '--armor', '-o', `${f}.gpg`, f);
  return { inRelease: await readFile(`${f}.in`), detached: await readFile(`${f}.gpg`) };
}

before(async () => {
  if (skip) return;
  root = await mkdtemp(join(tmpdir(), 'livemig-sig-'));
  home = join(root, 'gnupg');
  execFileSync('mkdir', ['-m', '700', home]);
  gpg('--quick-gen-key', 'livemig test archive <test@livemig.invalid>', 'ed25519', 'sign', 'never');
  keyring = join(root, 'keyring.gpg');
  await writeFile(keyring, gpg('--export'));
  files = archiveFiles((await standardFixture()).packages);
});

after(async () => {
  if (skip) return;
  try {
    execFileSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { stdio: 'ignore' });
  } catch {
    // no agent was started
  }
  await rm(root, { recursive: true, force: true });
});

async function fetchWith(
  served: Map<string, Buffer>,
  signature: { keyring?: string; gpgv?: null },
) {
  const s = new FixtureServer(served);
  await s.start();
  try {
    return await fetchGuestImage({
      dir: join(root, `image-${++n}`),
      mirror: s.url,
      http: testHttp,
      signature,
      systemSeabiosDir: NO_SYSTEM_BIOS,
    });
  } finally {
    await s.close();
  }
}

const RELEASE = 'dists/bookworm/Release';

test('a good InRelease verifies', { skip }, async () => {
  const served = new Map(files);
  served.set('dists/bookworm/InRelease', (await sign(files.get(RELEASE)!)).inRelease);
  served.delete(RELEASE);
  const image = await fetchWith(served, { keyring });
  assert.match(image.manifest.signature, /^signature verified by gpgv: .*livemig test archive/);
});

test('Release with a detached Release.gpg verifies', { skip }, async () => {
  const served = new Map(files);
  served.set(`${RELEASE}.gpg`, (await sign(files.get(RELEASE)!)).detached);
  const image = await fetchWith(served, { keyring });
  assert.match(image.manifest.signature, /^signature verified by gpgv: .*livemig test archive/);
});

test('a tampered InRelease stops the fetch', { skip }, async () => {
  const served = new Map(files);
  const signed = (await sign(files.get(RELEASE)!)).inRelease.toString();
  served.set(
    'dists/bookworm/InRelease',
    Buffer.from(signed.replace('Origin: Debian', 'Origin: Mallory')),
  );
  await assert.rejects(fetchWith(served, { keyring }), (e: Error) => {
    assert.match(
      e.message,
      /the signature of http:\/\/127\.0\.0\.1:\d+\/dists\/bookworm\/InRelease does not verify/,
    );
    assert.match(e.message, /BADSIG/);
    return true;
  });
});

test('an InRelease signed by a key outside the keyring stops the fetch', { skip }, async () => {
  const served = new Map(files);
  served.set('dists/bookworm/InRelease', (await sign(files.get(RELEASE)!)).inRelease);
  await assert.rejects(
    fetchWith(served, { keyring: DEBIAN_KEYRING }),
    /InRelease does not verify against .*debian-archive-keyring\.gpg: (NO_PUBKEY|ERRSIG)/,
  );
});

test(
  'without gpgv the fetch goes on and says the signature was not checked',
  { skip },
  async () => {
    const served = new Map(files);
    served.set('dists/bookworm/InRelease', (await sign(files.get(RELEASE)!)).inRelease);
    const image = await fetchWith(served, { gpgv: null });
    assert.equal(
      image.manifest.signature,
      'signature not checked: gpgv is not installed (Debian package gpgv)',
    );
  },
);
