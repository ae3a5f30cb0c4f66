// `npm run bench:floor`: the C reference migration compiles, moves the same guests as livemig's
// benches, and its destination RAM matches. Skipped, saying so, where no C compiler exists.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FLOOR = fileURLToPath(new URL('../../src/bench/floor.js', import.meta.url));
const hasCc = spawnSync(process.env.CC ?? 'cc', ['--version']).status === 0;

test(
  'bench:floor: 64 MiB over 2 channels, both guests, RAM verified',
  { skip: hasCc ? false : 'no C compiler (cc) installed' },
  () => {
    const r = spawnSync(
      process.execPath,
      [FLOOR, '--ram', '64M', '--channels', '2', '--runs', '1'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /100% zero/);
    assert.match(r.stdout, /50% normal/);
    // One line per run, each with its CPU; a RAM mismatch would have failed the run.
    assert.equal(
      r.stderr.match(/run 1\/1: total [\d.]+ ms, CPU src [\d.]+ \+ dst [\d.]+ ms/g)?.length,
      2,
    );
  },
);

test('bench:floor: a bad value is refused with what is allowed', () => {
  const cases: [string[], RegExp][] = [
    [
      ['--channels', '0'],
      /option '--channels <n>' argument '0' is invalid\. expected an integer from 1 to 16/,
    ],
    [
      ['--idle-ms', '-5'],
      /option '--idle-ms <ms>' argument '-5' is invalid\. expected an integer from 0 to 600000/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, [FLOOR, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, message);
  }
});
