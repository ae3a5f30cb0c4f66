// `--serial SPEC` parsing: QEMU's -serial forms, its defaults and legacy spellings, and errors
// that name the bad value and what is allowed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChardevSpec } from '../../src/chardev/chardev-spec.js';

test('stdio, null and none, kept apart', () => {
  assert.deepEqual(parseChardevSpec('none'), { backend: 'none' });
  assert.deepEqual(parseChardevSpec('null'), { backend: 'null' });
  assert.deepEqual(parseChardevSpec('stdio'), { backend: 'stdio', signal: true });
  assert.deepEqual(parseChardevSpec('stdio,signal=off'), { backend: 'stdio', signal: false });
  assert.deepEqual(parseChardevSpec('null,logfile=/tmp/c.log'), {
    backend: 'null',
    logfile: { path: '/tmp/c.log', append: false },
  });
});

test("a socket is a client unless server=on, and a server waits for its first client (QEMU's defaults)", () => {
  assert.deepEqual(parseChardevSpec('unix:/tmp/pc.sock'), {
    backend: 'socket',
    address: { kind: 'unix', path: '/tmp/pc.sock' },
    server: false,
    wait: false,
    nodelay: false,
    reconnectMs: 0,
  });
  assert.deepEqual(parseChardevSpec('unix:/tmp/pc.sock,server=on'), {
    backend: 'socket',
    address: { kind: 'unix', path: '/tmp/pc.sock' },
    server: true,
    wait: true,
    nodelay: false,
    reconnectMs: 0,
  });
  assert.deepEqual(parseChardevSpec('tcp:127.0.0.1:0,server=on,wait=off'), {
    backend: 'socket',
    address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    server: true,
    wait: false,
    nodelay: true, // livemig's default for TCP
    reconnectMs: 0,
  });
});

test('tcp hosts: empty (every interface) and bracketed IPv6', () => {
  const any = parseChardevSpec('tcp::4444,server=on');
  assert.equal(
    any.backend === 'socket' && any.address.kind === 'tcp' && any.address.host,
    undefined,
  );
  const v6 = parseChardevSpec('tcp:[::1]:4444,server=on');
  assert.deepEqual(v6.backend === 'socket' && v6.address, { kind: 'tcp', host: '::1', port: 4444 });
});

test("QEMU's legacy spellings: bare flags, no-prefixed flags, yes/no/true/false/y/n", () => {
  const same = [
    'tcp:localhost:4444,server,nowait',
    'tcp:localhost:4444,server=yes,wait=no',
    'tcp:localhost:4444,server=true,wait=false',
    'tcp:localhost:4444,server=y,wait=n',
    'tcp:localhost:4444,server=on,wait=off',
  ].map((text) => parseChardevSpec(text));
  for (const spec of same) assert.deepEqual(spec, same[same.length - 1]);
  assert.equal((same[0] as { wait: boolean }).wait, false);
  assert.equal((parseChardevSpec('unix:/s,noserver') as { server: boolean }).server, false);
});

test('nodelay: on by default for tcp; nodelay=off, delay=on and bare nodelay', () => {
  const nodelay = (text: string): boolean =>
    (parseChardevSpec(text) as { nodelay: boolean }).nodelay;
  assert.equal(nodelay('tcp:h:1,server=on'), true);
  assert.equal(nodelay('tcp:h:1,server=on,nodelay=off'), false);
  assert.equal(nodelay('tcp:h:1,server=on,delay=on'), false);
  assert.equal(nodelay('tcp:h:1,server=on,delay=off'), true);
  assert.equal(nodelay('tcp:h:1,server=on,nodelay'), true);
});

test('logfile and logappend; ,, is a comma in a value', () => {
  const spec = parseChardevSpec('unix:/tmp/a,,b.sock,server=on,logfile=/var/log/x,,y,logappend');
  assert.deepEqual(spec.backend === 'socket' && [spec.address, spec.logfile], [
    { kind: 'unix', path: '/tmp/a,b.sock' },
    { path: '/var/log/x,y', append: true },
  ]);
  // `,,,` is a comma, then a separator
  const odd = parseChardevSpec('unix:/s,,,server');
  assert.deepEqual(odd.backend === 'socket' && [odd.address, odd.server], [
    { kind: 'unix', path: '/s,' },
    true,
  ]);
});

test('a client may reconnect: reconnect=SECONDS or reconnect-ms=MS', () => {
  const ms = (text: string): number =>
    (parseChardevSpec(text) as { reconnectMs: number }).reconnectMs;
  assert.equal(ms('tcp:h:1,reconnect=2'), 2000);
  assert.equal(ms('unix:/s,reconnect-ms=250'), 250);
  assert.equal(ms('unix:/s'), 0);
});

test('a later option overrides an earlier one, as in QemuOpts', () => {
  assert.equal(
    (parseChardevSpec('unix:/s,server=on,wait=on,nowait') as { wait: boolean }).wait,
    false,
  );
});

