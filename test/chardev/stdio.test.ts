// The stdio chardev, with PassThrough streams standing in for livemig's stdin and stdout: a
// pipe (no terminal) and a fake terminal that records raw-mode changes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { openChardev, parseChardevSpec, type StdioStreams } from '../../src/chardev/index.js';
import { InputLog } from './helpers.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function pipes(): { io: StdioStreams; stdin: PassThrough; stdout: PassThrough; out(): string } {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (c: Buffer) => chunks.push(c));
  return { io: { stdin, stdout }, stdin, stdout, out: () => Buffer.concat(chunks).toString() };
}

/** A terminal as far as the chardev can tell: isTTY and setRawMode, recorded. */
function fakeTerminal(): ReturnType<typeof pipes> & { modes: boolean[]; interrupts: number } {
  const p = pipes();
  const modes: boolean[] = [];
  const tty = Object.assign(p.stdin, {
    isTTY: true,
    setRawMode: (mode: boolean) => modes.push(mode),
  });
  const result = { ...p, modes, interrupts: 0 };
  result.io = { stdin: tty, stdout: p.stdout, interrupt: () => result.interrupts++ };
  return result;
}

/** Resolves once the stream has been drained of everything written so far. */
function drained(stdout: PassThrough): Promise<void> {
  return new Promise((resolve) => stdout.write('', () => setImmediate(resolve)));
}

test('a pipe: guest output to stdout, stdin to the guest; no raw mode, Ctrl-C is a byte', async () => {
  const p = pipes();
  const dev = await openChardev(parseChardevSpec('stdio'), p.io);
  const input = new InputLog(dev);
  assert.equal(dev.address, 'stdio');
  await dev.ready();
  dev.write(bytes('Booting '));
  dev.write(bytes('Linux\r\n'));
  p.stdin.write('ls\x03\r');
  await input.until('ls\x03\r');
  await dev.close();
  await drained(p.stdout);
  assert.equal(p.out(), 'Booting Linux\r\n');
  assert.equal(dev.stats().attached, true);
});

test('the end of stdin stops reading quietly; output goes on', async () => {
  const p = pipes();
  const dev = await openChardev(parseChardevSpec('stdio'), p.io);
  const input = new InputLog(dev);
  p.stdin.end('last words\n');
  await input.until('last words\n');
  await new Promise((resolve) => p.stdin.once('close', resolve));
  assert.equal(p.stdin.listenerCount('data'), 0, 'no longer reading');
  dev.write(bytes('still printing\n'));
  await dev.close();
  await drained(p.stdout);
  assert.equal(p.out(), 'still printing\n');
});

test('close() does not end stdout (it is livemig’s too)', async () => {
  const p = pipes();
  const dev = await openChardev(parseChardevSpec('stdio'), p.io);
  await dev.close();
  assert.equal(p.stdout.writable, true);
  assert.equal(p.stdin.listenerCount('data'), 0);
});

test('a terminal: raw mode while open, restored on close and registered for exit', async () => {
  const t = fakeTerminal();
  const exitListeners = process.listenerCount('exit');
  const dev = await openChardev(parseChardevSpec('stdio'), t.io);
  assert.deepEqual(t.modes, [true]);
  assert.equal(process.listenerCount('exit'), exitListeners + 1, 'restored if livemig exits');
  await dev.close();
  assert.deepEqual(t.modes, [true, false]);
  assert.equal(process.listenerCount('exit'), exitListeners);
});

test('a terminal with signal=on (default): Ctrl-C interrupts livemig, the other keys reach the guest', async () => {
  const t = fakeTerminal();
  const dev = await openChardev(parseChardevSpec('stdio'), t.io);
  const input = new InputLog(dev);
  t.stdin.write('sleep 100\r\x03echo done\r');
  await input.until('echo done\r');
  assert.equal(input.text, 'sleep 100\recho done\r');
  assert.equal(t.interrupts, 1);
  await dev.close();
});

test('a terminal with signal=off: Ctrl-C goes to the guest', async () => {
  const t = fakeTerminal();
  const dev = await openChardev(parseChardevSpec('stdio,signal=off'), t.io);
  const input = new InputLog(dev);
  t.stdin.write('sleep 100\r\x03');
  await input.until('\x03');
  assert.equal(input.text, 'sleep 100\r\x03');
  assert.equal(t.interrupts, 0);
  await dev.close();
});

test('stdout that nobody reads: output beyond the bound is dropped, not queued', async () => {
  const stdin = new PassThrough();
  const stdout = new PassThrough({ highWaterMark: 1024 }); // never read
  const dev = await openChardev(parseChardevSpec('stdio'), { stdin, stdout });
  const chunk = new Uint8Array(64 * 1024);
  for (let i = 0; i < 64; i++) dev.write(chunk); // 4 MiB
  const { written, droppedSlow } = dev.stats();
  assert.equal(written, 4 * 1024 * 1024);
  assert.ok(droppedSlow > 0);
  assert.ok(stdout.writableLength <= 1024 * 1024 + 64 * 1024, `${stdout.writableLength}`);
  await dev.close();
});

test("process stdio serves one serial port at a time (QEMU: 'cannot use stdio by multiple character devices')", async () => {
  const first = await openChardev(parseChardevSpec('stdio'));
  await assert.rejects(openChardev(parseChardevSpec('stdio')), /stdio is already in use/);
  await first.close();
  const again = await openChardev(parseChardevSpec('stdio,signal=off'));
  await again.close();
});
