// Against the real Debian archive: its signed index, the kernel's resolution, and a real .deb
// (busybox-static, ~1 MB, data.tar.xz). Skipped, with the reason printed, when
// LIVEMIG_TEST_OFFLINE=1 or when deb.debian.org cannot be reached.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MIRROR, downloadDeb, loadArchiveIndex } from '../../src/image/archive.js';
import { extractFromDeb } from '../../src/image/deb.js';
import { httpGet } from '../../src/image/http.js';
import { checkI386Elf } from '../../src/image/initramfs.js';
import { requirePackage, resolveKernel } from '../../src/image/packages.js';
import { signatureTools } from '../../src/image/signature.js';

async function reason(): Promise<string | false> {
  if (process.env.LIVEMIG_TEST_OFFLINE === '1') return 'LIVEMIG_TEST_OFFLINE=1';
  try {
    await httpGet(`${DEFAULT_MIRROR}/dists/bookworm/Release.gpg`, 1 << 20, {
      attempts: 1,
      timeoutMs: 5000,
    });
    return false;
  } catch (e) {
    return `the Debian archive is unreachable (${(e as Error).message})`;
  }
}
const skip = await reason();
if (skip) console.log(`real-archive test skipped: ${skip}`);

test(
  'the real bookworm index resolves linux-image-686, and busybox-static extracts',
  { skip },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livemig-real-'));
    try {
      const index = await loadArchiveIndex({ mirror: DEFAULT_MIRROR, suite: 'bookworm' }, dir);
      if (!('missing' in signatureTools()))
        assert.match(index.signature.text, /^signature verified/);
      const k = resolveKernel(index.packages, 'linux-image-686', index.where);
      assert.match(k.pkg.name, /^linux-image-6\.1\.0-\d+-686$/);
      assert.equal(k.kernelRelease, k.pkg.name.slice('linux-image-'.length));
      assert.equal(index.packages.get('seabios')?.architecture, 'all');

      const bb = requirePackage(index.packages, 'busybox-static', index.where);
      const deb = join(dir, 'busybox-static.deb');
      await downloadDeb(index.mirror, bb, deb);
      const [x] = await extractFromDeb(deb, bb.name, { './bin/busybox': join(dir, 'busybox') });
      assert.ok(x.size > 500_000, `busybox is ${x.size} bytes`);
      checkI386Elf(await readFile(join(dir, 'busybox')), 'busybox');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
