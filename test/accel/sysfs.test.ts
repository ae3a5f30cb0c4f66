// Real-hardware discovery against a fixture sysfs tree (test/fixtures/sysfs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseAccelPath, type DsaTarget } from '../../src/accel/accel-path.js';
import {
  checkDsaTarget,
  listSysfs,
  openDsaTarget,
  type SysfsOptions,
} from '../../src/accel/sysfs.js';
import { openAccelerator } from '../../src/accel/driver.js';
import { addonStatus } from '../../src/accel/hw/addon.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/sysfs/', import.meta.url));
const opts: SysfsOptions = { sysfsRoot: join(FIXTURE, 'devices'), devRoot: join(FIXTURE, 'dev') };

function target(wq: string): DsaTarget {
  return parseAccelPath([`dsa:/dev/dsa/${wq}`])[0] as DsaTarget;
}

test('a usable shared user WQ passes every check', async () => {
  const c = await checkDsaTarget(target('wq0.0'), opts);
  assert.deepEqual(c.errors, []);
  assert.equal(c.ok, true);
  assert.equal(c.node, join(FIXTURE, 'dev', 'wq0.0'));
  assert.equal(c.wq?.size, 128);
  assert.equal(c.wq?.max_batch_size, 1024);
});

test('without the native addon it gets a clear error: hardware path unavailable, use dsa-emu', async () => {
  const saved = process.env.LIVEMIG_DSA_ADDON;
  process.env.LIVEMIG_DSA_ADDON = 'off';
  try {
    await assert.rejects(
      openDsaTarget(target('wq0.0'), opts),
      /dsa0\/wq0.0 is a usable shared work queue, but the hardware path is unavailable: disabled by LIVEMIG_DSA_ADDON=off\. Submitting to real DSA hardware needs livemig's native addon .* use the emulated device instead, e\.g\. accel-path=dsa-emu:dsa0\/wq0\.0/,
    );
    await assert.rejects(
      openAccelerator(['dsa:/dev/dsa/wq0.0'], { sysfs: opts }),
      /hardware path is unavailable/,
    );
  } finally {
    if (saved === undefined) delete process.env.LIVEMIG_DSA_ADDON;
    else process.env.LIVEMIG_DSA_ADDON = saved;
  }
});

test('with the addon, a node that is not a character device is refused before anything is mapped', async (t) => {
  if (!addonStatus().available) {
    t.skip(`native addon unavailable: ${(addonStatus() as { reason: string }).reason}`);
    return;
  }
  // The fixture's nodes are regular files.
  await assert.rejects(
    openAccelerator(['dsa:/dev/dsa/wq0.0'], { sysfs: opts }),
    /wq0.0 is not a character device, so it is not an idxd work queue node/,
  );
});

const failures: [string, RegExp][] = [
  ['wq0.2', /type 'kernel'; .* accel-config config-wq dsa0\/wq0.2 -y user -d user/],
  ['wq0.3', /dsa0\/wq0.3 is disabled, not enabled: accel-config enable-wq dsa0\/wq0.3/],
  ['wq0.4', /device node .*wq0.4 does not exist/],
  ['wq0.6', /has size 0: .* -s 128/],
  [
    'wq0.9',
    /work queue wq0.9 not found .*dsa0 has wq0.0, wq0.1, .*accel-config config-wq dsa0\/wq0.9 -g 0 -s 128 -p 10 -t 128 -m shared -y user -n livemig -d user/,
  ],
  ['wq2.0', /device dsa2 is disabled, not enabled: accel-config enable-device dsa2/],
  ['wq4.0', /device dsa4 .* not found .* DSA devices here: dsa0, dsa2/],
];

for (const [wq, re] of failures) {
  test(`${wq}: the check fails with an actionable message`, async () => {
    const c = await checkDsaTarget(target(wq), opts);
    assert.equal(c.ok, false);
    assert.ok(
      c.errors.some((e) => re.test(e)),
      `expected ${re} in:\n${c.errors.join('\n')}`,
    );
    await assert.rejects(openDsaTarget(target(wq), opts), /cannot be used/);
  });
}

test('a dedicated WQ is usable (MOVDIR64B with credits), with a warning that it has one opener', async () => {
  const c = await checkDsaTarget(target('wq0.1'), opts);
  assert.deepEqual(c.errors, []);
  assert.match(
    c.warnings.join('\n'),
    /wq0.1 is dedicated: livemig submits with MOVDIR64B .* no other process .* can open it/,
  );
});

test('a small max_batch_size is a warning, not an error', async () => {
  const c = await checkDsaTarget(target('wq0.5'), opts);
  assert.equal(c.ok, true);
  assert.match(
    c.warnings.join('\n'),
    /max_batch_size 16, below a 128-page packet.*config-wq dsa0\/wq0.5 -c 1024, dsa0's max_batch_size/,
  );
});

test('permission denied opening the node suggests chown', async () => {
  const c = await checkDsaTarget(target('wq0.0'), {
    ...opts,
    openNode: async () => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    },
  });
  assert.equal(c.ok, false);
  assert.match(
    c.errors[0],
    /permission denied opening (\S+)\/wq0.0 read-write: .* sudo chown -R \$\(id -un\) \1\)/,
  );
});

test('no idxd driver: the missing sysfs root is explained, with dsa-emu as the way out', async () => {
  const c = await checkDsaTarget(target('wq0.0'), { sysfsRoot: join(FIXTURE, 'nope') });
  assert.match(
    c.errors[0],
    /does not exist: the idxd driver is not loaded .* accel-path=dsa-emu:dsa0\/wq0.0/,
  );
});

test('the roots are relocatable with DSA_SYSFS_PATH and DSA_DEV_PATH', async () => {
  const env = { DSA_SYSFS_PATH: opts.sysfsRoot, DSA_DEV_PATH: opts.devRoot };
  const c = await checkDsaTarget(target('wq0.0'), { env });
  assert.equal(c.ok, true);
  assert.equal(c.node, join(FIXTURE, 'dev', 'wq0.0'));
  const l = await listSysfs({ env });
  assert.equal(l.root, opts.sysfsRoot);
});

test('listing: devices, groups with their WQs and engines, ungrouped engines', async () => {
  const l = await listSysfs(opts);
  assert.deepEqual(
    l.devices.map((d) => d.dev),
    ['dsa0', 'dsa2'],
  );
  const dsa0 = l.devices[0];
  assert.equal(dsa0.state, 'enabled');
  assert.equal(dsa0.groups.length, 4);
  assert.deepEqual(
    dsa0.groups[0].grouped_workqueues?.map((w) => w.dev),
    ['wq0.0', 'wq0.4', 'wq0.5', 'wq0.6'],
  );
  assert.deepEqual(
    dsa0.groups[0].grouped_engines?.map((e) => e.dev),
    ['engine0.0'],
  );
  assert.equal(dsa0.groups[1].grouped_workqueues?.[0].mode, 'dedicated');
  assert.deepEqual(
    l.devices[1].ungrouped_engines?.map((e) => e.dev),
    ['engine2.0'],
  );
  const none = await listSysfs({ sysfsRoot: join(FIXTURE, 'nope') });
  assert.equal(none.devices.length, 0);
  assert.match(none.note ?? '', /idxd driver is not loaded/);
});
