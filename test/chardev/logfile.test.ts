// logfile=PATH (QEMU's chardev log): every byte of guest output, attached or not; truncated at
// open unless logappend=on. And null/none, where output goes nowhere (but a log).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { ConsoleClient } from '../../src/chardev/console-client.js';
import { openChardev, parseChardevSpec } from '../../src/chardev/index.js';
import { EventLog, makeTmpDir, open } from './helpers.js';

const tmp = makeTmpDir();
after(() => tmp.cleanup());
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

test('the log has all output, including what no client was attached for', async () => {
  const log = tmp.path('console.log');
  const dev = await open(`unix:${tmp.path('log.sock')},server=on,wait=off,logfile=${log}`);
  const events = new EventLog(dev);
  dev.write(bytes('[    0.000000] Linux version 6.1\n'));
  const client = await ConsoleClient.connect(dev.address);
  await events.next('opened');
  dev.write(bytes('login: '));
  await client.waitFor('login: ', 5000);
  await client.close();
  await events.next('closed');
  dev.write(bytes('after\n'));
  await dev.close();

  assert.equal(client.text(), 'login: ');
  assert.equal(readFileSync(log, 'utf8'), '[    0.000000] Linux version 6.1\nlogin: after\n');
  assert.equal(statSync(log).mode & 0o777, 0o600);
});

test('the log is truncated at open, unless logappend=on', async () => {
  const log = tmp.path('append.log');
  writeFileSync(log, 'old run\n');
  let dev = await open(`null,logfile=${log}`);
  dev.write(bytes('first\n'));
  await dev.close();
  assert.equal(readFileSync(log, 'utf8'), 'first\n');

  dev = await open(`null,logfile=${log},logappend=on`);
  dev.write(bytes('second\n'));
  await dev.close();
  assert.equal(readFileSync(log, 'utf8'), 'first\nsecond\n');
});

test('a log that cannot be opened fails the open and names the path', async () => {
  const log = tmp.path('no/such/dir/x.log');
  await assert.rejects(
    open(`null,logfile=${log}`),
    new RegExp(`cannot open serial logfile '${log}'`),
  );
});

test('the log is closed again when the backend fails to open', async () => {
  const log = tmp.path('failed.log');
  await assert.rejects(open(`unix:${tmp.path('nobody.sock')},logfile=${log}`), /cannot connect/);
  assert.ok(existsSync(log), 'QEMU opens the log first');
  const fds = readdirSync('/proc/self/fd').map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return ''; // the directory's own fd, gone by now
    }
  });
  assert.ok(!fds.includes(log), 'and closes it again');
});

test('null: output vanishes, is counted, never comes back as input; none the same', async () => {
  for (const backend of ['null', 'none'] as const) {
    const dev = await openChardev(parseChardevSpec(backend));
    const input: Buffer[] = [];
    dev.onInput((data) => input.push(data));
    await dev.ready();
    dev.write(bytes('into the void'));
    assert.equal(dev.address, backend);
    assert.deepEqual(dev.stats(), {
      written: 13,
      droppedDetached: 0,
      droppedSlow: 0,
      droppedInput: 0,
      logFailed: 0,
      attached: false,
      attaches: 0,
    });
    await dev.close();
    assert.deepEqual(input, []);
  }
});

test('writes after close are ignored', async () => {
  const log = tmp.path('closed.log');
  const dev = await open(`null,logfile=${log}`);
  dev.write(bytes('kept'));
  await dev.close();
  dev.write(bytes('ignored'));
  await dev.close(); // twice is fine
  assert.equal(readFileSync(log, 'utf8'), 'kept');
});
