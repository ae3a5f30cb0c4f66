// The live_migration thread on its own: a real worker, with this test in the channels' place
// (it takes the packets from the slots, frees them, and says when a SYNC is written). It must
// send every page once in pass 1, then exactly the pages dirtied meanwhile, end each pass with
// a SYNC per channel, and take only the messages it expects.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { LM_WORKER } from '../../src/migration/source/source.js';
import {
  CHAN_STAT,
  CHAN_WORD,
  JOB_KNOWN_ZERO,
  JOB_SYNC,
  LIVE,
  MIG,
  SLOT,
  SLOTS_PER_CHANNEL,
  createSlots,
} from '../../src/migration/source/channel-slots.js';
import { SlotConsumer } from '../../src/migration/source/slot-ring.js';
import type {
  LiveMigrationWorkerData,
  SourceWorkerMessage,
} from '../../src/migration/source/worker-data.js';
import { allocateBlocks, pagesOf } from '../../src/ram/layout.js';
import { VcpuControl } from '../../src/ram/vcpu-control.js';
import { createCpuSlots } from '../../src/util/cpu-slots.js';
import { PAGE_SIZE } from '../../src/migration/protocol.js';
import {
  KNOWN_ZERO_CHUNK_PAGES,
  clearKnownZero,
  createKnownZeroMap,
} from '../../src/ram/known-zero.js';

const CHANNELS = 2;
const PACKET_PAGES = 16;

function migrationData(ramBytes: number): LiveMigrationWorkerData {
  const live = new SharedArrayBuffer(8 * LIVE.size);
  // Converge once nothing is left to send; no rate limit, no auto-converge.
  new Float64Array(live)[LIVE.downtimeLimitMs] = 0;
  return {
    blocks: allocateBlocks(ramBytes, 512 * 1024),
    slots: createSlots(CHANNELS),
    mig: new SharedArrayBuffer(4 * MIG.size),
    chanStats: new SharedArrayBuffer(8 * CHAN_STAT.size * CHANNELS),
    chanWords: new SharedArrayBuffer(4 * CHAN_WORD.size * CHANNELS),
    cpuSlots: createCpuSlots(),
    channels: CHANNELS,
    packetPages: PACKET_PAGES,
    stallTimeoutMs: 10_000,
    threadNice: 0,
    mode: 'multifd',
    vcpuControl: new VcpuControl().buffer,
    dirtyTracking: 'vcpu-writes',
    cpuSlot: 0,
    liveParams: live,
  };
}

/** What one channel took from its ring: per pass, the (block, page) pairs and the SYNCs. */
interface Taken {
  pages: Map<number, string[]>;
  syncs: number[];
  /** the pages of JOB_KNOWN_ZERO jobs (any pass) */
  knownZero: string[];
}

/** While true, the destination played here has applied nothing new (see reportApplied). */
let holdApplied = false;
/** The destination played here applies a pass this long after both its SYNCs were written. */
let applyDelayMs = 0;

/**
 * Play the destination's PassApplied: a pass both channels have written the SYNC of counts as
 * applied (MIG.appliedPass, as the source's main thread stores it).
 */
function reportApplied(d: LiveMigrationWorkerData): void {
  const words = new Int32Array(d.chanWords);
  const mig = new Int32Array(d.mig);
  let applied = Infinity;
  for (let ch = 0; ch < CHANNELS; ch++) {
    applied = Math.min(applied, Atomics.load(words, ch * CHAN_WORD.size + CHAN_WORD.flushedPass));
  }
  if (applied > Atomics.load(mig, MIG.appliedPass)) {
    Atomics.store(mig, MIG.appliedPass, applied);
    Atomics.notify(mig, MIG.appliedPass);
  }
}

