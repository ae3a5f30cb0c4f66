import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { Hmp, HMP_PROMPT, splitParameterArgs, startHmp } from '../../src/control/hmp.js';
import { FakeHost } from './helpers.js';

test('migrate_set_parameter: NAME VALUE and NAME=VALUE, value is the rest of the line', () => {
  assert.deepEqual(splitParameterArgs('multifd-channels 4'), {
    name: 'multifd-channels',
    value: '4',
  });
  assert.deepEqual(splitParameterArgs('zero-page-detection=dsa-accel'), {
    name: 'zero-page-detection',
    value: 'dsa-accel',
  });
  assert.deepEqual(splitParameterArgs('accel-path=dsa:/dev/dsa/wq0.0 dsa:/dev/dsa/wq1.0'), {
    name: 'accel-path',
    value: 'dsa:/dev/dsa/wq0.0 dsa:/dev/dsa/wq1.0',
  });
  assert.deepEqual(splitParameterArgs('accel-path  dsa:/dev/dsa/wq0.0   dsa:/x=y '), {
    name: 'accel-path',
    value: 'dsa:/dev/dsa/wq0.0   dsa:/x=y',
  });
});

test('migrate_set_parameter sets typed values through the host', async () => {
  const host = new FakeHost();
  const hmp = new Hmp(host);
  assert.equal(await hmp.execute('migrate_set_parameter multifd-channels 4'), '');
  assert.equal(await hmp.execute('migrate_set_parameter zero-page-detection=none'), '');
  assert.equal(await hmp.execute('migrate_set_parameter max-bandwidth 1G'), '');
  assert.equal(
    await hmp.execute('migrate_set_parameter accel-path=dsa:/dev/dsa/wq0.0 dsa:/dev/dsa/wq1.0'),
    '',
  );
  assert.equal(host.params['multifd-channels'], 4);
  assert.equal(host.params['zero-page-detection'], 'none');
  assert.equal(host.params['max-bandwidth'], 1024 ** 3);
  assert.deepEqual(host.params['accel-path'], ['dsa:/dev/dsa/wq0.0', 'dsa:/dev/dsa/wq1.0']);
});

test('migrate_set_parameter errors print as Error: with the reason', async () => {
  const host = new FakeHost();
  const hmp = new Hmp(host);
  assert.match(
    await hmp.execute('migrate_set_parameter multifd-channels 0'),
    /^Error: Parameter 'multifd-channels' expects a value between 1 and \d+, got 0\n$/,
  );
  assert.equal(
    await hmp.execute('migrate_set_parameter no-such-thing 1'),
    "Error: Invalid parameter 'no-such-thing'\n",
  );
  assert.match(
    await hmp.execute('migrate_set_parameter multifd-channels'),
    /parameter 'value' is missing/,
  );
  assert.equal(host.called('setParameters').length, 1, 'only the range error reached the host');
});

test('migrate_set_capability takes on|off', async () => {
  const host = new FakeHost();
  const hmp = new Hmp(host);
  assert.equal(await hmp.execute('migrate_set_capability multifd on'), '');
  assert.equal(host.caps.multifd, true);
  assert.equal(await hmp.execute('migrate_set_capability multifd off'), '');
  assert.equal(host.caps.multifd, false);
  assert.match(await hmp.execute('migrate_set_capability multifd yes'), /Expected 'on' or 'off'/);
  assert.equal(
    await hmp.execute('migrate_set_capability postcopy-ram on'),
    "Error: Invalid parameter 'postcopy-ram'\n",
  );
  assert.equal(
    await hmp.execute('info migrate_capabilities'),
    'multifd: off\nauto-converge: off\npause-before-switchover: off\nevents: off\nx-verify-ram: off\n',
  );
});

test('unknown commands and unknown info subcommands are named', async () => {
  const hmp = new Hmp(new FakeHost());
  assert.equal(await hmp.execute('frobnicate now'), "unknown command: 'frobnicate'\n");
  assert.match(await hmp.execute('info frob'), /^unknown command: 'info frob'\n/);
  assert.equal(await hmp.execute('   '), '');
});

test('syntax errors name the command and point at help', async () => {
  const hmp = new Hmp(new FakeHost());
  assert.equal(
    await hmp.execute('stop now'),
    'stop: extraneous characters at the end of line\nTry "help stop" for more information\n',
  );
  assert.match(await hmp.execute('migrate'), /^migrate: parameter 'uri' is missing\n/);
  assert.match(await hmp.execute('migrate -x tcp:h:1'), /unsupported option -x/);
});

