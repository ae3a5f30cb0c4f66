// `livemig image fetch` and `livemig image info` as a user runs them: a child process, a fixture
// archive, stdout and the exit code.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { archiveFiles, FixtureServer, standardFixture } from './fixture-archive.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
let server: FixtureServer;
let root: string;

before(async () => {
  server = new FixtureServer(archiveFiles((await standardFixture()).packages));
  await server.start();
  root = await mkdtemp(join(tmpdir(), 'livemig-cli-'));
});
after(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

function livemig(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

test('image info without an image exits 1 and says what to run', async () => {
  const r = await livemig('image', 'info', '--cache-dir', join(root, 'empty'));
  assert.equal(r.code, 1);
  const dir = join(root, 'empty', 'livemig', 'images', 'debian-bookworm-i386');
  assert.equal(r.stderr, `livemig: no guest image in ${dir}: run \`livemig image fetch\`\n`);
});

test('image fetch --json prints the paths and manifest; image path prints the same', async () => {
  const cache = join(root, 'cache');
  const f = await livemig('image', 'fetch', '--mirror', server.url, '--cache-dir', cache, '--json');
  assert.equal(f.code, 0, f.stderr);
  const fetched = JSON.parse(f.stdout);
  assert.equal(fetched.dir, join(cache, 'livemig', 'images', 'debian-bookworm-i386'));
  for (const k of ['kernel', 'initrd', 'bios', 'busybox']) assert.ok(existsSync(fetched[k]), k);
  assert.equal(fetched.manifest.kernelRelease, '6.1.0-50-686');
  assert.match(f.stderr, /built initrd\.img/, 'one line per step on a non-TTY stderr');

  const info = await livemig('image', 'path', '--cache-dir', cache, '--json');
  assert.equal(info.code, 0);
  assert.deepEqual(JSON.parse(info.stdout), fetched);

  const text = await livemig('image', 'info', '--cache-dir', cache);
  assert.match(text.stdout, new RegExp(`^  kernel +${fetched.kernel}$`, 'm'));
  assert.match(text.stdout, /linux-image-6\.1\.0-50-686 6\.1\.176-1, sha256 [0-9a-f]{64}/);
});
