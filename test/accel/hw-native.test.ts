// The native addon's primitives on this machine: CPU capabilities, buffer addresses,
// MOVDIR64B into ordinary memory, the completion wait, the instruction encodings. What needs a
// CPU feature this machine lacks is skipped with the reason, never faked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { addonStatus, loadAddon } from '../../src/accel/hw/addon.js';
import { cpuSupport, cpuinfoFlags, describeCpu, CPU_FEATURES } from '../../src/accel/hw/cpu.js';
import { addressOf, movdir64bTo, peek, poke } from './native-testing.js';
import { compval, encodeDescriptor } from './dsa-builders.js';
import { addonSkip } from './hw-helpers.js';

const skip = addonSkip();
if (skip) console.log(`native-addon tests skipped: ${skip}`);
const cpu = skip ? undefined : cpuSupport();
if (cpu) console.log(`CPU: ${describeCpu(cpu)}`);

test('/proc/cpuinfo flags are parsed', () => {
  const f = cpuinfoFlags('processor : 0\nflags\t\t: fpu sse movdir64b waitpkg\nbugs : x\n');
  assert.deepEqual(f, { movdir64b: true, enqcmd: false, waitpkg: true });
});

test('CPUID leaf 7 agrees with /proc/cpuinfo (movdir64b, enqcmd, waitpkg)', { skip }, () => {
  const s = cpuSupport();
  const k = cpuinfoFlags();
  assert.ok(s.cpuid && k, 'both readable');
  for (const f of CPU_FEATURES) {
    // The kernel never shows a flag the CPU lacks; it may hide one it does not support
    // (ENQCMD without PASID support), and then livemig does not use it either.
    if (k[f]) assert.equal(s.cpuid[f], true, `${f}: /proc/cpuinfo has it, CPUID must`);
    else if (s.cpuid[f]) console.log(`${f}: CPUID has it, the kernel does not offer it`);
    if (f !== 'enqcmd') assert.equal(s.cpuid[f], k[f], `${f}: CPUID and /proc/cpuinfo agree`);
    assert.equal(s.usable[f], s.cpuid[f] && k[f]);
  }
});

