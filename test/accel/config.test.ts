// The emulated device's configuration (accel-config JSON) and `livemig accel list/check`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultAccfgConfig, defaultEngineCount } from '../../src/accel/dsa/emu/config.js';
import { resolveAccfgConfig } from '../../src/accel/dsa/emu/config-validate.js';
import { accelCheck, accelList, formatAccelCheck } from '../../src/cli/accel.js';
import { DsaEmu } from '../../src/accel/dsa/emu/device.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/sysfs/', import.meta.url));

test('the built-in configuration: dsa0, group0.0, wq0.0 shared 128 / 1024 / 2 MiB', () => {
  const r = resolveAccfgConfig(defaultAccfgConfig(2));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings, []);
  const [d] = r.devices;
  assert.equal(d.name, 'dsa0');
  assert.equal(d.groups[0].name, 'group0.0');
  assert.deepEqual(
    d.engines.map((e) => e.name),
    ['engine0.0', 'engine0.1'],
  );
  const wq = d.wqs[0];
  assert.equal(wq.name, 'wq0.0');
  assert.equal(wq.mode, 'shared');
  assert.equal(wq.size, 128);
  assert.equal(wq.threshold, 128);
  assert.equal(wq.maxBatchSize, 1024);
  assert.equal(wq.maxTransferSize, 2 * 1024 * 1024);
  assert.equal(wq.type, 'user');
  assert.equal(defaultEngineCount(2), 2);
  assert.equal(defaultEngineCount(1), 1);
  assert.equal(defaultEngineCount(64), 4);
});

test("idxd-config's app_profile.conf loads (two groups, old token attribute names)", () => {
  const appProfile = [
    {
      dev: 'dsa0',
      token_limit: 0,
      groups: [
        {
          dev: 'group0.0',
          tokens_reserved: 0,
          use_token_limit: 0,
          tokens_allowed: 8,
          grouped_workqueues: [
            {
              dev: 'wq0.0',
              mode: 'shared',
              size: 8,
              group_id: 0,
              priority: 10,
              block_on_fault: 0,
              max_batch_size: 32,
              max_transfer_size: 16384,
              type: 'user',
              name: 'app1',
              threshold: 6,
            },
          ],
          grouped_engines: [{ dev: 'engine0.0', group_id: 0 }],
        },
        {
          dev: 'group0.1',
          tokens_reserved: 0,
          use_token_limit: 0,
          tokens_allowed: 8,
          grouped_workqueues: [
            {
              dev: 'wq0.1',
              mode: 'shared',
              size: 32,
              group_id: 1,
              priority: 10,
              block_on_fault: 0,
              max_batch_size: 32,
              max_transfer_size: 2097152,
              type: 'user',
              name: 'app2',
              threshold: 28,
            },
          ],
          grouped_engines: [{ dev: 'engine0.1', group_id: 1 }],
        },
      ],
    },
  ];
  const r = resolveAccfgConfig(appProfile);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.warnings, [], 'no unknown attributes');
  assert.deepEqual(
    r.devices[0].wqs.map((w) => [w.name, w.group, w.threshold, w.maxTransferSize]),
    [
      ['wq0.0', 0, 6, 16384],
      ['wq0.1', 1, 28, 2097152],
    ],
  );
});

function wq(extra: Record<string, unknown>) {
  return {
    dev: 'wq0.0',
    mode: 'shared',
    size: 16,
    group_id: 0,
    priority: 10,
    type: 'user',
    threshold: 16,
    ...extra,
  };
}
function dev(wqs: unknown[], engines: unknown[] = [{ dev: 'engine0.0', group_id: 0 }], extra = {}) {
  return [
    {
      dev: 'dsa0',
      groups: [{ dev: 'group0.0', grouped_workqueues: wqs, grouped_engines: engines }],
      ...extra,
    },
  ];
}