test('migrate -d returns at once; migrate waits for the end and prints the result', async () => {
  const host = new FakeHost();
  const hmp = new Hmp(host, { pollIntervalMs: 5 });
  assert.equal(await hmp.execute('migrate -d tcp:10.0.0.2:4444'), '');
  assert.deepEqual(host.called('migrate')[0].args, ['tcp:10.0.0.2:4444']);

  const waiting = hmp.execute('migrate tcp:10.0.0.2:4444');
  let settled = false;
  void waiting.then(() => (settled = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'still waiting while the migration runs');
  host.migrateInfo = { status: 'completed', 'total-time': 1200, 'setup-time': 3, downtime: 40 };
  host.emitEvent({ event: 'MIGRATION', data: { status: 'completed' } });
  assert.equal(await waiting, 'Status: completed\nTime (ms): total=1200, setup=3, down=40\n');

  const failing = hmp.execute('migrate tcp:10.0.0.2:4444');
  await new Promise((r) => setImmediate(r));
  host.migrateInfo = { status: 'failed', 'error-desc': 'Connection refused' };
  assert.equal(await failing, 'Error: Connection refused\n');
  assert.equal(host.listenerCount('event'), 0, 'the waiter unsubscribed');
});

test('info status and the run state commands', async () => {
  const host = new FakeHost();
  const hmp = new Hmp(host);
  assert.equal(await hmp.execute('info status'), 'VM status: running\n');
  assert.equal(await hmp.execute('stop'), '');
  assert.equal(await hmp.execute('info status'), 'VM status: paused\n');
  host.runStatus = { status: 'postmigrate', running: false, singlestep: false };
  assert.equal(await hmp.execute('info status'), 'VM status: paused (postmigrate)\n');
  assert.equal(await hmp.execute('c'), '');
  assert.equal(host.called('cont').length, 1);
  assert.equal(await hmp.execute('migrate_cancel'), '');
  assert.equal(await hmp.execute('migrate_incoming tcp:0.0.0.0:4444'), '');
  assert.deepEqual(host.called('migrateIncoming')[0].args, ['tcp:0.0.0.0:4444']);
});

test('help lists the migration commands', async () => {
  const text = await new Hmp(new FakeHost()).execute('help');
  for (const cmd of ['migrate [-d] uri', 'migrate_set_parameter', 'info migrate --', 'quit']) {
    assert.ok(text.includes(cmd), `help mentions ${cmd}`);
  }
});

test('a stdio-like session: banner, prompts, output in order, quit ends it', async () => {
  const host = new FakeHost();
  const input = new PassThrough();
  const output = new PassThrough();
  let written = '';
  output.setEncoding('utf8');
  output.on('data', (s: string) => (written += s));
  const session = startHmp(host, input, output);
  input.write('migrate_set_parameter multifd-channels 3\ninfo migrate_par');
  input.write('ameters\r\nbogus\nquit\ninfo status\n');
  await session.finished;
  await host.quitCalled;
  const lines = written.split('\n');
  assert.match(lines[0], /^livemig \S+ monitor - type 'help' for more information$/);
  const expected =
    HMP_PROMPT +
    HMP_PROMPT +
    'multifd-channels: 3\n' +
    'zero-page-detection: multifd\n' +
    'downtime-limit: 300 ms\n' +
    'max-bandwidth: 0 bytes/second\n' +
    'avail-switchover-bandwidth: 0 bytes/second\n' +
    'multifd-packet-size: 524288 bytes\n' +
    'accel-path: \n' +
    'cpu-throttle-initial: 20\n' +
    'cpu-throttle-increment: 10\n' +
    'max-cpu-throttle: 99\n' +
    'cpu-throttle-tailslow: off\n' +
    'throttle-trigger-threshold: 50\n' +
    'x-stall-timeout: 10000\n' +
    'x-migration-nice: 0\n' +
    'tls-creds: \n' +
    'tls-hostname: \n' +
    'tls-authz: \n' +
    HMP_PROMPT +
    "unknown command: 'bogus'\n" +
    HMP_PROMPT;
  assert.equal(written.slice(lines[0].length + 1), expected);
  assert.equal(host.called('queryStatus').length, 0, 'nothing runs after quit');
});

test('a session ends when its input ends', async () => {
  const host = new FakeHost();
  const input = new PassThrough();
  const output = new PassThrough();
  output.resume();
  const session = startHmp(host, input, output);
  input.end('stop');
  await session.finished;
  assert.equal(host.called('stop').length, 1, 'a last line without newline still runs');
});

test('info migrationthreads asks the host and prints each thread', async () => {
  const host = new FakeHost();
  const hmp = new Hmp(host);
  assert.equal(await hmp.execute('info migrationthreads'), 'No migration threads found\n');
  host.threads = [{ name: 'multifdsend_0', 'thread-id': 2, 'cpu-ms': 12 }];
  assert.equal(await hmp.execute('info migrationthreads'), 'multifdsend_0 (tid=2), cpu=12 ms\n');
  assert.equal(host.called('queryMigrationThreads').length, 2);
  assert.match(await hmp.execute('info'), /^info migrationthreads -- show migration thread info$/m);
});
