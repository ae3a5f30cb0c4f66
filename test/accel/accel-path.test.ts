import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAccelTarget, parseAccelPath, splitAccelPath } from '../../src/accel/accel-path.js';
import { QmpError } from '../../src/util/errors.js';

test('string, HMP one-line and structured forms', () => {
  assert.deepEqual(parseAccelPath(['dsa:/dev/dsa/wq0.0', 'dsa-emu:dsa2/wq2.1']), [
    { type: 'dsa', path: '/dev/dsa/wq0.0', device: 'dsa0', wq: 'wq0.0' },
    { type: 'dsa-emu', device: 'dsa2', wq: 'wq2.1' },
  ]);
  assert.deepEqual(parseAccelPath('dsa-emu:dsa0/wq0.0 dsa-emu:dsa1/wq1.0').map(formatAccelTarget), [
    'dsa-emu:dsa0/wq0.0',
    'dsa-emu:dsa1/wq1.0',
  ]);
  assert.deepEqual(
    parseAccelPath([
      { type: 'dsa-emu', device: 'dsa0', wq: 'wq0.0' },
      { type: 'dsa', path: '/dev/dsa/wq1.0' },
    ]).map(formatAccelTarget),
    ['dsa-emu:dsa0/wq0.0', 'dsa:/dev/dsa/wq1.0'],
  );
  assert.deepEqual(splitAccelPath('  a  b,c '), ['a', 'b', 'c']);
});

const bad: [unknown, RegExp][] = [
  [[], /accel-path is empty: give at least one work queue/],
  ['', /accel-path is empty/],
  [42, /must be a list of work queues, got number/],
  [
    ['foo:bar'],
    /entry 1 'foo:bar': unknown scheme 'foo'; expected 'dsa:\/dev\/dsa\/wqX\.Y', 'dsa-emu:DEVICE\/WQ'/,
  ],
  [['/dev/dsa/wq0.0'], /no scheme/],
  [['dsa:dev/dsa/wq0.0'], /not an absolute path/],
  [['dsa:/dev/dsa/foo'], /does not name a work queue device node/],
  [['dsa-emu:dsa0'], /expected dsa-emu:DEVICE\/WQ/],
  [['dsa-emu:iax1/wq1.0'], /device 'iax1' is not a DSA device name/],
  [['dsa-emu:dsa0/q0'], /work queue 'q0' is not a work queue name/],
  [['dsa-emu:dsa0/wq1.0'], /wq1.0 belongs to dsa1, not dsa0/],
  [
    ['dsa-emu:dsa0/wq0.0', 'dsa-emu:dsa1/wq1.0', 'dsa-emu:dsa0/wq0.0'],
    /entry 3 'dsa-emu:dsa0\/wq0.0': duplicate of entry 1/,
  ],
  [['dsa:/dev/dsa/wq0.0', 'dsa:/tmp/dev/wq0.0'], /duplicate of entry 1 \(dsa:\/dev\/dsa\/wq0.0\)/],
  [
    [{ type: 'dsa-emu', device: 'dsa0', wq: 'wq0.0' }, 'dsa-emu:dsa0/wq0.0'],
    /duplicate of entry 1/,
  ],
  [[{ type: 'qat', path: 'x' }], /unknown type "qat"/],
  [[{ type: 'dsa-emu', device: 'dsa0' }], /'wq' must be a non-empty string/],
  [
    [{ type: 'dsa', path: '/dev/dsa/wq0.0', wq: 'wq0.0' }],
    /unknown key 'wq' for type 'dsa' \(allowed: type, path\)/,
  ],
  [[null], /must be a string or an object/],
];

for (const [value, re] of bad) {
  test(`rejects ${JSON.stringify(value)}`, () => {
    assert.throws(
      () => parseAccelPath(value),
      (e: unknown) =>
        e instanceof QmpError && e.errorClass === 'GenericError' && re.test(e.message),
    );
  });
}