const invalid: [string, unknown, RegExp][] = [
  [
    'not an array',
    { dev: 'dsa0' },
    /\(\$\): the configuration must be an array \(a JSON array of devices, .*\), got an object/,
  ],
  [
    'no devices',
    [],
    /^\$: the configuration is empty; it needs at least 1 \(a JSON array of devices/,
  ],
  ['IAA device', [{ dev: 'iax1' }], /IAA \(iax\) devices are not emulated/],
  ['bad device name', [{ dev: 'dsaX' }], /is not a DSA device name/],
  ['duplicate device', [{ dev: 'dsa0' }, { dev: 'dsa0' }], /appears twice/],
  ['WQ of another device', dev([wq({ dev: 'wq1.0' })]), /does not name a work queue of dsa0/],
  ['ninth WQ', dev([wq({ dev: 'wq0.8' })]), /dsa0 has 8 work queues/],
  [
    'bad mode',
    dev([wq({ mode: 'exclusive' })]),
    /^dsa0\/group0.0\/wq0.0 \(\$\[0\]\.groups\[0\]\.grouped_workqueues\[0\]\.mode\): mode "exclusive" is not one of "shared", "dedicated"$/,
  ],
  [
    'shared without threshold',
    dev([wq({ threshold: undefined })]),
    /shared work queue needs a threshold between 1 and its size 16; .* -t 16/,
  ],
  [
    'threshold above size',
    dev([wq({ threshold: 20 })]),
    /threshold 20 exceeds the work queue size 16/,
  ],
  [
    'dedicated with threshold',
    dev([wq({ mode: 'dedicated', threshold: 4 })]),
    /threshold 4 on a dedicated work queue/,
  ],
  ['priority 0', dev([wq({ priority: 0 })]), /priority 0 is out of range \(1\.\.15\)/],
  [
    'WQ sizes over 128',
    dev([wq({ size: 100, threshold: 100 }), wq({ dev: 'wq0.1', size: 100, threshold: 100 })]),
    /add up to 200, more than the device's 128/,
  ],
  [
    'no engines in the group',
    dev([wq({})], []),
    /has work queues but no engines.* config-engine dsa0\/engine0.0 -g 0/,
  ],
  ['no type', dev([wq({ type: undefined })]), /needs a type; .* -y user/],
  ['group_id mismatch', dev([wq({ group_id: 2 })]), /group_id 2 does not match its group group0.0/],
  [
    'batch size over the device',
    dev([wq({ max_batch_size: 2048 })]),
    /max_batch_size 2048 is out of range/,
  ],
  [
    'string size',
    dev([wq({ size: '16' })]),
    /\(\$\[0\]\.groups\[0\]\.grouped_workqueues\[0\]\.size\): size must be an integer, got string "16"$/,
  ],
  [
    'fractional priority',
    dev([wq({ priority: 2.5 })]),
    /priority must be an integer, got number 2.5/,
  ],
  ['bad WQ state', dev([wq({ state: 'on' })]), /state "on" is not one of "enabled", "disabled"/],
  [
    "device's max_batch_size not a power of two",
    dev([wq({})], undefined, { max_batch_size: 1000 }),
    /^dsa0 \(\$\[0\]\.max_batch_size\): max_batch_size 1000 is not a power of two \(2\.\.1024\)$/,
  ],
  [
    'max_groups above the part',
    dev([wq({})], undefined, { max_groups: 9 }),
    /\(\$\[0\]\.max_groups\): max_groups 9 is out of range \(1\.\.4\)/,
  ],
  ['groups not an array', [{ dev: 'dsa0', groups: {} }], /groups must be an array, got an object/],
  [
    'group without a name',
    [{ dev: 'dsa0', groups: [{}] }],
    /^dsa0 \(\$\[0\]\.groups\[0\]\): "dev" is missing \(groupN\.M, e\.g\. group0\.0\)$/,
  ],
  [
    'WQ that is not an object',
    dev([5]),
    /\(\$\[0\]\.groups\[0\]\.grouped_workqueues\[0\]\): entry must be an object, got number 5/,
  ],
  [
    'WQ larger than the device allows',
    dev([wq({ size: 64, threshold: 64 })], undefined, { max_work_queues_size: 32 }),
    /dsa0\/wq0.0: size 64 exceeds the device's max_work_queues_size 32/,
  ],
  [
    'group of another device',
    [{ dev: 'dsa0', groups: [{ dev: 'group1.0' }] }],
    /group 'group1.0' does not name a group of dsa0 \(group0.0 .. group0.3\)/,
  ],
  [
    'ungrouped engine with a group_id',
    dev([wq({})], undefined, { ungrouped_engines: [{ dev: 'engine0.1', group_id: 0 }] }),
    /group_id 0 on an ungrouped engine/,
  ],
];

for (const [name, json, re] of invalid) {
  test(`invalid configuration: ${name}`, () => {
    const r = resolveAccfgConfig(json);
    assert.ok(
      r.errors.some((e) => re.test(e)),
      `expected ${re} in:\n${r.errors.join('\n')}`,
    );
  });
}

test('a device with an error is left out; the others are still resolved', () => {
  const good = dev([wq({})])[0];
  const r = resolveAccfgConfig([{ ...good, dev: 'dsa1', max_groups: 9 }, good]);
  assert.equal(r.errors.length, 1, r.errors.join('\n'));
  assert.match(r.errors[0], /^dsa1 \(\$\[0\]\.max_groups\)/);
  assert.deepEqual(
    r.devices.map((d) => d.name),
    ['dsa0'],
  );
});

test('warnings: unknown attributes and rounding to powers of two', () => {
  const r = resolveAccfgConfig(dev([wq({ sise: 3, max_batch_size: 100 })]));
  assert.deepEqual(r.errors, []);
  assert.match(
    r.warnings.join('\n'),
    /dsa0\/group0.0\/wq0.0 \(\$\[0\]\.groups\[0\]\.grouped_workqueues\[0\]\): unknown attribute 'sise' ignored/,
  );
  assert.match(r.warnings.join('\n'), /max_batch_size 100 rounded up to 128/);
  assert.equal(r.devices[0].wqs[0].maxBatchSize, 128);
});

test('accel check: a valid file lists the accel-path entries; errors and JSON mistakes are reported', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'livemig-accel-'));
  const good = join(dir, 'good.json');
  await writeFile(good, JSON.stringify(defaultAccfgConfig(1)));
  const ok = await accelCheck(good);
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.usable, [
    'dsa-emu:dsa0/wq0.0  (shared, size 128, max_batch_size 1024, 1 engine(s))',
  ]);
  assert.match(
    formatAccelCheck(good, ok),
    /valid\n {2}usable work queues:\n {4}dsa-emu:dsa0\/wq0.0/,
  );

  const bad = join(dir, 'bad.json');
  await writeFile(bad, JSON.stringify(dev([wq({ mode: 'exclusive' })])));
  const r = await accelCheck(bad);
  assert.equal(r.ok, false);
  assert.match(
    formatAccelCheck(bad, r),
    /1 error\(s\)\n {2}error: dsa0\/group0.0\/wq0.0 \(\$.*\.mode\): mode "exclusive"/,
  );

  const broken = join(dir, 'broken.json');
  await writeFile(broken, '[{"dev": "dsa0",]');
  const b = await accelCheck(broken);
  assert.equal(b.ok, false);
  assert.match(b.errors[0], /broken.json is not valid JSON/);
  const missing = await accelCheck(join(dir, 'nope.json'));
  assert.match(missing.errors[0], /cannot read .*nope.json/);
});

