// TLS migrations between real `livemig run` processes, configured over QMP exactly as QEMU's
// are (object-add, migrate-set-parameters tls-creds/tls-hostname/tls-authz). Every refusal is
// checked on both sides (query-migrate failed with why, the destination's log), and leaves the
// source guest running with its RAM untouched, the destination's RAM unwritten, and the
// destination ready for the next, correct, source.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';
import { createTestPki, type TestPki } from '../../src/tls/pki.js';

type Info = MigrationResult & { 'error-desc'?: string; livemig?: Record<string, unknown> };
const CAPS = { multifd: true, events: true, 'x-verify-ram': true };

let pki: TestPki;
before(() => {
  pki = createTestPki(mkdtempSync(join(tmpdir(), 'livemig-tls-')));
});
after(() => rmSync(pki.root, { recursive: true, force: true }));

async function digest(pair: LocalPair, side: 'source' | 'dest'): Promise<string> {
  return (await pair[side].qmp.execute<{ digest: string }>('x-query-ram-digest')).digest;
}

async function runState(pair: LocalPair, side: 'source' | 'dest'): Promise<string> {
  return (await pair[side].qmp.execute<{ status: string }>('query-status')).status;
}

/** Switch the source to credentials `dir` (or to plaintext, for undefined). */
async function sourceCreds(pair: LocalPair, id: string, dir?: string): Promise<void> {
  if (dir) {
    await pair.source.qmp.execute('object-add', {
      'qom-type': 'tls-creds-x509',
      id,
      dir,
      endpoint: 'client',
    });
  }
  await pair.source.qmp.execute('migrate-set-parameters', { 'tls-creds': dir ? id : '' });
}

/** A migration that the destination must refuse before any RAM moves. */
async function refused(pair: LocalPair, expected: RegExp): Promise<void> {
  const srcDigest = await digest(pair, 'source');
  const dstDigest = await digest(pair, 'dest');
  const logged = pair.dest.stderr.join('').length;
  await pair.startMigration(CAPS, { 'multifd-channels': 2 });
  const src = (await pair.waitFinished(undefined, 20)) as Info;
  assert.equal(src.status, 'failed');
  assert.match(src['error-desc'] ?? '', /^destination: TLS/, 'the source says TLS refused it');
  assert.match(src['error-desc'] ?? '', expected);
  const dst = await pair.dest.qmp.execute<Info>('query-migrate');
  assert.equal(dst.status, 'failed');
  assert.match(dst['error-desc'] ?? '', expected);
  assert.equal(src['error-desc'], `destination: ${dst['error-desc']}`, 'both sides tell the same');
  const log = pair.dest.stderr.join('').slice(logged);
  assert.match(log, /livemig: refused main channel from 127\.0\.0\.1:\d+: TLS/);
  assert.equal(await runState(pair, 'source'), 'running', 'the source guest kept running');
  assert.equal(await digest(pair, 'source'), srcDigest, 'source RAM untouched');
  assert.equal(await digest(pair, 'dest'), dstDigest, 'no RAM written on the destination');
  assert.equal(await runState(pair, 'dest'), 'inmigrate', 'the destination still waits');
}

