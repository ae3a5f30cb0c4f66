// QMP conformance: greeting, negotiation, dispatch errors and events, as QEMU behaves.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startQmpServer, QMP_COMMANDS, type QmpServer } from '../../src/control/qmp-server.js';
import { QmpError } from '../../src/util/errors.js';
import { FakeHost, RawConnection, makeTmpDir, openNegotiated } from './helpers.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

describe('QMP server on a UNIX socket', () => {
  const tmp = makeTmpDir();
  const path = join(tmp.dir, 'qmp.sock');
  const host = new FakeHost();
  let server: QmpServer;

  before(async () => {
    server = await startQmpServer(host, `unix:${path}`);
  });
  after(async () => {
    await server.close();
    tmp.cleanup();
  });

  test('greets like QEMU 10.2, with livemig in package and oob offered', async () => {
    const conn = await RawConnection.open(server.address);
    const line = await conn.nextLine();
    assert.ok(line?.endsWith('\r'), 'lines end with CRLF like QEMU monitor output');
    assert.deepEqual(JSON.parse(line ?? ''), {
      QMP: {
        version: { qemu: { micro: 0, minor: 2, major: 10 }, package: `livemig ${pkg.version}` },
        capabilities: ['oob'],
      },
    });
    conn.close();
  });

  test('the socket file is mode 0600', () => {
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  test('commands before qmp_capabilities are refused, known or not', async () => {
    const conn = await RawConnection.open(server.address);
    await conn.next();
    const before = host.calls.length;
    for (const execute of ['query-status', 'no-such-command']) {
      assert.deepEqual(await conn.request({ execute, id: execute }), {
        error: {
          class: 'CommandNotFound',
          desc: "Expecting capabilities negotiation with 'qmp_capabilities'",
        },
        id: execute,
      });
    }
    assert.equal(host.calls.length, before, 'the host was not touched');
    conn.close();
  });

  test('a second qmp_capabilities is refused', async () => {
    const conn = await openNegotiated(server.address);
    assert.deepEqual(await conn.request({ execute: 'qmp_capabilities' }), {
      error: {
        class: 'CommandNotFound',
        desc: 'Capabilities negotiation is already complete, command ignored',
      },
    });
    conn.close();
  });

  test('malformed JSON gets a parse error and the session goes on', async () => {
    const conn = await openNegotiated(server.address);
    conn.write('{"execute": query-status}\n');
    const err = await conn.next();
    assert.equal((err.error as { class: string }).class, 'GenericError');
    assert.match((err.error as { desc: string }).desc, /^JSON parse error, /);
    const ok = await conn.request({ execute: 'query-status', id: 1 });
    assert.deepEqual(ok, {
      return: { status: 'running', running: true, singlestep: false },
      id: 1,
    });
    conn.close();
  });

  test('requests may be split across writes, concatenated or pretty-printed', async () => {
    const conn = await openNegotiated(server.address);
    conn.write('{"execute": "query-st');
    conn.write('atus", "id": "a"}{"execute":"query-version",');
    conn.write('\n  "id": "b"\n}\n');
    assert.equal((await conn.next()).id, 'a');
    const version = await conn.next();
    assert.deepEqual(version, {
      return: { qemu: { major: 10, minor: 2, micro: 0 }, package: `livemig ${pkg.version}` },
      id: 'b',
    });
    conn.close();
  });

  test('request shape errors use QEMU words and echo the id', async () => {
    const conn = await openNegotiated(server.address);
    assert.deepEqual(await conn.request({ id: { any: 'json' } }), {
      error: { class: 'GenericError', desc: "QMP input lacks member 'execute'" },
      id: { any: 'json' },
    });
    assert.deepEqual(await conn.request([1, 2]), {
      error: { class: 'GenericError', desc: 'QMP input must be a JSON object' },
    });
    assert.deepEqual(await conn.request({ execute: 'stop', argumentz: {} }), {
      error: { class: 'GenericError', desc: "QMP input member 'argumentz' is unexpected" },
    });
    assert.deepEqual(await conn.request({ execute: 'stop', arguments: [] }), {
      error: { class: 'GenericError', desc: "QMP input member 'arguments' must be an object" },
    });
    conn.close();
  });

  test('an unknown command is CommandNotFound', async () => {
    const conn = await openNegotiated(server.address);
    assert.deepEqual(await conn.request({ execute: 'migrate-start-postcopy', id: 3 }), {
      error: {
        class: 'CommandNotFound',
        desc: 'The command migrate-start-postcopy has not been found',
      },
      id: 3,
    });
    // inherited object properties are not commands
    const proto = await conn.request({ execute: 'toString' });
    assert.equal((proto.error as { class: string }).class, 'CommandNotFound');
    conn.close();
  });

  test('unexpected, missing and mistyped arguments are refused before the host sees them', async () => {
    const conn = await openNegotiated(server.address);
    const cases: [unknown, string][] = [
      [{ uri: 'tcp:127.0.0.1:1', bogus: 1 }, "Parameter 'bogus' is unexpected"],
      [{}, "Parameter 'uri' is missing"],
      [{ uri: 5 }, "Invalid parameter type for 'uri', expected: string"],
      [
        { uri: 'tcp:127.0.0.1:1', detach: 'yes' },
        "Invalid parameter type for 'detach', expected: boolean",
      ],
    ];
    for (const [args, desc] of cases) {
      assert.deepEqual(await conn.request({ execute: 'migrate', arguments: args }), {
        error: { class: 'GenericError', desc },
      });
    }
    assert.equal(host.called('migrate').length, 0);

    const typed = await conn.request({
      execute: 'migrate-set-parameters',
      arguments: { 'multifd-channels': 'four' },
    });
    assert.deepEqual(typed.error, {
      class: 'GenericError',
      desc: "Invalid parameter type for 'multifd-channels', expected: integer",
    });
    const extra = await conn.request({
      execute: 'migrate-set-parameters',
      arguments: { 'multifd-chanels': 4 },
    });
    assert.deepEqual(extra.error, {
      class: 'GenericError',
      desc: "Parameter 'multifd-chanels' is unexpected",
    });
    const nested = await conn.request({
      execute: 'migrate-set-capabilities',
      arguments: { capabilities: [{ capability: 'multifd', state: 'on' }] },
    });
    assert.deepEqual(nested.error, {
      class: 'GenericError',
      desc: "Invalid parameter type for 'capabilities[0].state', expected: boolean",
    });
    const noArgs = await conn.request({ execute: 'stop', arguments: { now: true } });
    assert.deepEqual(noArgs.error, {
      class: 'GenericError',
      desc: "Parameter 'now' is unexpected",
    });
    assert.equal(host.called('setParameters').length, 0);
    assert.equal(host.called('setCapabilities').length, 0);
    assert.equal(host.called('stop').length, 0);
    conn.close();
  });

  test('valid commands reach the host and return its results', async () => {
    const conn = await openNegotiated(server.address);
    assert.deepEqual(
      await conn.request({
        execute: 'migrate-set-parameters',
        arguments: {
          'multifd-channels': 4,
          'accel-path': ['dsa:/dev/dsa/wq0.0', { type: 'dsa-emu', device: 'dsa0', wq: 'wq0.0' }],
        },
      }),
      { return: {} },
    );
    assert.equal(host.params['multifd-channels'], 4);
    assert.deepEqual(host.params['accel-path'], [
      'dsa:/dev/dsa/wq0.0',
      { type: 'dsa-emu', device: 'dsa0', wq: 'wq0.0' },
    ]);
    const params = await conn.request({ execute: 'query-migrate-parameters' });
    assert.equal((params.return as Record<string, unknown>)['multifd-channels'], 4);

    await conn.request({
      execute: 'migrate-set-capabilities',
      arguments: { capabilities: [{ capability: 'multifd', state: true }] },
    });
    const caps = await conn.request({ execute: 'query-migrate-capabilities' });
    assert.ok(
      (caps.return as { capability: string; state: boolean }[]).some(
        (c) => c.capability === 'multifd' && c.state,
      ),
    );

    assert.deepEqual(
      await conn.request({
        execute: 'migrate',
        arguments: { uri: 'tcp:10.0.0.2:4444', detach: true },
      }),
      {
        return: {},
      },
    );
    assert.deepEqual(host.called('migrate').at(-1)?.args, ['tcp:10.0.0.2:4444']);
    assert.deepEqual(await conn.request({ execute: 'query-migrate' }), {
      return: { status: 'setup' },
    });
    assert.deepEqual(
      await conn.request({ execute: 'migrate-incoming', arguments: { uri: 'tcp:0.0.0.0:4444' } }),
      { return: {} },
    );
    assert.deepEqual(host.called('migrateIncoming').at(-1)?.args, ['tcp:0.0.0.0:4444']);
    for (const execute of ['stop', 'cont', 'migrate_cancel']) {
      assert.deepEqual(await conn.request({ execute }), { return: {} });
    }
    assert.deepEqual(
      ['stop', 'cont', 'migrateCancel'].map((m) => host.called(m).length),
      [1, 1, 1],
    );
    const commands = await conn.request({ execute: 'query-commands' });
    assert.deepEqual(
      (commands.return as { name: string }[]).map((c) => c.name).sort(),
      Object.keys(QMP_COMMANDS).sort(),
    );
    conn.close();
  });

  test('query-migrationthreads: QEMU shape, with livemig cpu-ms', async () => {
    const conn = await openNegotiated(server.address);
    host.threads = [];
    assert.deepEqual(await conn.request({ execute: 'query-migrationthreads' }), { return: [] });
    host.threads = [
      { name: 'live_migration', 'thread-id': 1, 'cpu-ms': 812.5 },
      { name: 'multifdsend_0', 'thread-id': 2, 'cpu-ms': 301 },
      { name: 'multifdsend_1', 'thread-id': 3 },
    ];
    assert.deepEqual(await conn.request({ execute: 'query-migrationthreads', id: 7 }), {
      return: host.threads,
      id: 7,
    });
    const extra = await conn.request({
      execute: 'query-migrationthreads',
      arguments: { verbose: true },
    });
    assert.equal((extra.error as { class: string }).class, 'GenericError');
    conn.close();
  });

  test('x-query-ram-digest returns the host digest as {digest}', async () => {
    const conn = await openNegotiated(server.address);
    host.digest = 'ab'.repeat(32);
    assert.deepEqual(await conn.request({ execute: 'x-query-ram-digest' }), {
      return: { digest: 'ab'.repeat(32) },
    });
    host.failures.set('ramDigest', new Error('RAM is being discarded'));
    assert.deepEqual(await conn.request({ execute: 'x-query-ram-digest' }), {
      error: { class: 'GenericError', desc: 'RAM is being discarded' },
    });
    conn.close();
  });

  test('migrate with resume is refused as unsupported', async () => {
    const conn = await openNegotiated(server.address);
    const before = host.called('migrate').length;
    const reply = await conn.request({
      execute: 'migrate',
      arguments: { uri: 'tcp:h:1', resume: true },
    });
    assert.equal((reply.error as { class: string }).class, 'GenericError');
    assert.match((reply.error as { desc: string }).desc, /not supported/);
    assert.equal(host.called('migrate').length, before);
    conn.close();
  });

  test('host errors keep their QMP class; other errors become GenericError', async () => {
    const conn = await openNegotiated(server.address);
    host.failures.set('migrateCancel', new QmpError('DeviceNotActive', 'no migration to cancel'));
    assert.deepEqual(await conn.request({ execute: 'migrate_cancel', id: 1 }), {
      error: { class: 'DeviceNotActive', desc: 'no migration to cancel' },
      id: 1,
    });
    host.failures.set('stop', new Error('vCPUs did not stop'));
    assert.deepEqual(await conn.request({ execute: 'stop' }), {
      error: { class: 'GenericError', desc: 'vCPUs did not stop' },
    });
    // a value the real parameter validation rejects
    const bad = await conn.request({
      execute: 'migrate-set-parameters',
      arguments: { 'zero-page-detection': 'sometimes' },
    });
    assert.equal((bad.error as { class: string }).class, 'GenericError');
    assert.match((bad.error as { desc: string }).desc, /zero-page-detection.*sometimes/);
    conn.close();
  });

  test('events reach negotiated clients only, with a timestamp', async () => {
    const negotiated = await openNegotiated(server.address);
    const fresh = await RawConnection.open(server.address);
    await fresh.next(); // greeting
    host.emitEvent({ event: 'MIGRATION', data: { status: 'active' } });
    host.emitEvent({ event: 'STOP' });
    const first = await negotiated.next();
    assert.equal(first.event, 'MIGRATION');
    assert.deepEqual(first.data, { status: 'active' });
    const ts = first.timestamp as { seconds: number; microseconds: number };
    assert.ok(Number.isInteger(ts.seconds) && ts.seconds > 1_600_000_000);
    assert.ok(Number.isInteger(ts.microseconds) && ts.microseconds >= 0 && ts.microseconds < 1e6);
    const second = await negotiated.next();
    assert.equal(second.event, 'STOP');
    assert.equal('data' in second, false, 'an event without data has no data member');
    // The un-negotiated client's next message is the reply to this request, not an event.
    const reply = await fresh.request({ execute: 'qmp_capabilities', id: 'n' });
    assert.deepEqual(reply, { return: {}, id: 'n' });
    negotiated.close();
    fresh.close();
  });

  test('out-of-band execution: refused unless negotiated, then per command', async () => {
    const plain = await openNegotiated(server.address);
    assert.deepEqual(await plain.request({ 'exec-oob': 'query-status' }), {
      error: { class: 'GenericError', desc: "QMP input member 'exec-oob' is unexpected" },
    });
    plain.close();
    const oob = await RawConnection.open(server.address);
    await oob.next();
    assert.deepEqual(
      await oob.request({ execute: 'qmp_capabilities', arguments: { enable: ['oob'] } }),
      { return: {} },
    );
    assert.deepEqual(await oob.request({ 'exec-oob': 'query-status', id: 9 }), {
      error: { class: 'GenericError', desc: 'The command query-status does not support OOB' },
      id: 9,
    });
    oob.close();
  });

  test('quit replies first, then asks the host to quit', async () => {
    const conn = await openNegotiated(server.address);
    assert.deepEqual(await conn.request({ execute: 'quit', id: 'bye' }), { return: {}, id: 'bye' });
    await host.quitCalled;
    assert.equal(host.called('quit').length, 1);
    conn.close();
  });
});

describe('QMP server limits and socket handling', () => {
  test('a client exceeding the request bound is disconnected', async () => {
    const tmp = makeTmpDir();
    const server = await startQmpServer(new FakeHost(), `unix:${join(tmp.dir, 'q.sock')}`, {
      maxRequestBytes: 1024,
    });
    const conn = await openNegotiated(server.address);
    conn.write('{"execute": "migrate", "arguments": {"uri": "' + 'x'.repeat(4096));
    const reply = await conn.next();
    assert.match((reply.error as { desc: string }).desc, /too large/);
    await conn.closed;
    await server.close();
    tmp.cleanup();
  });

  test('a stale socket file is replaced; a live socket or a regular file is left alone', async () => {
    const tmp = makeTmpDir();
    const stale = join(tmp.dir, 'stale.sock');
    // A process killed while listening leaves its socket file behind.
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.ok(existsSync(stale), 'precondition: stale socket file exists');
    const server = await startQmpServer(new FakeHost(), `unix:${stale}`);
    const conn = await RawConnection.open(server.address);
    assert.ok('QMP' in (await conn.next()));
    conn.close();

    await assert.rejects(startQmpServer(new FakeHost(), `unix:${stale}`), /in use/);
    await server.close();
    assert.equal(existsSync(stale), false, 'close removes the socket file');

    const file = join(tmp.dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    await assert.rejects(startQmpServer(new FakeHost(), `unix:${file}`), /not a socket/);
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
    tmp.cleanup();
  });

  test('TCP on an ephemeral port reports the bound address', async () => {
    const host = new FakeHost();
    const server = await startQmpServer(host, 'tcp:127.0.0.1:0');
    const m = /^tcp:127\.0\.0\.1:(\d+)$/.exec(server.address);
    assert.ok(m && Number(m[1]) > 0, server.address);
    const conn = await openNegotiated(server.address);
    assert.deepEqual(await conn.request({ execute: 'query-status' }), {
      return: { status: 'running', running: true, singlestep: false },
    });
    conn.close();
    await server.close();
  });

  test('a busy TCP port is reported, not ignored', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    await assert.rejects(startQmpServer(new FakeHost(), `tcp:127.0.0.1:${port}`), /EADDRINUSE/);
    await new Promise((r) => blocker.close(r));
  });

  test('closing the server stops forwarding host events', async () => {
    const host = new FakeHost();
    const server = await startQmpServer(host, 'tcp:127.0.0.1:0');
    assert.equal(host.listenerCount('event'), 1);
    await server.close();
    assert.equal(host.listenerCount('event'), 0);
  });
});
