// `livemig bench --machine pc` end to end, small: livemig only, idle, one baseline run at
// 128 MiB. It boots Linux once (~15 s), so it runs only where `livemig image fetch` has put the
// guest image; elsewhere it is skipped, saying so. No timing assertions.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validate } from '../../src/bench/schema.js';
import type { BenchResults } from '../../src/bench/types.js';
import { findGuestImage } from '../../src/image/guest-image.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('bench --machine pc: idle, 1 run, baseline, 128 MiB', async (t) => {
  if (!findGuestImage()) {
    t.skip('no guest image: run `livemig image fetch` to run this test');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'livemig-pc-bench-test-'));
  try {
    const json = join(dir, 'r.json');
    const args = ['bench', '--machine', 'pc', '--ram', '128M', '--scenario', 'idle'];
    args.push('--runs', '1', '--modes', 'baseline', '--json', json);
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      p.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      p.on('exit', (c) => resolve({ code: c, stdout: out, stderr: err }));
    });
    const r = JSON.parse(readFileSync(json, 'utf8')) as BenchResults;
    assert.deepEqual(validate(r), [], 'the results file follows docs/bench-schema.md');
    assert.equal(r.runs.length, 1, stderr);
    const run = r.runs[0];
    assert.equal(run.status, 'completed', `${run.error}\n${stderr}`);
    assert.equal(run.scenario, 'idle');
    assert.equal(run.verify.method, 'x-verify-ram');
    assert.equal(run.verify.result, 'ok');
    assert.equal(run.pc?.shell, 'ok', 'the shell answered at the destination');
    assert.equal(run.pc?.file, 'ok', 'the file kept its sha256');
    assert.equal(run.totalRamBytes, 128 * 1024 * 1024);
    assert.ok(run.pc!.dirtySync && run.pc!.dirtySync.count > 0, 'the dirty-sync cost is recorded');
    assert.ok(run.pc!.guestPausedMs !== null, 'STOP and RESUME were seen');
    assert.equal(r.pc?.boots.length, 1);
    const z = r.pc?.freshZeroShare.find((x) => x.peer === 'livemig');
    assert.ok(z && z.share > 0 && z.share < 1, 'the zero-page share of the fresh guest');
    assert.match(stdout, /ZERO PAGES OF A FRESHLY BOOTED GUEST, livemig: \d+\.\d%/);
    assert.match(stdout, /livemig's downtime: from stopping the source's vCPU/);
    assert.equal(code, 0, stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
