// TLS at the transport level, with real loopback sockets: what every migration channel (main
// and multifd) gets from connectChannel/listenChannels when security is set. Credentials come
// from a PKI the test makes with openssl.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  connectChannel,
  listenChannels,
  readyEvent,
  type ChannelRefusal,
  type TransportOptions,
} from '../../src/migration/transport.js';
import { TlsObjects } from '../../src/tls/objects.js';
import { resolveSecurity, type TlsParameters } from '../../src/tls/security.js';
import { createTestPki, type TestPki } from '../../src/tls/pki.js';
import { FRAME_HEADER_SIZE } from '../../src/migration/protocol.js';

let pki: TestPki;
let objects: TlsObjects;

before(() => {
  pki = createTestPki(mkdtempSync(join(tmpdir(), 'livemig-tls-')));
  objects = new TlsObjects();
  const add = (o: Record<string, unknown>): void => void objects.add(o);
  add({ 'qom-type': 'tls-creds-x509', id: 'srv', dir: pki.server, endpoint: 'server' });
  add({ 'qom-type': 'tls-creds-x509', id: 'cli', dir: pki.client, endpoint: 'client' });
  add({ 'qom-type': 'tls-creds-x509', id: 'intruder', dir: pki.intruder });
  add({ 'qom-type': 'tls-creds-x509', id: 'wrongca', dir: pki.wrongCa });
  add({ 'qom-type': 'tls-creds-x509', id: 'untrusting', dir: pki.untrusting });
  add({ 'qom-type': 'authz-simple', id: 'authz0', identity: pki.clientDn });
  add({ 'qom-type': 'tls-creds-psk', id: 'psksrv', dir: pki.pskServer, endpoint: 'server' });
  add({ 'qom-type': 'tls-creds-psk', id: 'pskcli', dir: pki.pskClient, username: 'migration' });
  add({ 'qom-type': 'tls-creds-psk', id: 'pskbad', dir: pki.pskWrongKey, username: 'migration' });
});

after(() => rmSync(pki.root, { recursive: true, force: true }));

function params(creds: string, extra: Partial<TlsParameters> = {}): TlsParameters {
  return { 'tls-creds': creds, 'tls-hostname': '', 'tls-authz': '', ...extra };
}

interface Outcome {
  /** what the server's connection handler received (only after TLS and authorization) */
  serverGot: string;
  refusals: ChannelRefusal[];
  /** the client side: data received, the error it saw, whether it became ready */
  clientGot: Buffer;
  clientError?: string;
  ready: boolean;
}

/** One connection: the client sends `hello` once ready; the server echoes "welcome". */
async function attempt(
  server: TransportOptions,
  client: TransportOptions,
  host = '127.0.0.1',
): Promise<Outcome> {
  const out: Outcome = { serverGot: '', refusals: [], clientGot: Buffer.alloc(0), ready: false };
  let accepted: net.Socket | undefined;
  const srv = listenChannels(
    (s) => {
      accepted = s;
      s.on('data', (d: Buffer) => {
        out.serverGot += d.toString();
        s.end('welcome');
      });
      s.on('error', () => {});
    },
    server,
    (r) => out.refusals.push(r),
  );
  await new Promise<void>((r) => srv.listen({ host: '127.0.0.1', port: 0 }, r));
  const port = (srv.address() as net.AddressInfo).port;
  const sock = connectChannel(host, port, client);
  sock.once(readyEvent(client), () => {
    out.ready = true;
    sock.write('hello');
  });
  sock.on('data', (d: Buffer) => (out.clientGot = Buffer.concat([out.clientGot, d])));
  sock.on('error', (e) => (out.clientError ??= e.message));
  await new Promise<void>((r) => sock.once('close', () => r()));
  accepted?.destroy();
  srv.close();
  return out;
}

/** The message of a livemig Error frame at the start of `b`. */
function errorFrame(b: Buffer): string {
  assert.ok(b.length > FRAME_HEADER_SIZE, 'an Error frame arrived');
  return (JSON.parse(b.subarray(FRAME_HEADER_SIZE).toString()) as { message: string }).message;
}

const sec = (creds: string, endpoint: 'server' | 'client', extra?: Partial<TlsParameters>) => ({
  security: resolveSecurity(objects, params(creds, extra), endpoint),
});