test('x509: plaintext, wrong-CA and unauthorized sources are refused; then the right one migrates byte-exact', async () => {
  // workload none: the source RAM stays still, so "untouched" can be checked by digest
  const pair = await LocalPair.start({ ram: '64M', normalPageRatio: 0.5, workload: 'none' });
  try {
    const dst = pair.dest.qmp;
    await dst.execute('object-add', {
      'qom-type': 'tls-creds-x509',
      id: 'tls0',
      dir: pki.server,
      endpoint: 'server',
      'verify-peer': true,
    });
    await dst.execute('object-add', {
      'qom-type': 'authz-simple',
      id: 'authz0',
      identity: pki.clientDn,
    });
    await dst.execute('migrate-set-parameters', { 'tls-creds': 'tls0', 'tls-authz': 'authz0' });

    await sourceCreds(pair, 'plain');
    await refused(
      pair,
      /TLS: refused a plaintext connection: this destination requires TLS \(tls-creds 'tls0'\)$/,
    );

    await sourceCreds(pair, 'evil', pki.wrongCa);
    await refused(
      pair,
      new RegExp(
        `TLS: client certificate DN '${pki.clientDn}' is refused: it is not signed by a CA ` +
          `in ca-cert\\.pem of tls-creds 'tls0'`,
      ),
    );

    await sourceCreds(pair, 'intruder', pki.intruder);
    await refused(
      pair,
      new RegExp(`TLS: client certificate DN '${pki.intruderDn}' is not authorized by authz0$`),
    );

    // The source checks the destination too: the name must be in its certificate.
    await sourceCreds(pair, 'tls0', pki.client);
    await pair.source.qmp.execute('migrate-set-parameters', {
      'tls-hostname': 'elsewhere.example.com',
    });
    await pair.startMigration(CAPS, { 'multifd-channels': 2 });
    const mismatch = (await pair.waitFinished(undefined, 20)) as Info;
    assert.equal(mismatch.status, 'failed');
    assert.match(
      mismatch['error-desc'] ?? '',
      /^main channel: TLS: the destination's certificate does not match the name 'elsewhere\.example\.com'/,
    );
    assert.equal(await runState(pair, 'source'), 'running');

    // QEMU's default: the host of the URI (127.0.0.1, an IP SAN of the server certificate).
    await pair.source.qmp.execute('migrate-set-parameters', { 'tls-hostname': '' });
    const { source, dest } = await pair.migrate(CAPS, { 'multifd-channels': 3 });
    assert.equal(source.status, 'completed', String((source as Info)['error-desc']));
    assert.equal((source as Info).livemig?.verify, 'ok', 'destination RAM equals the source');
    assert.equal(dest.status, 'completed');
    assert.equal(await runState(pair, 'dest'), 'running');
    assert.match(pair.dest.stderr.join(''), /refused main channel/);
  } finally {
    await pair.close();
  }
});

test('PSK: a wrong key is refused, then keys.psk migrates a running guest byte-exact', async () => {
  const pair = await LocalPair.start({ ram: '64M', normalPageRatio: 0.5, workload: 'stress' });
  try {
    await pair.dest.qmp.execute('object-add', {
      'qom-type': 'tls-creds-psk',
      id: 'tls0',
      dir: pki.pskServer,
      endpoint: 'server',
    });
    await pair.dest.qmp.execute('migrate-set-parameters', { 'tls-creds': 'tls0' });
    await pair.source.qmp.execute('object-add', {
      'qom-type': 'tls-creds-psk',
      id: 'wrong',
      dir: pki.pskWrongKey,
      endpoint: 'client',
      username: pki.pskIdentity,
    });
    await pair.source.qmp.execute('migrate-set-parameters', { 'tls-creds': 'wrong' });
    await pair.startMigration(CAPS, { 'multifd-channels': 2 });
    const bad = (await pair.waitFinished(undefined, 20)) as Info;
    assert.equal(bad.status, 'failed');
    assert.match(
      bad['error-desc'] ?? '',
      /^main channel: TLS handshake failed: the destination refused the pre-shared key of identity 'migration'/,
    );
    const dbad = await pair.dest.qmp.execute<Info>('query-migrate');
    assert.equal(dbad.status, 'failed');
    assert.equal(
      dbad['error-desc'],
      "TLS: the pre-shared key of identity 'migration' differs from keys.psk of tls-creds 'tls0'",
    );
    assert.equal(await runState(pair, 'source'), 'running');

    await pair.source.qmp.execute('object-add', {
      'qom-type': 'tls-creds-psk',
      id: 'right',
      dir: pki.pskClient,
      endpoint: 'client',
      username: pki.pskIdentity,
    });
    await pair.source.qmp.execute('migrate-set-parameters', { 'tls-creds': 'right' });
    const { source, dest } = await pair.migrate(CAPS, {
      'multifd-channels': 2,
      'downtime-limit': 2000,
    });
    assert.equal(source.status, 'completed', String((source as Info)['error-desc']));
    assert.equal((source as Info).livemig?.verify, 'ok');
    assert.equal(dest.status, 'completed');
  } finally {
    await pair.close();
  }
});
