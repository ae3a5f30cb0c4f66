// `livemig accel selftest`: on the emulated device, on the FIFO stand-in for a kernel WQ, on
// misconfigured WQs, and as a user without DSA gets it from the command line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { accelSelftest } from '../../src/accel/hw/selftest.js';
import { FifoDevice, addonSkip, fakeIdxd } from './hw-helpers.js';

const skip = addonSkip();
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const CHECKS = [
  'COMPVAL, a zero page',
  'COMPVAL, a non-zero page (last byte set)',
  'a batch of 128 pages (zero and non-zero)',
  'COMPVAL on a deliberately faulting address',
];

test('dsa-emu: every check passes, with latency and throughput per batch size', async () => {
  const r = await accelSelftest('dsa-emu:dsa0/wq0.0', { iterations: 5 });
  assert.equal(r.ok, true, r.text);
  for (const name of [...CHECKS, 'a batch of 1024 pages']) {
    assert.ok(
      r.checks.some((c) => c.name === name && c.ok),
      `${name}:\n${r.text}`,
    );
  }
  assert.match(r.text, /PAGE_FAULT_NOBOF at 0x1000/);
  assert.match(
    r.text,
    /page faults inside a batch \(injected\), finished on the CPU: .*2 pageFault/,
  );
  assert.deepEqual(
    r.timings.map((t) => t.pages),
    [1, 128, 1024],
  );
  assert.ok(r.timings.every((t) => t.byDevice === 1 && t.medianUs > 0 && t.gbps > 0));
  assert.match(r.text, /Latency and throughput[\s\S]*dsa_completion: .* ms of CPU/);
});

test('dsa-emu with a small max_batch_size: the 1024 batch is skipped, saying why', async () => {
  const config = [
    {
      dev: 'dsa0',
      groups: [
        {
          dev: 'group0.0',
          grouped_workqueues: [
            {
              dev: 'wq0.0',
              mode: 'shared',
              size: 64,
              threshold: 64,
              group_id: 0,
              priority: 10,
              max_batch_size: 128,
              type: 'user',
              name: 'x',
            },
          ],
          grouped_engines: [{ dev: 'engine0.0', group_id: 0 }],
        },
      ],
    },
  ];
  const r = await accelSelftest('dsa-emu:dsa0/wq0.0', { emuConfig: config, iterations: 3 });
  assert.equal(r.ok, true, r.text);
  assert.match(r.text, /SKIP {2}a batch of 1024 pages: not run: the WQ's max_batch_size is 128/);
  assert.deepEqual(
    r.timings.map((t) => t.pages),
    [1, 128],
  );
});

test(
  'dsa: through the FIFO stand-in: write() path, every check against the CPU',
  { skip },
  async () => {
    const idxd = fakeIdxd();
    const device = await FifoDevice.start(idxd.node);
    try {
      const r = await accelSelftest('dsa:/dev/dsa/wq0.0', {
        sysfs: idxd.sysfs,
        hw: { allowFifo: true },
        iterations: 3,
      });
      assert.equal(r.ok, true, r.text);
      for (const name of [...CHECKS, '1024 pages (1024 descriptors, one write())']) {
        assert.ok(
          r.checks.some((c) => c.name === name && c.ok),
          `${name}:\n${r.text}`,
        );
      }
      assert.match(r.text, /submission +write\(\): write\(\) on the node/);
      assert.match(r.text, /completion wait +(sleep|umwait|pause): dsa_completion \w/);
      assert.match(
        r.text,
        /work queue +dsa0\/wq0.0: enabled, shared, type user, driver user, size 128/,
      );
      // The test device reads the PROT_NONE page through process_vm_readv: a real fault.
      assert.match(
        r.text,
        /PASS {2}COMPVAL on a deliberately faulting address: PAGE_FAULT_NOBOF at 0x/,
      );
    } finally {
      await device.stop();
      idxd.cleanup();
    }
  },
);

test('dsa: misconfigured WQs are explained in plain words', { skip }, async () => {
  const cases: [Parameters<typeof fakeIdxd>[0], RegExp][] = [
    [{ wq: { state: 'disabled' } }, /is disabled, not enabled: accel-config enable-wq dsa0\/wq0.0/],
    [
      { wq: { type: 'kernel' } },
      /has type 'kernel'; livemig submits from user space and needs type user/,
    ],
    [{ device: { pasid_enabled: 0 } }, /PASID .* intel_iommu=on,sm_on/],
    [{ node: 'none' }, /device node .* does not exist/],
  ];
  for (const [o, re] of cases) {
    const idxd = fakeIdxd(o);
    try {
      const r = await accelSelftest('dsa:/dev/dsa/wq0.0', {
        sysfs: idxd.sysfs,
        hw: { allowFifo: true },
      });
      assert.equal(r.ok, false);
      assert.match(r.text, /What is wrong, and how to fix it/);
      assert.match(r.advice.join('\n'), re, r.text);
    } finally {
      idxd.cleanup();
    }
  }
});

test('dsa: without the addon the selftest says the hardware path is unavailable and why', async () => {
  const idxd = fakeIdxd();
  const saved = process.env.LIVEMIG_DSA_ADDON;
  process.env.LIVEMIG_DSA_ADDON = 'off';
  try {
    const r = await accelSelftest('dsa:/dev/dsa/wq0.0', { sysfs: idxd.sysfs });
    assert.equal(r.ok, false);
    assert.match(r.text, /native addon +unavailable: disabled by LIVEMIG_DSA_ADDON=off/);
    assert.match(r.advice.join('\n'), /the hardware path is unavailable: .* npm run build:addon/);
  } finally {
    if (saved === undefined) delete process.env.LIVEMIG_DSA_ADDON;
    else process.env.LIVEMIG_DSA_ADDON = saved;
    idxd.cleanup();
  }
});

test('livemig accel selftest on a machine without DSA: exit 1, and what to do', () => {
  const r = spawnSync(process.execPath, [CLI, 'accel', 'selftest', 'dsa:/dev/dsa/wq0.0'], {
    encoding: 'utf8',
    env: { ...process.env, DSA_SYSFS_PATH: '/nonexistent/livemig/sysfs' },
    timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^livemig accel selftest dsa:\/dev\/dsa\/wq0.0/);
  assert.match(
    r.stdout,
    /does not exist: the idxd driver is not loaded or this machine has no DSA \(check lspci -d 8086:0b25/,
  );
  assert.match(r.stdout, /Result: FAILED/);
  const bad = spawnSync(process.execPath, [CLI, 'accel', 'selftest', 'nvme:/dev/x'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /unknown scheme 'nvme'/);
});