test('the socket forms name what is expected', () => {
  assert.throws(
    () => parseChardevSpec('tcp:localhost'),
    new Error("invalid --serial 'tcp:localhost': expected tcp:HOST:PORT[,server=on][,wait=off]"),
  );
  assert.throws(
    () => parseChardevSpec('unix:,server=on'),
    new Error("invalid --serial 'unix:,server=on': empty path"),
  );
  assert.throws(
    () => parseChardevSpec('tcp:localhost:http'),
    /invalid --serial 'tcp:localhost:http': port must be 0\.\.65535, got 'http'/,
  );
  assert.throws(() => parseChardevSpec('tcp:h:65536,server'), /got '65536'/);
});

test('unknown backends and QEMU backends livemig lacks are refused by name', () => {
  assert.throws(
    () => parseChardevSpec('serial0'),
    /^Error: invalid --serial 'serial0': expected stdio, null, none, unix:PATH\[,server=on\]\[,wait=off\] or tcp:HOST:PORT/,
  );
  assert.throws(() => parseChardevSpec(''), /invalid --serial '': expected stdio/);
  assert.throws(() => parseChardevSpec('pty'), /invalid --serial 'pty': QEMU's 'pty' backend/);
  assert.throws(() => parseChardevSpec('mon:stdio'), /'mon:' \(the monitor multiplexed/);
  assert.throws(
    () => parseChardevSpec('telnet:localhost:4321,server,nowait'),
    /'telnet:' \(use tcp:HOST:PORT,server=on/,
  );
  assert.throws(() => parseChardevSpec('file:/tmp/out'), /use null,logfile=PATH/);
  assert.throws(
    () => parseChardevSpec('none,logfile=/x'),
    /'none' \(no serial port\) takes no options/,
  );
});

test('unknown options list the allowed ones for that form', () => {
  assert.throws(
    () => parseChardevSpec('tcp:h:1,server=on,foo'),
    new Error(
      "unknown --serial option 'foo' in 'tcp:h:1,server=on,foo': allowed are server, wait, " +
        'reconnect, reconnect-ms, nodelay, delay, logfile, logappend',
    ),
  );
  assert.throws(
    () => parseChardevSpec('unix:/s,server=on,nodelay'),
    /unknown --serial option 'nodelay' in 'unix:\/s,server=on,nodelay': allowed are server, wait, reconnect, reconnect-ms, logfile, logappend$/,
  );
  assert.throws(
    () => parseChardevSpec('stdio,server'),
    /option 'server' in 'stdio,server': allowed are signal, logfile, logappend$/,
  );
  assert.throws(() => parseChardevSpec('null,nofoo'), /unknown --serial option 'nofoo'/);
  assert.throws(
    () => parseChardevSpec('unix:/s,server=on,'),
    /invalid --serial 'unix:\/s,server=on,': empty option/,
  );
});

test('bad values name the value, the option and what is allowed', () => {
  assert.throws(
    () => parseChardevSpec('unix:/s,server=on,wait=maybe'),
    new Error(
      "invalid value 'maybe' for 'wait' in --serial 'unix:/s,server=on,wait=maybe': expected on or off",
    ),
  );
  assert.throws(
    () => parseChardevSpec('tcp:h:1,reconnect=soon'),
    /invalid value 'soon' for 'reconnect' in --serial 'tcp:h:1,reconnect=soon': expected a whole number of seconds/,
  );
  assert.throws(
    () => parseChardevSpec('tcp:h:1,reconnect-ms=-5'),
    /invalid value '-5' for 'reconnect-ms'/,
  );
  assert.throws(
    () => parseChardevSpec('null,logfile='),
    /invalid value '' for 'logfile'.*expected a file path/,
  );
  assert.throws(
    () => parseChardevSpec('null,logfile'),
    /'logfile' needs a value \(logfile=\.\.\.\)/,
  );
  assert.throws(
    () => parseChardevSpec('tcp:h:1,reconnect=9999999'),
    /reconnect interval 9999999000 ms is over the limit/,
  );
});

test('combinations QEMU refuses are refused', () => {
  assert.throws(
    () => parseChardevSpec('unix:/s,wait=off'),
    /invalid --serial 'unix:\/s,wait=off': 'wait' is for a server/,
  );
  assert.throws(
    () => parseChardevSpec('unix:/s,server=on,reconnect=1'),
    /'reconnect' is for a client \(server=off\)/,
  );
  assert.throws(
    () => parseChardevSpec('tcp:h:1,server=on,reconnect-ms=100'),
    /invalid --serial 'tcp:h:1,server=on,reconnect-ms=100': 'reconnect-ms' is for a client/,
  );
  assert.throws(
    () => parseChardevSpec('tcp:h:1,reconnect=1,reconnect-ms=5'),
    /'reconnect' and 'reconnect-ms' are mutually exclusive/,
  );
  assert.throws(
    () => parseChardevSpec('tcp:h:1,server,delay=on,nodelay=on'),
    /'delay' and 'nodelay' are mutually exclusive/,
  );
  assert.throws(
    () => parseChardevSpec('null,logappend=on'),
    /invalid --serial 'null,logappend=on': 'logappend' needs 'logfile=PATH'/,
  );
});

test('errors name the option they came from', () => {
  assert.throws(() => parseChardevSpec('bogus', '-serial'), /^Error: invalid -serial 'bogus'/);
});