test('x509: a verified, authorized client gets through, over TLS 1.3', async () => {
  const o = await attempt(sec('srv', 'server', { 'tls-authz': 'authz0' }), sec('cli', 'client'));
  assert.equal(o.clientError, undefined);
  assert.deepEqual(o.refusals, []);
  assert.equal(o.serverGot, 'hello');
  assert.equal(o.clientGot.toString(), 'welcome');
});

test('x509: the server name is checked against tls-hostname, default the URI host', async () => {
  const ok = await attempt(sec('srv', 'server'), sec('cli', 'client'), 'localhost');
  assert.equal(ok.clientGot.toString(), 'welcome', 'localhost is in the certificate');
  const named = await attempt(
    sec('srv', 'server'),
    sec('cli', 'client', { 'tls-hostname': 'destination.example.com' }),
  );
  assert.equal(named.clientGot.toString(), 'welcome', 'tls-hostname overrides the URI host');
  const wrong = await attempt(
    sec('srv', 'server'),
    sec('cli', 'client', { 'tls-hostname': 'other.example.com' }),
  );
  assert.equal(wrong.serverGot, '');
  assert.match(
    wrong.clientError ?? '',
    /^TLS: the destination's certificate does not match the name 'other\.example\.com'/,
  );
});

test('x509: a client that does not trust the destination CA refuses it', async () => {
  const o = await attempt(sec('srv', 'server'), sec('untrusting', 'client'));
  assert.equal(o.serverGot, '');
  assert.match(
    o.clientError ?? '',
    /^TLS: the destination's certificate is refused: it is not signed by a CA in ca-cert\.pem of tls-creds 'untrusting'/,
  );
});

test('x509: a plaintext client is refused, and told why in a frame it can read', async () => {
  const o = await attempt(sec('srv', 'server'), {});
  assert.equal(o.serverGot, '', 'nothing reached the connection handler');
  const why =
    "TLS: refused a plaintext connection: this destination requires TLS (tls-creds 'srv')";
  assert.equal(errorFrame(o.clientGot), why);
  assert.equal(o.refusals.length, 1);
  assert.equal(o.refusals[0].reason, why);
  assert.match(o.refusals[0].remote, /^127\.0\.0\.1:\d+$/);
});

test('x509: a client certificate from another CA is refused', async () => {
  const o = await attempt(sec('srv', 'server'), sec('wrongca', 'client'));
  assert.equal(o.serverGot, '');
  assert.equal(o.refusals.length, 1);
  // The client sends its CA along (it trusts it), hence SELF_SIGNED_CERT_IN_CHAIN; a client
  // sending only its own certificate gets UNABLE_TO_VERIFY_LEAF_SIGNATURE.
  assert.match(
    o.refusals[0].reason,
    new RegExp(
      `^TLS: client certificate DN '${pki.clientDn}' is refused: it is not signed by a CA in ` +
        `ca-cert\\.pem of tls-creds 'srv' \\((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\\)$`,
    ),
  );
  assert.equal(errorFrame(o.clientGot), o.refusals[0].reason, 'the client learns why inside TLS');
});

test('x509: a DN that tls-authz does not name is refused', async () => {
  const o = await attempt(
    sec('srv', 'server', { 'tls-authz': 'authz0' }),
    sec('intruder', 'client'),
  );
  assert.equal(o.serverGot, '');
  const why = `TLS: client certificate DN '${pki.intruderDn}' is not authorized by authz0`;
  assert.deepEqual(
    o.refusals.map((r) => r.reason),
    [why],
  );
  assert.equal(errorFrame(o.clientGot), why);
});

test('x509: with verify-peer on, a client without a certificate is refused', async () => {
  const nocert = new TlsObjects();
  nocert.add({ 'qom-type': 'tls-creds-x509', id: 'bare', dir: pki.server, endpoint: 'client' });
  const o = await attempt(sec('srv', 'server'), {
    security: resolveSecurity(nocert, params('bare'), 'client'),
  });
  assert.equal(o.serverGot, '');
  assert.deepEqual(
    o.refusals.map((r) => r.reason),
    ["TLS: the client presented no certificate (tls-creds 'srv' has verify-peer=on)"],
  );
});