test(
  'a SharedArrayBuffer address: stable, aligned, and pointing at its bytes',
  { skip },
  async () => {
    for (const size of [64, 4096, 1 << 20, 64 << 20]) {
      const sab = new SharedArrayBuffer(size);
      const u8 = new Uint8Array(sab);
      const a = addressOf(u8);
      assert.ok(Number.isSafeInteger(a) && a > 0);
      assert.equal(a % 16, 0, `${size}-byte buffer at 0x${a.toString(16)}: 16-byte aligned`);
      // Views at an offset: their address is the buffer's plus the offset.
      assert.equal(addressOf(new Int32Array(sab, 32, 4)), a + 32);
      // Written through JavaScript, read back through the addon at that address (and back).
      for (let i = 0; i < Math.min(size, 4096); i++) u8[i] = (i * 7 + 3) & 0xff;
      u8[size - 1] = 0x5a;
      assert.deepEqual(
        peek(a, Math.min(size, 4096)),
        Buffer.from(u8.subarray(0, Math.min(size, 4096))),
      );
      assert.equal(peek(a + size - 1, 1)[0], 0x5a);
      assert.equal(poke(a + 8, Uint8Array.of(1, 2, 3)), 3);
      assert.deepEqual([...u8.subarray(8, 11)], [1, 2, 3]);
      // The status byte last: the rest first, then byte 0.
      const rec = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
      assert.equal(poke(a + 32, rec, true), 32);
      assert.deepEqual(u8.subarray(32, 64), rec);
      // Stable: the same after allocation pressure, and from another thread.
      const junk: unknown[] = [];
      for (let i = 0; i < 2000; i++) junk.push(new ArrayBuffer(4096), { i });
      await new Promise((r) => setImmediate(r));
      assert.equal(addressOf(u8), a);
      const w = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
       const native = require(workerData.path);
       parentPort.postMessage(native.address(new Uint8Array(workerData.sab)));`,
        { eval: true, workerData: { sab, path: (addonStatus() as { path: string }).path } },
      );
      const other = await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      assert.equal(other, a, 'another thread sees the same address');
    }
  },
);

test('an address that is not mapped reads and writes nothing (no crash)', { skip }, () => {
  const native = loadAddon()!;
  const f = native.faultAddress();
  assert.equal(f % 4096, 0);
  assert.equal(peek(f, 64).length, 0);
  assert.equal(poke(f, Uint8Array.of(1)), 0);
  assert.equal(native.faultAddress(), f, 'one reserved page');
});

const noMovdir =
  skip ??
  (cpu && !cpu.usable.movdir64b
    ? `this CPU does not report MOVDIR64B (CPUID.(EAX=7,ECX=0):ECX[28] = ${cpu.cpuid?.movdir64b ? 1 : 0}${cpu.kernel ? `, /proc/cpuinfo ${cpu.kernel.movdir64b ? 'has' : 'lacks'} movdir64b` : ''}); run on a CPU with it (Sapphire Rapids or newer) — see docs/hardware.md`
    : undefined);
if (noMovdir && !skip) console.log(`MOVDIR64B test skipped: ${noMovdir}`);

test(
  'MOVDIR64B into ordinary 64-byte-aligned memory stores exactly the 64 descriptor bytes',
  { skip: noMovdir },
  () => {
    const sab = new SharedArrayBuffer(512);
    const u8 = new Uint8Array(sab);
    const base = addressOf(u8);
    const off = ((64 - (base % 64)) % 64) + 64;
    u8.fill(0xaa);
    const desc = new Uint8Array(64);
    encodeDescriptor(
      desc,
      0,
      compval({ src: 0x7f0012345000, size: 4096, completionAddr: 0x7f00aa000020 }),
    );
    desc[63] = 0x99;
    assert.equal(movdir64bTo(new Uint8Array(sab, off, 64), desc), 64);
    assert.deepEqual(u8.subarray(off, off + 64), desc);
    assert.ok(
      u8.subarray(0, off).every((b) => b === 0xaa),
      'nothing before',
    );
    assert.ok(
      u8.subarray(off + 64).every((b) => b === 0xaa),
      'nothing after',
    );
  },
);

test(
  'the completion wait: times out, sees a written status byte, is woken by another thread',
  { skip },
  async () => {
    const native = loadAddon()!;
    const sab = new SharedArrayBuffer(4096);
    const w = new Int32Array(sab);
    const offsets = Int32Array.of(64, 128, 256);
    let t = performance.now();
    assert.equal(native.waitAny(w, offsets, 3, 3000, false), -1);
    assert.ok(performance.now() - t >= 2.5, 'waited for the timeout');
    Atomics.store(w, 32, 0x101); // status byte of the record at byte 128
    assert.equal(native.waitAny(w, offsets, 3, 1000, false), 1);
    Atomics.store(w, 32, 0);
    assert.throws(() => native.waitAny(w, Int32Array.of(4096), 1, 10, false), /outside the view/);
    assert.equal(native.waitAny(w, offsets, 3, 2000, 2, 500), -1, 'sleep: times out too');
    assert.throws(() => native.waitAny(w, offsets, 3, 10, 7), /the wait method is 0/);
    const modes: [string, boolean | number][] = [
      ['pause loop', false],
      ['sleep (method 2)', 2],
    ];
    if (cpuSupport().usable.waitpkg) modes.push(['UMONITOR/UMWAIT', true]);
    else
      console.log('UMWAIT wait not run: this CPU does not offer WAITPKG (the pause loop is used)');
    for (const [name, umwait] of modes) {
      Atomics.store(w, 64, 0);
      const writer = new Worker(
        `const { workerData } = require('node:worker_threads');
       const w = new Int32Array(workerData);
       Atomics.wait(w, 1000, 0, 30);
       Atomics.store(w, 64, 0x01);`,
        { eval: true, workerData: sab },
      );
      t = performance.now();
      const i = native.waitAny(w, offsets, 3, 5_000_000, umwait, 5000);
      const ms = performance.now() - t;
      assert.equal(i, 2, `${name}: the record at byte 256`);
      assert.ok(ms < 2000, `${name}: woken after ${ms.toFixed(1)} ms`);
      await new Promise((r) => writer.once('exit', r));
    }
    if (!cpuSupport().usable.waitpkg) {
      assert.throws(
        () => native.waitAny(w, offsets, 1, 10, true),
        /does not support UMONITOR\/UMWAIT/,
      );
    }
  },
);

test(
  'the built addon holds ENQCMD, MOVDIR64B, UMONITOR and UMWAIT with the expected operands',
  { skip },
  (t) => {
    const objdump = spawnSync('objdump', ['-d', (addonStatus() as { path: string }).path], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    if (objdump.error || objdump.status !== 0) {
      t.skip('objdump is not available');
      return;
    }
    const text = objdump.stdout;
    // The .byte encodings decode to the instructions idxd-config and DPDK use.
    assert.match(text, /f2 0f 38 f8 02\s+enqcmd \(%rdx\),%rax/);
    assert.match(text, /66 0f 38 f8 02\s+movdir64b \(%rdx\),%rax/);
    assert.match(text, /f3 48 0f ae f0\s+.*umonitor %rax/);
    assert.match(text, /f2 48 0f ae f1\s+umwait %rcx/);
  },
);
