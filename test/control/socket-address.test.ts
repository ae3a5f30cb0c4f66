import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSocketAddress, parseSocketAddress } from '../../src/control/socket-address.js';

test('unix and tcp addresses, with QEMU server options ignored', () => {
  assert.deepEqual(parseSocketAddress('unix:/run/livemig/qmp.sock'), {
    kind: 'unix',
    path: '/run/livemig/qmp.sock',
  });
  assert.deepEqual(parseSocketAddress('unix:/tmp/q.sock,server=on,wait=off'), {
    kind: 'unix',
    path: '/tmp/q.sock',
  });
  assert.deepEqual(parseSocketAddress('tcp:127.0.0.1:4444'), {
    kind: 'tcp',
    host: '127.0.0.1',
    port: 4444,
  });
  assert.deepEqual(parseSocketAddress('tcp:[::1]:0'), { kind: 'tcp', host: '::1', port: 0 });
  assert.deepEqual(parseSocketAddress('tcp::4444'), { kind: 'tcp', host: undefined, port: 4444 });
  assert.equal(formatSocketAddress({ kind: 'tcp', host: '::1', port: 5 }), 'tcp:[::1]:5');
});

test('bad addresses say what is expected', () => {
  assert.throws(() => parseSocketAddress('/tmp/q.sock'), /expected unix:PATH or tcp:HOST:PORT/);
  assert.throws(() => parseSocketAddress('tcp:host:http'), /port must be 0\.\.65535/);
  assert.throws(() => parseSocketAddress('tcp:host:70000'), /port must be 0\.\.65535/);
  assert.throws(() => parseSocketAddress('unix:'), /empty path/);
  assert.throws(() => parseSocketAddress('unix:/q,telnet'), /unsupported option 'telnet'/);
});
