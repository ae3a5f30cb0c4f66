// The emulated devices' address space (src/accel/dsa/emu/address-space.ts) between real
// threads: a region registered in one thread is translated in another (an engine's), and guest
// RAM registered with its WebAssembly.Memory reaches the engine with it, so that the engine's
// zero checks run in wasm (src/zero/wasm-zero.ts) as the channels' do.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { AddressSpace } from '../../src/accel/dsa/emu/address-space.js';
import { registerWasmRam } from '../../src/zero/wasm-zero.js';

/**
 * An engine-like thread: as an engine, it never returns to its event loop once translating
 * (mappings arrive with receiveMessageOnPort), so requests come through shared words.
 * ctl: [0] 1 = a request is there, 2 = stop; [1..3] lo, hi, len; answers in [4..7].
 */
const TRANSLATOR = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { AddressSpace, Translation } = await import(workerData.addressSpace);
  const { wasmCheckFor, wasmAddressOf } = await import(workerData.wasmZero);
  const { isZeroRange } = await import(workerData.zeroCheck);
  const ctl = new Int32Array(workerData.ctl);
  const as = AddressSpace.attach(workerData.handle);
  as.enableTranslation();
  const t = new Translation();
  parentPort.postMessage('ready');
  for (;;) {
    Atomics.wait(ctl, 0, 0);
    if (Atomics.load(ctl, 0) === 2) break;
    const ok = as.translate(ctl[1], ctl[2], ctl[3], t);
    ctl[4] = ok ? 1 : 0;
    ctl[5] = ok && wasmCheckFor(t.buf.buffer) !== undefined ? 1 : 0;
    ctl[6] = ok ? (wasmAddressOf(t.buf) ?? -1) : -1;
    ctl[7] = ok && isZeroRange(t.buf, t.off, ctl[3]) ? 1 : 0;
    Atomics.store(ctl, 0, 0);
    Atomics.notify(ctl, 0);
  }
})();
`;

function moduleUrl(path: string): string {
  return new URL(path, import.meta.url).href;
}

interface Answer {
  ok: boolean;
  wasm?: boolean;
  viewAddress?: number | null;
  zero?: boolean;
}

async function startTranslator(as: AddressSpace): Promise<{
  ask: (lo: number, hi: number, len: number) => Promise<Answer>;
  stop: () => Promise<void>;
}> {
  const ctl = new Int32Array(new SharedArrayBuffer(8 * 4));
  const worker = new Worker(TRANSLATOR, {
    eval: true,
    workerData: {
      ctl: ctl.buffer,
      handle: as.handle,
      addressSpace: moduleUrl('../../src/accel/dsa/emu/address-space.js'),
      wasmZero: moduleUrl('../../src/zero/wasm-zero.js'),
      zeroCheck: moduleUrl('../../src/zero/zero-check.js'),
    },
  });
  const [first] = (await once(worker, 'message')) as [unknown];
  assert.equal(first, 'ready');
  const ask = async (lo: number, hi: number, len: number): Promise<Answer> => {
    ctl.set([lo | 0, hi | 0, len], 1);
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    const w = Atomics.waitAsync(ctl, 0, 1);
    if (w.async) await w.value;
    if (ctl[4] === 0) return { ok: false };
    return {
      ok: true,
      wasm: ctl[5] === 1,
      viewAddress: ctl[6] < 0 ? null : ctl[6],
      zero: ctl[7] === 1,
    };
  };
  const stop = async (): Promise<void> => {
    Atomics.store(ctl, 0, 2);
    Atomics.notify(ctl, 0);
    await once(worker, 'exit');
  };
  return { ask, stop };
}

test('guest RAM registered with its WebAssembly memory: the engine thread checks it in wasm', async () => {
  const as = AddressSpace.create();
  const { ask, stop } = await startTranslator(as);
  try {
    const memory = new WebAssembly.Memory({ initial: 4, maximum: 4, shared: true });
    const ram = memory.buffer as SharedArrayBuffer;
    registerWasmRam(ram, memory);
    new Uint8Array(ram)[3 * 65536 + 17] = 5;
    const region = as.register(ram);
    const lo = region.base % 2 ** 32;
    const hi = region.baseHi;
    assert.deepEqual(await ask(lo, hi, 65536), {
      ok: true,
      wasm: true,
      viewAddress: 0,
      zero: true,
    });
    assert.deepEqual(await ask(lo + 3 * 65536, hi, 65536), {
      ok: true,
      wasm: true,
      viewAddress: 0,
      zero: false,
    });

    // Plain shared memory has no wasm instance: the same answers from the native compare.
    const plain = new SharedArrayBuffer(65536);
    new Uint8Array(plain)[4096] = 1;
    const p = as.register(plain);
    const plo = p.base % 2 ** 32;
    assert.deepEqual(await ask(plo, p.baseHi, 4096), {
      ok: true,
      wasm: false,
      viewAddress: null,
      zero: true,
    });
    assert.deepEqual(await ask(plo + 4096, p.baseHi, 4096), {
      ok: true,
      wasm: false,
      viewAddress: null,
      zero: false,
    });

    as.unregister(ram);
    assert.deepEqual(await ask(lo, hi, 4096), { ok: false }, 'an unmapped region faults');
  } finally {
    await stop();
    as.close();
  }
});
