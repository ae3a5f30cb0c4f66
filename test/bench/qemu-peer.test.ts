// `--peer qemu`: QEMU to QEMU on the same scenarios, RAM compared byte for byte. Skipped, and
// saying so, where qemu-system-x86_64 is not installed (CI need not install it). The RAM-file
// helpers are checked everywhere.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isNormalPage } from '../../src/ram/fill.js';
import {
  firstDifference,
  fillRamFile,
  QEMU_INSTALL_HINT,
  qemuAvailable,
} from '../../src/bench/qemu-peer.js';
import { validate } from '../../src/bench/schema.js';
import type { BenchResults } from '../../src/bench/types.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test("QEMU RAM files: livemig's page pattern, every page written, compared byte for byte", () => {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-qemu-test-'));
  try {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const bytes = 1024 * 4096;
    fillRamFile(a, bytes, 0.5);
    const buf = readFileSync(a);
    assert.equal(buf.length, bytes, 'every page written, zero pages too');
    let normal = 0;
    for (let p = 0; p < bytes / 4096; p++) {
      const page = buf.subarray(p * 4096, (p + 1) * 4096);
      const zero = page.every((x) => x === 0);
      assert.equal(!zero, isNormalPage(p, 0.5), `page ${p}`);
      if (!zero) {
        normal++;
        assert.equal(page.readUInt32LE(8), p + 1, 'stamped with its number');
      }
    }
    assert.equal(normal, 512);
    writeFileSync(b, buf);
    assert.equal(firstDifference(a, b, bytes), -1);
    buf[123457] ^= 1;
    writeFileSync(b, buf);
    assert.equal(firstDifference(a, b, bytes), 123457);
    // A shorter file reads as zeros past its end, as QEMU maps it.
    fillRamFile(a, 8192, 0);
    writeFileSync(b, Buffer.alloc(4096));
    assert.equal(firstDifference(a, b, 8192), -1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--peer qemu: QEMU to QEMU, 64 MiB, scenarios A and B', async (t) => {
  if (!qemuAvailable()) {
    t.skip(`qemu-system-x86_64 is not installed: ${QEMU_INSTALL_HINT}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'livemig-qemu-test-'));
  try {
    const json = join(dir, 'r.json');
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      const p = spawn(
        process.execPath,
        [
          MAIN,
          'bench',
          '--ram',
          '64M',
          '--runs',
          '1',
          '--scenario',
          'A,B',
          '--modes',
          'baseline',
          '--peer',
          'qemu',
          '--json',
          json,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      p.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      p.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      p.on('exit', (c) => resolve({ code: c, stdout: out, stderr: err }));
    });
    assert.equal(code, 0, stderr);
    const r = JSON.parse(readFileSync(json, 'utf8')) as BenchResults;
    assert.deepEqual(validate(r), []);
    assert.ok(r.qemu, 'the QEMU used is recorded');
    assert.match(r.qemu.version, /^QEMU \d+\.\d+/);
    assert.ok(r.qemu.zeroPageDetection.length > 0);
    const q = r.runs.filter((x) => x.peer === 'qemu');
    assert.deepEqual(
      q.map((x) => [x.scenario, x.status, x.verify.method, x.verify.result]),
      [
        ['A', 'completed', 'byte-compare', 'ok'],
        ['B', 'completed', 'byte-compare', 'ok'],
      ],
    );
    for (const x of q) {
      assert.ok(x.totalRamBytes >= 64 * 1024 * 1024, 'QEMU adds its ROMs to the RAM total');
      assert.ok(x.cpu.source.processMs !== null && x.cpu.destination.processMs !== null);
      assert.equal(x.cpu.source.threadSource, 'proc-sampled');
    }
    // Its rows sit in the same tables, compared with livemig's baseline.
    assert.match(stdout, /\| QEMU \d+\.\d+\.\d+ +\|/);
    assert.match(stdout, /Baseline vs QEMU [\d.]+: total time [\d.]+×/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
