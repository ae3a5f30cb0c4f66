import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startQmpServer } from '../../src/control/qmp-server.js';
import { QmpClient, QmpCommandError } from '../../src/control/qmp-client.js';
import { QmpError } from '../../src/util/errors.js';
import { FakeHost, makeTmpDir } from './helpers.js';

test('connect waits for a socket that appears later, then reads the greeting', async () => {
  const tmp = makeTmpDir();
  const address = `unix:${join(tmp.dir, 'later.sock')}`;
  const connecting = QmpClient.connect(address, { timeoutMs: 10_000, retryIntervalMs: 10 });
  const server = await startQmpServer(new FakeHost(), address);
  const client = await connecting;
  assert.equal(client.greeting.QMP.version.qemu.major, 10);
  assert.deepEqual(client.greeting.QMP.capabilities, ['oob']);
  await client.close();
  await server.close();
  tmp.cleanup();
});

test('connect gives up at the deadline with the address in the message', async () => {
  const tmp = makeTmpDir();
  await assert.rejects(
    QmpClient.connect(`unix:${join(tmp.dir, 'never.sock')}`, {
      timeoutMs: 100,
      retryIntervalMs: 10,
    }),
    /cannot connect to QMP at unix:.*never\.sock/,
  );
  tmp.cleanup();
});

test('execute resolves with return and rejects with the error class and desc', async () => {
  const host = new FakeHost();
  const server = await startQmpServer(host, 'tcp:127.0.0.1:0');
  const client = await QmpClient.connect(server.address);

  const early = await client.execute('query-status').catch((e: unknown) => e);
  assert.ok(early instanceof QmpCommandError);
  assert.equal(early.errorClass, 'CommandNotFound');
  assert.equal(early.desc, "Expecting capabilities negotiation with 'qmp_capabilities'");
  assert.equal(early.command, 'query-status');

  await client.negotiate();
  assert.deepEqual(await client.execute('query-status'), {
    status: 'running',
    running: true,
    singlestep: false,
  });
  await client.execute('migrate-set-parameters', { 'downtime-limit': 50 });
  assert.equal(host.params['downtime-limit'], 50);

  host.failures.set('cont', new QmpError('DeviceNotActive', 'guest gone'));
  await assert.rejects(client.execute('cont'), (err: unknown) => {
    assert.ok(err instanceof QmpCommandError);
    assert.equal(err.errorClass, 'DeviceNotActive');
    assert.equal(err.message, 'guest gone');
    return true;
  });
  // concurrent requests each get their own reply
  const [a, b] = await Promise.all([
    client.execute('query-migrate'),
    client.execute('query-version'),
  ]);
  assert.deepEqual(a, { status: 'none' });
  assert.equal((b as { package: string }).package.startsWith('livemig '), true);

  await client.close();
  await server.close();
});

test('waitEvent finds events that arrived before it was called, and filters', async () => {
  const host = new FakeHost();
  const server = await startQmpServer(host, 'tcp:127.0.0.1:0');
  const client = await QmpClient.connect(server.address);
  await client.negotiate();
  const seen: string[] = [];
  client.on('event', (e) => seen.push(e.event));

  host.emitEvent({ event: 'MIGRATION', data: { status: 'setup' } });
  host.emitEvent({ event: 'MIGRATION', data: { status: 'active' } });
  host.emitEvent({ event: 'MIGRATION', data: { status: 'completed' } });
  await client.execute('query-status'); // the events were sent before this reply

  const done = await client.waitEvent('MIGRATION', (e) => e.data?.status === 'completed');
  assert.deepEqual(done.data, { status: 'completed' });
  assert.ok(done.timestamp.seconds > 0);
  const first = await client.waitEvent('MIGRATION');
  assert.deepEqual(first.data, { status: 'setup' }, 'oldest unconsumed event first');
  assert.deepEqual(seen, ['MIGRATION', 'MIGRATION', 'MIGRATION']);

  const later = client.waitEvent('STOP');
  host.emitEvent({ event: 'STOP' });
  assert.equal((await later).event, 'STOP');

  await assert.rejects(client.waitEvent('RESUME', undefined, 20), /timed out.*RESUME/);
  await client.close();
  await server.close();
});

test('pending requests fail when the server goes away', async () => {
  const host = new FakeHost();
  const server = await startQmpServer(host, 'tcp:127.0.0.1:0');
  const client = await QmpClient.connect(server.address);
  await client.negotiate();
  let release: () => void = () => undefined;
  host.migrateIncoming = () => new Promise<void>((r) => (release = r));
  const pending = client.execute('migrate-incoming', { uri: 'tcp:0:1' });
  const closed = new Promise<Error>((r) => client.on('close', r));
  await server.close();
  await assert.rejects(pending, /closed/);
  assert.match((await closed).message, /closed/);
  assert.equal(client.closed, true);
  await assert.rejects(client.execute('query-status'), /closed/);
  release();
});
