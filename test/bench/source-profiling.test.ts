// The profiling hooks of a local pair: Node flags for the source process only, and its stdout
// in a file (where V8's --trace-* output goes), appended run after run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalPair } from '../../src/harness/local-migration.js';

test('sourceNodeFlags reach the source process only; its stdout lands in sourceStdout', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-prof-'));
  try {
    // A module the flag preloads (in every thread of the process): its main thread prints which
    // process it runs in.
    const marker = join(dir, 'marker.mjs');
    writeFileSync(
      marker,
      "import { isMainThread } from 'node:worker_threads';\n" +
        "if (isMainThread) console.log('preloaded in', process.argv.slice(2).join(' '));\n",
    );
    const out = join(dir, 'source.out');
    writeFileSync(out, 'earlier run\n');
    const pair = await LocalPair.start({
      ram: '16M',
      sourcePaused: true,
      sourceNodeFlags: ['--import', marker],
      sourceStdout: out,
    });
    await pair.close();
    const text = readFileSync(out, 'utf8');
    assert.ok(text.startsWith('earlier run\n'), 'appended, not truncated');
    const lines = text.split('\n').filter((l) => l.startsWith('preloaded in'));
    assert.equal(lines.length, 1, `one process preloaded it: ${JSON.stringify(lines)}`);
    assert.match(lines[0], /run --ram 16M/);
    assert.doesNotMatch(lines[0], /--incoming/, 'the destination is not the one');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
