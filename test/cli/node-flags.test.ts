// The Node options every livemig process runs with (src/cli/node-flags.ts): given by the
// command's first line when a user runs it, and by the harness when it starts the processes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LIVEMIG_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { LIVEMIG_VERSION } from '../../src/control/version.js';
import { LocalPair } from '../../src/harness/local-migration.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The argv of a running process, from /proc. */
function argvOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

test("the command's first line gives node the flags of node-flags.ts", () => {
  const first = readFileSync(MAIN, 'utf8').split('\n', 1)[0];
  assert.equal(first, `#!/usr/bin/env -S node ${LIVEMIG_NODE_FLAGS.join(' ')}`);
});

test('the command runs as an executable, through its first line', async () => {
  // What npx and a bin link do: exec the file itself (npm makes it executable; so does `build`).
  const { stdout } = await promisify(execFile)(MAIN, ['--version']);
  assert.equal(stdout.trim(), LIVEMIG_VERSION);
});

test('the processes the harness starts run with the same flags', async () => {
  const pair = await LocalPair.start({ ram: '16M' });
  try {
    for (const side of [pair.source, pair.dest]) {
      const argv = argvOf(side.proc.pid!);
      const main = argv.indexOf(MAIN);
      assert.ok(main > 0, `${MAIN} in ${argv.join(' ')}`);
      assert.deepEqual(argv.slice(1, 1 + LIVEMIG_NODE_FLAGS.length), [...LIVEMIG_NODE_FLAGS]);
    }
  } finally {
    await pair.close();
  }
});