test('a TLS client meeting a plaintext listener says the destination does not speak TLS', async () => {
  const o = await attempt({}, sec('cli', 'client'));
  assert.match(o.clientError ?? '', /^TLS: the destination does not speak TLS/);
});

test('PSK: the right key gets through; an unknown identity or another key is refused', async () => {
  const ok = await attempt(sec('psksrv', 'server'), sec('pskcli', 'client'));
  assert.equal(ok.clientError, undefined);
  assert.equal(ok.clientGot.toString(), 'welcome');

  const bad = await attempt(sec('psksrv', 'server'), sec('pskbad', 'client'));
  assert.equal(bad.serverGot, '');
  assert.deepEqual(
    bad.refusals.map((r) => r.reason),
    ["TLS: the pre-shared key of identity 'migration' differs from keys.psk of tls-creds 'psksrv'"],
  );
  assert.match(bad.clientError ?? '', /refused the pre-shared key of identity 'migration'/);

  const stranger = new TlsObjects();
  stranger.add({ 'qom-type': 'tls-creds-psk', id: 'psk', dir: pki.pskServer, username: 'other' });
  const onlyMigration = new TlsObjects();
  onlyMigration.add({
    'qom-type': 'tls-creds-psk',
    id: 's',
    dir: pki.pskClient,
    endpoint: 'server',
  });
  const unknown = await attempt(
    { security: resolveSecurity(onlyMigration, params('s'), 'server') },
    { security: resolveSecurity(stranger, params('psk'), 'client') },
  );
  assert.deepEqual(
    unknown.refusals.map((r) => r.reason),
    ["TLS: PSK identity 'other' is not in keys.psk of tls-creds 's'"],
  );
});

test('PSK: tls-authz names the one identity allowed', async () => {
  const objs = new TlsObjects();
  objs.add({ 'qom-type': 'tls-creds-psk', id: 's', dir: pki.pskServer, endpoint: 'server' });
  objs.add({ 'qom-type': 'tls-creds-psk', id: 'other', dir: pki.pskServer, username: 'other' });
  objs.add({ 'qom-type': 'tls-creds-psk', id: 'mig', dir: pki.pskServer, username: 'migration' });
  objs.add({ 'qom-type': 'authz-simple', id: 'only-migration', identity: 'migration' });
  const server = {
    security: resolveSecurity(objs, params('s', { 'tls-authz': 'only-migration' }), 'server'),
  };
  const ok = await attempt(server, { security: resolveSecurity(objs, params('mig'), 'client') });
  assert.equal(ok.clientGot.toString(), 'welcome');
  const no = await attempt(server, { security: resolveSecurity(objs, params('other'), 'client') });
  assert.deepEqual(
    no.refusals.map((r) => r.reason),
    ["TLS: PSK identity 'other' is not authorized by only-migration"],
  );
});

test('x509 and PSK do not mix: each side says what it expected', async () => {
  const a = await attempt(sec('psksrv', 'server'), sec('cli', 'client'));
  assert.equal(a.serverGot, '');
  assert.deepEqual(
    a.refusals.map((r) => r.reason),
    ["TLS: the client offered no pre-shared key (tls-creds 'psksrv' is tls-creds-psk)"],
  );
  assert.match(a.clientError ?? '', /^TLS handshake failed: the destination refused it \(/);
  const b = await attempt(sec('srv', 'server'), sec('pskcli', 'client'));
  assert.equal(b.serverGot, '');
  assert.match(b.clientError ?? '', /presented a certificate instead of using the pre-shared key/);
});

test('settings that cannot be resolved refuse every connection (fail closed)', async () => {
  const o = await attempt(
    {
      security: {
        kind: 'tls',
        creds: 'gone',
        endpoint: 'server',
        error: "No TLS credentials with id 'gone'",
      },
    },
    {},
  );
  assert.equal(o.serverGot, '');
  assert.equal(errorFrame(o.clientGot), "TLS: No TLS credentials with id 'gone'");
});

test('the settings are plain data (they are cloned into worker threads)', () => {
  for (const id of ['srv', 'cli', 'psksrv', 'pskcli']) {
    const s = resolveSecurity(
      objects,
      params(id, id === 'srv' ? { 'tls-authz': 'authz0' } : {}),
      id.includes('srv') ? 'server' : 'client',
    );
    assert.deepEqual(structuredClone(s), s);
  }
});
