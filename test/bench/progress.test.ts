// The bench's progress: on a terminal the migration bar, named after the run, with each run's
// result as a permanent line; elsewhere only the lines.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { Progress } from '../../src/bench/progress.js';

function sink(tty: boolean): { out: NodeJS.WriteStream; text: () => string } {
  const s = new PassThrough();
  let text = '';
  s.setEncoding('utf8').on('data', (c: string) => (text += c));
  Object.assign(s, { isTTY: tty, columns: 200 });
  return { out: s as unknown as NodeJS.WriteStream, text: () => text };
}

const INFO = {
  status: 'active',
  ram: { total: 64 << 20, remaining: 16 << 20, transferred: 48 << 20, mbps: 900 },
};

test('bench progress on a terminal: the named bar, then the result line', async () => {
  const { out, text } = sink(true);
  const p = new Progress(out);
  p.begin(2);
  p.task('B baseline run 1/1');
  p.update(INFO);
  p.line('B baseline run 1: total 64 ms');
  p.end();
  await new Promise((r) => setImmediate(r));
  const plain = stripVTControlCharacters(text());
  assert.match(plain, /\[1\/2\] B baseline run 1\/1 pass 1 \|.+\| 75% \| 48\.0 MiB \/ 64\.0 MiB/);
  assert.match(plain, /B baseline run 1: total 64 ms\n$/);
});

test('bench progress elsewhere: only the lines', async () => {
  const { out, text } = sink(false);
  const p = new Progress(out);
  p.begin(1);
  p.task('A offload run 1/1');
  p.update(INFO);
  p.line('A offload run 1: failed');
  p.end();
  await new Promise((r) => setImmediate(r));
  assert.equal(text(), 'A offload run 1: failed\n');
});
