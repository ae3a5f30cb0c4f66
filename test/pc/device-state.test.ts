// The PC's device state on its way in: every check before v86 sees it, with a real state saved
// by a real emulator (not booted: the BIOS is loaded, nothing runs), then tampered with.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { V86 } from 'v86';
import {
  checkDeviceState,
  describeState,
  restoreDeviceState,
  saveDeviceState,
} from '../../src/machine/pc/device-state.js';
import { checkInternals, type Emulator } from '../../src/machine/pc/v86-internals.js';
import { describeV86Build, v86Build } from '../../src/machine/pc/v86-build.js';
import { VGA_MEMORY_BYTES } from '../../src/machine/pc/pc-config.js';
import { defaultBios } from '../../src/image/guest-image.js';
import { rewriteInstantiatedModules } from '../../src/machine/pc/module-rewrite.js';
import { guestImage } from './helpers.js';

// As in the vCPU thread: the emulator's memory is shared.
rewriteInstantiatedModules(() => {});

const RAM = 64 * 1024 * 1024;
const EMULATOR = describeV86Build();

async function emulator(bios: string): Promise<Emulator> {
  const b = readFileSync(bios);
  const e = new V86({
    wasm_path: v86Build().wasmPath,
    memory_size: RAM,
    vga_memory_size: VGA_MEMORY_BYTES,
    bios: { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer },
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  }) as Emulator;
  await new Promise<void>((r) => e.add_listener('emulator-ready', () => r()));
  checkInternals(e);
  return e;
}

/** v86's layout: header (magic, version, total, info length), info JSON, aligned buffers. */
function rewrite(
  blob: Uint8Array,
  f: (info: { buffer_infos: unknown[]; state: unknown[] }) => void,
): Uint8Array {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.length);
  const infoLen = dv.getInt32(12, true);
  const info = JSON.parse(Buffer.from(blob.subarray(16, 16 + infoLen)).toString('utf8'));
  const buffers = blob.subarray((16 + infoLen + 3) & ~3);
  f(info);
  const json = Buffer.from(JSON.stringify(info));
  const start = (16 + json.length + 3) & ~3;
  const out = new Uint8Array(start + buffers.length);
  out.set(blob.subarray(0, 16));
  out.set(json, 16);
  out.set(buffers, start);
  const odv = new DataView(out.buffer);
  odv.setInt32(8, out.length, true);
  odv.setInt32(12, json.length, true);
  return out;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const expect = { emulator: EMULATOR, ramBytes: RAM };
/** A description that matches `blob`, as an honest source would send for it. */
const honest = (blob: Uint8Array): unknown => describeState(blob, EMULATOR);

test('a PC device state: saved without RAM, checked, tampered with, restored', async (t) => {
  const image = guestImage(t);
  if (!image) return;
  const e = await emulator(defaultBios(image)!.bios);
  try {
    // Let the BIOS run a little (it sets up the PCI devices), as any source has.
    await e.run();
    await sleep(1500);
    await e.stop();
    const blob = saveDeviceState(e.v86, RAM);
    assert.ok(blob.length < 2_000_000, `no RAM in it: ${blob.length} bytes`);
    checkDeviceState(honest(blob), blob, expect);

    const refused: [string, () => void, RegExp][] = [
      [
        'another build',
        () => checkDeviceState(describeState(blob, 'v86 0.0.1 (wasm 00)'), blob, expect),
        /state from emulator v86 0\.0\.1/,
      ],
      ['no bytes', () => checkDeviceState(honest(blob), null, expect), /never arrived/],
      [
        'fewer bytes',
        () => checkDeviceState(honest(blob), blob.subarray(1), expect),
        /state is \d+ bytes, the source sent \d+/,
      ],
    ];
    const flipped = Uint8Array.from(blob);
    flipped[blob.length - 5] ^= 1;
    refused.push([
      'a flipped byte',
      () => checkDeviceState(honest(blob), flipped, expect),
      /damaged on the way: CRC-32/,
    ]);

    // Tampered by someone who also fixed the description: the layout checks must hold.
    const forged =
      (b: Uint8Array): (() => void) =>
      () =>
        checkDeviceState(honest(b), b, expect);
    const withWord = (offset: number, value: number): Uint8Array => {
      const c = Uint8Array.from(blob);
      new DataView(c.buffer).setInt32(offset, value, true);
      return c;
    };
    refused.push(
      ['bad magic', forged(withWord(0, 0x12345678)), /bad state magic 0x12345678/],
      ['zstd', forged(withWord(0, 0xfd2fb528 | 0)), /compressed states are not accepted/],
      ['version', forged(withWord(4, 5)), /state format version 5, expected 6/],
      ['total length', forged(withWord(8, 12)), /state header says 12 bytes/],
      ['info length', forged(withWord(12, blob.length)), /info block of \d+ bytes does not fit/],
      ['too short', forged(blob.subarray(0, 8)), /too short/],
      [
        'info not JSON',
        forged(
          (() => {
            const c = Uint8Array.from(blob);
            c[16] = 0x7b;
            c[17] = 0x7b;
            return c;
          })(),
        ),
        /not valid JSON/,
      ],
      [
        'buffer beyond the end',
        forged(rewrite(blob, (i) => ((i.buffer_infos[0] as { offset: number }).offset = 1e9))),
        /state buffer 0 \(offset 1000000000, \d+ bytes\) is out of bounds/,
      ],
      [
        'another RAM size',
        forged(rewrite(blob, (i) => (i.state[0] = RAM * 2))),
        /state is for 134217728 bytes of RAM, this PC has 67108864/,
      ],
      [
        'missing buffer',
        forged(
          rewrite(blob, (i) => (i.state[77] = { __state_type__: 'Uint8Array', buffer_id: 999 })),
        ),
        /refers to buffer 999/,
      ],
      [
        'no state array',
        forged(rewrite(blob, (i) => ((i as { state: unknown }).state = 'x'))),
        /lacks buffer_infos or state/,
      ],
    );
    const withRam = new Uint8Array(e.v86.save_state());
    refused.push(['RAM inside', forged(withRam), /state carries RAM/]);
    for (const [what, check, message] of refused) {
      assert.throws(check, message, what);
    }

    // A checked state restores into another emulator; one that passes the checks but that v86
    // cannot take throws (the machine then replaces its emulator).
    const other = await emulator(defaultBios(image)!.bios);
    try {
      restoreDeviceState(other.v86, blob);
      assert.equal(sha(saveDeviceState(other.v86, RAM)).length, 64);
      const broken = rewrite(blob, (i) => (i.state[43] = null));
      checkDeviceState(honest(broken), broken, expect);
      assert.throws(() => restoreDeviceState(other.v86, broken));
    } finally {
      await other.destroy();
    }
  } finally {
    await e.destroy();
  }
});
