// Byte-exact migration between two real `livemig run` processes on loopback, driven over QMP,
// with the stress workload running on the source and RAM verified by digest at completion.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair } from '../../src/harness/local-migration.js';

type Info = Record<string, unknown> & {
  status: string;
  ram: Record<string, number>;
  livemig: Record<string, unknown>;
};

async function migrateOnce(opts: {
  mode: string;
  channels: number;
  blockSize?: string;
  ratio?: number;
}): Promise<{ src: Info; dst: Info }> {
  const pair = await LocalPair.start({
    ram: '64M',
    ramBlockSize: opts.blockSize,
    normalPageRatio: opts.ratio ?? 0.5,
    workload: 'stress',
  });
  try {
    const { source, dest } = await pair.migrate(
      { multifd: true, events: true, 'x-verify-ram': true },
      {
        'multifd-channels': opts.channels,
        'zero-page-detection': opts.mode,
        'downtime-limit': 2000,
      },
    );
    const status = await pair.dest.qmp.execute<{ status: string }>('query-status');
    assert.equal(status.status, 'running', 'destination guest runs on after completion');
    return { src: source as Info, dst: dest as Info };
  } finally {
    await pair.close();
  }
}

for (const mode of ['none', 'legacy', 'multifd']) {
  for (const channels of [1, 2, 4]) {
    for (const blockSize of [undefined, '16M']) {
      const layout = blockSize ? 'multi-block (4 x 16 MiB)' : 'single block';
      test(`byte-exact migration: zero-page-detection=${mode}, ${channels} channel(s), ${layout}, stress running`, async () => {
        const { src, dst } = await migrateOnce({ mode, channels, blockSize });
        assert.equal(src.status, 'completed', String(src['error-desc']));
        assert.equal(dst.status, 'completed', String(dst['error-desc']));
        assert.equal(src.livemig.verify, 'ok', 'destination RAM digest equals the source');
        assert.equal(dst.status, 'completed');
        assert.ok(src.ram['dirty-sync-count'] >= 1);
        const totalPages = (64 * 1024 * 1024) / 4096;
        assert.ok(
          src.ram.normal + src.ram.duplicate >= totalPages,
          'every page was sent at least once',
        );
        if (mode === 'none') {
          assert.equal(src.ram.duplicate, 0, 'mode none sends every page whole');
        } else {
          // Half the pages are zero at start; the stress range dirties at most 100 MB of them.
          assert.ok(src.ram.duplicate > 0, 'zero pages were detected');
        }
        assert.equal(src.ram.total, 64 * 1024 * 1024);
        assert.equal(src.ram.remaining, 0);
      });
    }
  }
}

test('an all-zero idle guest sends its pages as zero ranges', async () => {
  const pair = await LocalPair.start({
    ram: '64M',
    normalPageRatio: 0,
    workload: 'none',
    sourcePaused: true,
  });
  try {
    const { source } = await pair.migrate(
      { multifd: true, 'x-verify-ram': true },
      { 'multifd-channels': 2 },
    );
    const src = source as Info;
    assert.equal(src.status, 'completed');
    assert.equal(src.ram.normal, 0);
    assert.equal(src.ram.duplicate, 16384, 'zero pages are counted as pages, not as ranges');
    // One 8-byte range per 128-page packet plus headers: under a byte per page (an offset per
    // zero page, protocol 3, was 8 bytes per page).
    assert.ok(src.ram.transferred < 16384, `transferred ${src.ram.transferred}`);
    assert.equal(src.livemig.verify, 'ok');
    const st = await pair.source.qmp.execute<{ status: string }>('query-status');
    assert.equal(st.status, 'postmigrate');
  } finally {
    await pair.close();
  }
});

// The zero-page counters mean pages, whatever the wire carries: on a stopped guest with every
// other page normal, every mode that detects zero pages finds exactly the zero half.
for (const mode of ['none', 'legacy', 'multifd', 'dsa-accel']) {
  // dsa-accel on the emulated device
  const accel = mode === 'dsa-accel' ? { 'accel-path': ['dsa-emu:dsa0/wq0.0'] } : {};
  test(`zero-page-detection=${mode} counts the pages of a stopped half-zero guest exactly`, async () => {
    const pair = await LocalPair.start({
      ram: '64M',
      normalPageRatio: 0.5,
      workload: 'none',
      sourcePaused: true,
    });
    try {
      const { source } = await pair.migrate(
        { multifd: true, 'x-verify-ram': true },
        { 'multifd-channels': 2, 'zero-page-detection': mode, ...accel },
      );
      const src = source as Info;
      assert.equal(src.status, 'completed', String(src['error-desc']));
      assert.equal(src.livemig.verify, 'ok');
      assert.equal(src.ram.normal, mode === 'none' ? 16384 : 8192);
      assert.equal(src.ram.duplicate, mode === 'none' ? 0 : 8192);
    } finally {
      await pair.close();
    }
  });
}