/** Play channel `ch`: take packets until the migration's `done` resolves. */
async function channel(
  d: LiveMigrationWorkerData,
  ch: number,
  taken: Taken,
  onPacket: (pass: number) => void,
  done: Promise<unknown>,
): Promise<void> {
  const ring = new SlotConsumer(d.slots, d.mig, ch);
  const slots = new Int32Array(d.slots);
  const pages = new Uint32Array(d.slots);
  const stats = new Float64Array(d.chanStats);
  const words = new Int32Array(d.chanWords);
  let finished = false;
  void done.then(() => (finished = true));
  for (let slot = 0; ; slot = (slot + 1) % SLOTS_PER_CHANNEL) {
    while (!(await ring.fillsWithin(slot, 20))) if (finished) return;
    const base = ring.base(slot);
    const pass = slots[base + SLOT.pass];
    if (slots[base + SLOT.flags] & JOB_SYNC) {
      taken.syncs.push(pass);
      ring.release(slot);
      Atomics.store(words, ch * CHAN_WORD.size + CHAN_WORD.flushedPass, pass);
      Atomics.notify(words, ch * CHAN_WORD.size + CHAN_WORD.flushedPass);
      if (applyDelayMs > 0) setTimeout(() => reportApplied(d), applyDelayMs);
      else if (!holdApplied) reportApplied(d);
      continue;
    }
    const block = slots[base + SLOT.block];
    const count = slots[base + SLOT.count];
    const list = taken.pages.get(pass) ?? [];
    taken.pages.set(pass, list);
    const known = (slots[base + SLOT.flags] & JOB_KNOWN_ZERO) !== 0;
    for (let i = 0; i < count; i++) {
      list.push(`${block}:${pages[base + SLOT.header + i]}`);
      if (known) taken.knownZero.push(`${block}:${pages[base + SLOT.header + i]}`);
    }
    stats[ch * CHAN_STAT.size + CHAN_STAT.bytes] += count * PAGE_SIZE;
    onPacket(pass);
    ring.release(slot);
  }
}

function startWorker(): { worker: Worker; messages: SourceWorkerMessage[]; ended: Promise<void> } {
  const worker = new Worker(LM_WORKER);
  const messages: SourceWorkerMessage[] = [];
  worker.on('message', (m: SourceWorkerMessage) => messages.push(m));
  const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return { worker, messages, ended };
}

/**
 * Run live_migration on `d` with both channels played here (`onPacket` sees each data packet's
 * pass) and `alongside` running meanwhile, until it has sent its final pass and exited.
 */
async function migrate(
  d: LiveMigrationWorkerData,
  onPacket: (pass: number) => void = () => {},
  alongside: (messages: SourceWorkerMessage[]) => Promise<void> = async () => {},
): Promise<{ messages: SourceWorkerMessage[]; taken: Taken[] }> {
  const { worker, messages, ended } = startWorker();
  const taken: Taken[] = [0, 1].map(() => ({ pages: new Map(), syncs: [], knownZero: [] }));
  const finalSent = new Promise<void>((resolve) =>
    worker.on('message', (m: SourceWorkerMessage) => m.type === 'final-sent' && resolve()),
  );
  // An Atomics.waitAsync timeout does not hold Node's event loop open; this does, meanwhile.
  const keepAlive = setInterval(() => {}, 100);
  try {
    const side = alongside(messages);
    const channels = [0, 1].map((ch) => channel(d, ch, taken[ch], onPacket, finalSent));
    worker.postMessage({ type: 'bind', data: d });
    worker.postMessage({ type: 'start' });
    await Promise.race([finalSent, ended]);
    assert.deepEqual(
      messages.filter((m) => m.type === 'error'),
      [],
      'no error',
    );
    await side;
    await Promise.all(channels);
    await ended;
  } finally {
    clearInterval(keepAlive);
  }
  return { messages, taken };
}

test('live_migration sends every page in pass 1, then what was dirtied, a SYNC per channel per pass', async () => {
  const d = migrationData(1024 * 1024); // two blocks of 128 pages
  // While pass 1 is under way the "guest" writes page 5 of block 0 and page 100 of block 1.
  let dirtied = false;
  const dirty = (pass: number): void => {
    if (pass !== 1 || dirtied) return;
    dirtied = true;
    Atomics.or(new Int32Array(d.blocks[0].dirty), 0, 1 << 5);
    Atomics.or(new Int32Array(d.blocks[1].dirty), 3, 1 << 4);
  };
  const { messages, taken } = await migrate(d, dirty);

  const errors = messages.filter((m) => m.type === 'error');
  assert.deepEqual(errors, []);
  const passes = messages.filter((m) => m.type === 'pass');
  assert.deepEqual(
    passes.map((p) => p.pass),
    [1, 2],
    'pass 2 sends the dirtied pages, and then nothing is left',
  );
  const stopped = messages.find((m) => m.type === 'stopped');
  const final = messages.find((m) => m.type === 'final-sent');
  assert.equal(stopped?.type === 'stopped' && stopped.pass, 3);
  assert.equal(final?.type === 'final-sent' && final.pass, 3);

  const pass = (n: number): string[] => taken.flatMap((t) => t.pages.get(n) ?? []).sort();
  const all = d.blocks.flatMap((b) =>
    Array.from({ length: pagesOf(b.size) }, (_, p) => `${b.id}:${p}`),
  );
  assert.deepEqual(pass(1), all.sort(), 'pass 1: every page exactly once');
  assert.deepEqual(pass(2), ['0:5', '1:100'], 'pass 2: exactly the dirtied pages');
  assert.deepEqual(pass(3), [], 'final pass: nothing was dirtied since');
  for (const t of taken) assert.deepEqual(t.syncs, [1, 2, 3], 'one SYNC per pass per channel');
  assert.ok(
    taken.every((t) => (t.pages.get(1)?.length ?? 0) > 0),
    'pass 1 used both channels',
  );
});