/** The cells of the table row of `wq` in `text` (after `after`, when given). */
function rowOf(text: string, wq: string, after = ''): string[] {
  const line = text
    .slice(text.indexOf(after))
    .split('\n')
    .find((l) => l.includes(`│ ${wq} `));
  assert.ok(line, `no row for ${wq} in:\n${text}`);
  return line
    .split('│')
    .slice(1, -1)
    .map((c) => c.trim());
}

test('accel list: emulated and sysfs devices, text and JSON', async () => {
  const sysfs = { sysfsRoot: join(FIXTURE, 'devices'), devRoot: join(FIXTURE, 'dev') };
  const text = await accelList({ emuConfig: defaultAccfgConfig(2), sysfs });
  assert.match(text, /Emulated DSA \(dsa-emu, configuration given\):/);
  assert.match(text, /group0.0 {2}engines: engine0.0 engine0.1/);
  const head = 'wq group state mode type size threshold priority max batch max xfer accel-path';
  assert.match(text, new RegExp(`│ ${head.split(' ').join(' +│? *')} +│`));
  assert.deepEqual(rowOf(text, 'wq0.0'), [
    ...['wq0.0', 'group0.0', 'enabled', 'shared', 'user', '128', '128', '10', '1024', '2.00 MiB'],
    'dsa-emu:dsa0/wq0.0',
  ]);
  const hw = 'DSA hardware (sysfs';
  assert.match(text, /DSA hardware \(sysfs .*devices\):/);
  assert.match(text, /dsa2 {2}disabled/);
  assert.deepEqual(rowOf(text, 'wq0.0', hw), [
    ...['wq0.0', 'group0.0', 'enabled', 'shared', 'user', '128', '128', '10', '1024', '2.00 MiB'],
    ...['0', 'dsa:/dev/dsa/wq0.0'],
  ]);
  assert.equal(rowOf(text, 'wq0.1', hw).at(-1), '', 'dedicated hardware WQs are not offered');
  assert.equal(rowOf(text, 'wq0.1', hw)[6], '', 'and have no threshold');
  assert.equal(rowOf(text, 'wq0.6', hw).at(-1), '', 'nor WQs of size 0');
  assert.equal(rowOf(text, 'wq0.2', hw).at(-1), '', 'kernel WQs are not offered');
  const json = JSON.parse(await accelList({ json: true, sysfs })) as {
    emulated: { source: string; devices: { dev: string }[] };
    sysfs: { devices: { dev: string }[] };
  };
  assert.equal(json.emulated.source, 'built-in');
  assert.deepEqual(
    json.sysfs.devices.map((d) => d.dev),
    ['dsa0', 'dsa2'],
  );
  const none = await accelList({ sysfs: { sysfsRoot: join(FIXTURE, 'nope') } });
  assert.match(none, /idxd driver is not loaded/);
});

test('accel list of running devices shows live state', async () => {
  const emu = await DsaEmu.start({ engines: 1 });
  try {
    emu.device('dsa0').halt();
    const text = await accelList({ emu, sysfs: { sysfsRoot: join(FIXTURE, 'nope') } });
    assert.match(text, /Emulated DSA \(dsa-emu, running\):\n {2}dsa0 {2}halted/);
    assert.match(text, /│ occupancy │ accel-path/);
    assert.equal(rowOf(text, 'wq0.0').at(-2), '0', 'its occupancy');
  } finally {
    await emu.close();
  }
});