test("pass 1 sends the chunks a block's known-zero map flags as known zero, and only those", async () => {
  for (const mode of ['multifd', 'legacy', 'dsa-accel', 'none'] as const) {
    const d = { ...migrationData(1024 * 1024), mode }; // two blocks of 8 chunks each
    const map = createKnownZeroMap(d.blocks[0].size);
    d.blocks[0] = { ...d.blocks[0], knownZero: map };
    // Chunks 0 and 3 of block 0 were written; block 1 keeps no map.
    clearKnownZero(new Uint8Array(map), 0);
    clearKnownZero(new Uint8Array(map), 3);
    const { taken } = await migrate(d);
    const known = taken.flatMap((t) => t.knownZero).sort();
    const expected =
      mode === 'none'
        ? [] // zero-page-detection=none: every page is data
        : Array.from({ length: 128 }, (_, p) => p)
            .filter((p) => ![0, 3].includes(Math.floor(p / KNOWN_ZERO_CHUNK_PAGES)))
            .map((p) => `0:${p}`)
            .sort();
    assert.deepEqual(known, expected, `${mode}: the known-zero jobs`);
    const pass1 = taken.flatMap((t) => t.pages.get(1) ?? []);
    assert.equal(pass1.length, 256, `${mode}: pass 1 still sends every page once`);
    assert.equal(new Set(pass1).size, 256);
  }
});

test('live_migration stops the guest only once the destination has applied what was sent', async () => {
  const d = migrationData(1024 * 1024);
  // The destination applies nothing until pass 1's SYNC is written, and then only 300 ms later:
  // far longer than the pass took.
  holdApplied = true;
  let heldAt = -1;
  const { messages } = await migrate(d, undefined, async (messages) => {
    const words = new Int32Array(d.chanWords);
    while ([0, 1].some((ch) => Atomics.load(words, ch * CHAN_WORD.size) < 1)) {
      await sleep(5);
    }
    await sleep(300);
    heldAt = messages.length;
    holdApplied = false;
    reportApplied(d);
  });
  const stoppedAt = messages.findIndex((m) => m.type === 'stopped');
  assert.ok(heldAt >= 0 && stoppedAt >= heldAt, 'the guest stopped after the destination applied');
  const passes = messages.filter((m) => m.type === 'pass').map((m) => m.type === 'pass' && m.pass);
  assert.ok(
    passes.length >= 2,
    `a wait longer than the pass is followed by another pass and decision (passes ${passes.join()})`,
  );
  const final = messages.find((m) => m.type === 'final-sent');
  assert.equal(final?.type === 'final-sent' && final.pass, passes.length + 1);
});

test('a destination always slower than the pass costs one more pass, not one per pass', async () => {
  const d = migrationData(1024 * 1024);
  applyDelayMs = 200;
  const { messages } = await migrate(d).finally(() => (applyDelayMs = 0));
  const passes = messages.filter((m) => m.type === 'pass').map((m) => m.type === 'pass' && m.pass);
  assert.deepEqual(passes, [1, 2], 'one more pass after the first long wait, then the stop');
  const stopped = messages.find((m) => m.type === 'stopped');
  assert.equal(stopped?.type === 'stopped' && stopped.pass, 3);
});

test('live_migration takes only bind, then start', async () => {
  const data = migrationData(64 * 1024);
  for (const [sequence, expected] of [
    [[{ type: 'start' }], /unexpected message 'start' before 'bind'/],
    [[{ type: 'go' }], /unexpected message 'go' before 'bind'/],
    [
      [
        { type: 'bind', data },
        { type: 'bind', data },
      ],
      /unexpected message 'bind' after 'bind'/,
    ],
    [[{ type: 'bind', data }, { hello: 1 }], /unexpected message \{"hello":1\} after 'bind'/],
  ] as const) {
    const { worker, messages } = startWorker();
    const got = new Promise<SourceWorkerMessage>((resolve) => worker.once('message', resolve));
    for (const m of sequence) worker.postMessage(m);
    const m = await got;
    assert.equal(m.type, 'error');
    assert.match(m.type === 'error' ? m.message : '', expected);
    assert.equal(messages.length, 1, 'and it did not start');
    await worker.terminate();
  }
});
