// The TLS configuration surface: object-add/object-del (QMP and HMP) with QEMU's properties and
// error texts, keys.psk parsing, the DN form authz-simple compares, and the resolution of
// tls-creds/tls-hostname/tls-authz, through a real Vm where the control plane is involved.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TlsObjects, parseObjectKeyval } from '../../src/tls/objects.js';
import { parsePskFile } from '../../src/tls/creds.js';
import { dnFromMultiline } from '../../src/tls/dn.js';
import { resolveSecurity } from '../../src/tls/security.js';
import { createTestPki, type TestPki } from '../../src/tls/pki.js';
import { Vm } from '../../src/machine/vm.js';
import { parseWorkload } from '../../src/ram/vcpu-control.js';
import { startQmpServer } from '../../src/control/qmp-server.js';
import { QmpClient, QmpCommandError } from '../../src/control/qmp-client.js';
import { Hmp } from '../../src/control/hmp.js';

/** assert.throws, matching the error's message (not "QmpError: ..."). */
function throwsWith(fn: () => unknown, re: RegExp, message?: string): void {
  assert.throws(
    fn,
    (e: Error) => {
      assert.match(e.message, re, message);
      return true;
    },
    message,
  );
}

let pki: TestPki;
before(() => {
  pki = createTestPki(mkdtempSync(join(tmpdir(), 'livemig-tls-')));
});
after(() => rmSync(pki.root, { recursive: true, force: true }));

test('keys.psk: identity:hexkey lines, as QEMU (GnuTLS) reads them', () => {
  assert.deepEqual(parsePskFile('qemu:00ff\r\n\nrich:AbCd\n', 'k'), [
    ['qemu', '00ff'],
    ['rich', 'abcd'],
  ]);
  const bad: [string, RegExp][] = [
    ['qemu\n', /^k line 1: expected 'identity:hexkey'$/],
    [':00\n', /^k line 1: expected 'identity:hexkey'$/],
    ['\nqemu:0g\n', /^k line 2: the key of 'qemu' is not an even number of hex digits$/],
    ['qemu:abc\n', /not an even number of hex digits/],
    ['qemu:\n', /not an even number of hex digits/],
    ['a:00\na:11\n', /^k line 2: identity 'a' appears twice$/],
    ['\n\n', /^k holds no 'identity:hexkey' line$/],
    [`a:${'00'.repeat(257)}`, /longer than 256 bytes/],
  ];
  for (const [text, re] of bad) throwsWith(() => parsePskFile(text, 'k'), re, text);
});

test("DN: Node's multi-line subject becomes GnuTLS's RFC 4514 string, most specific first", () => {
  assert.equal(
    dnFromMultiline('C=GB\nST=London\nL=London\nO=Example Org\nCN=laptop.example.com'),
    'CN=laptop.example.com,O=Example Org,L=London,ST=London,C=GB',
  );
  assert.equal(dnFromMultiline('O=Example\\, Inc.\nCN=a + UID=b'), 'CN=a+UID=b,O=Example\\, Inc.');
});

test('object-add: properties, defaults and errors in QEMU words', () => {
  const o = new TlsObjects();
  const x = o.add({ 'qom-type': 'tls-creds-x509', id: 'tls0', dir: pki.client });
  assert.equal(x.type === 'tls-creds-x509' && x.endpoint, 'client', 'endpoint defaults to client');
  assert.equal(x.type === 'tls-creds-x509' && x.x509.verifyPeer, true, 'verify-peer defaults on');
  const p = o.add({
    'qom-type': 'tls-creds-psk',
    id: 'psk0',
    dir: pki.pskServer,
    username: 'other',
  });
  assert.equal(p.type === 'tls-creds-psk' && p.psk.identity, 'other');
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ id: 'a' }, /^Parameter 'qom-type' is missing$/],
    [{ 'qom-type': 'secret', id: 'a' }, /^Parameter 'qom-type' does not accept value 'secret'$/],
    [{ 'qom-type': 'authz-simple', identity: 'x' }, /^Parameter 'id' is missing$/],
    [
      { 'qom-type': 'authz-simple', id: '0a', identity: 'x' },
      /^Parameter 'id' expects an identifier$/,
    ],
    [{ 'qom-type': 'authz-simple', id: 'a' }, /^The 'identity' property must be set$/],
    [
      { 'qom-type': 'authz-simple', id: 'a', identity: 'x', dir: '/' },
      /^Parameter 'dir' is unexpected$/,
    ],
    [{ 'qom-type': 'tls-creds-x509', id: 'a' }, /^Missing 'dir' property value$/],
    [
      { 'qom-type': 'tls-creds-x509', id: 'a', dir: pki.client, endpoint: 'peer' },
      /^Parameter 'endpoint' does not accept value 'peer'$/,
    ],
    [
      { 'qom-type': 'tls-creds-x509', id: 'a', dir: pki.client, 'verify-peer': 'yes' },
      /^Invalid parameter type for 'verify-peer', expected: boolean$/,
    ],
    [
      { 'qom-type': 'tls-creds-x509', id: 'a', dir: pki.client, username: 'u' },
      /^Parameter 'username' is unexpected$/,
    ],
    [
      { 'qom-type': 'tls-creds-x509', id: 'tls0', dir: pki.client },
      /^attempt to add duplicate property 'tls0' to object \(type 'container'\)$/,
    ],
    [
      { 'qom-type': 'tls-creds-x509', id: 'a', dir: pki.client, endpoint: 'server' },
      new RegExp(
        `^Unable to access credentials ${pki.client}/server-cert\\.pem: No such file or directory$`,
      ),
    ],
    [
      { 'qom-type': 'tls-creds-x509', id: 'a', dir: '/nonexistent' },
      /^Unable to access credentials \/nonexistent\/ca-cert\.pem: No such file or directory$/,
    ],
    [
      { 'qom-type': 'tls-creds-psk', id: 'a', dir: pki.pskClient, username: 'nobody' },
      /^Username nobody not found in .*\/keys\.psk$/,
    ],
  ];
  for (const [opts, re] of bad) throwsWith(() => o.add(opts), re, JSON.stringify(opts));
  assert.deepEqual(o.ids(), ['tls0', 'psk0'], 'failed adds leave nothing behind');
  o.delete('psk0');
  throwsWith(() => o.delete('psk0'), /^object 'psk0' not found$/);
  throwsWith(() => o.delete('tls0', true), /^object 'tls0' is in use, can not be deleted$/);
});

test("object-add checks the certificates as QEMU's sanity-check does", () => {
  const dir = join(pki.root, 'mismatched');
  mkdirSync(dir);
  copyFileSync(join(pki.client, 'ca-cert.pem'), join(dir, 'ca-cert.pem'));
  copyFileSync(join(pki.client, 'client-cert.pem'), join(dir, 'client-cert.pem'));
  copyFileSync(join(pki.intruder, 'client-key.pem'), join(dir, 'client-key.pem'));
  const o = new TlsObjects();
  throwsWith(
    () => o.add({ 'qom-type': 'tls-creds-x509', id: 'a', dir }),
    /^The private key .*\/client-key\.pem does not match the certificate .*\/client-cert\.pem$/,
  );
  const foreign = join(pki.root, 'foreign');
  mkdirSync(foreign);
  copyFileSync(join(pki.untrusting, 'ca-cert.pem'), join(foreign, 'ca-cert.pem'));
  copyFileSync(join(pki.client, 'client-cert.pem'), join(foreign, 'client-cert.pem'));
  copyFileSync(join(pki.client, 'client-key.pem'), join(foreign, 'client-key.pem'));
  throwsWith(
    () => o.add({ 'qom-type': 'tls-creds-x509', id: 'b', dir: foreign }),
    /^The certificate .*\/client-cert\.pem is not signed by any CA certificate in .*\/ca-cert\.pem$/,
  );
  const notCa = join(pki.root, 'not-ca');
  mkdirSync(notCa);
  copyFileSync(join(pki.client, 'client-cert.pem'), join(notCa, 'ca-cert.pem'));
  throwsWith(
    () => o.add({ 'qom-type': 'tls-creds-x509', id: 'c', dir: notCa }),
    /^The certificate .*\/ca-cert\.pem is not a CA certificate$/,
  );
});

test("HMP's object_add syntax: TYPE,id=ID,prop=value with ',,' escapes and on/off booleans", () => {
  assert.deepEqual(parseObjectKeyval('tls-creds-x509,id=tls0,dir=/a,,b,verify-peer=off'), {
    'qom-type': 'tls-creds-x509',
    id: 'tls0',
    dir: '/a,b',
    'verify-peer': false,
  });
  assert.deepEqual(parseObjectKeyval('qom-type=authz-simple,id=z,identity=CN=x,,O=y'), {
    'qom-type': 'authz-simple',
    id: 'z',
    identity: 'CN=x,O=y',
  });
  throwsWith(() => parseObjectKeyval('authz-simple,id'), /^Expected '=' after parameter 'id'$/);
  throwsWith(
    () => parseObjectKeyval('tls-creds-psk,id=a,verify-peer=maybe'),
    /^Parameter 'verify-peer' expects 'on' or 'off'$/,
  );
});

test('tls-creds, tls-hostname and tls-authz resolve as QEMU looks them up', () => {
  const o = new TlsObjects();
  o.add({ 'qom-type': 'tls-creds-x509', id: 'srv', dir: pki.server, endpoint: 'server' });
  o.add({
    'qom-type': 'tls-creds-x509',
    id: 'lax',
    dir: pki.server,
    endpoint: 'server',
    'verify-peer': false,
  });
  o.add({ 'qom-type': 'tls-creds-x509', id: 'cli', dir: pki.client });
  o.add({ 'qom-type': 'authz-simple', id: 'authz0', identity: pki.clientDn });
  const p = (creds: string, authz = '', hostname = '') => ({
    'tls-creds': creds,
    'tls-authz': authz,
    'tls-hostname': hostname,
  });
  assert.equal(
    resolveSecurity(o, p('', 'nothing', 'x'), 'server'),
    undefined,
    'no tls-creds: plain',
  );
  throwsWith(() => resolveSecurity(o, p('tls9'), 'client'), /^No TLS credentials with id 'tls9'$/);
  throwsWith(
    () => resolveSecurity(o, p('authz0'), 'client'),
    /^Object with id 'authz0' is not TLS credentials$/,
  );
  throwsWith(
    () => resolveSecurity(o, p('srv'), 'client'),
    /^Expected TLS credentials for a client endpoint$/,
  );
  throwsWith(
    () => resolveSecurity(o, p('srv', 'authz9'), 'server'),
    /^Cannot find QAuthZ object ID authz9$/,
  );
  throwsWith(
    () => resolveSecurity(o, p('srv', 'cli'), 'server'),
    /^Object 'cli' is not a QAuthZ subclass$/,
  );
  throwsWith(
    () => resolveSecurity(o, p('lax', 'authz0'), 'server'),
    /needs a client certificate to check, but TLS credentials 'lax' have verify-peer=off/,
  );
  const s = resolveSecurity(o, p('srv', 'authz0'), 'server');
  assert.deepEqual(s?.authz, { id: 'authz0', identity: pki.clientDn });
  assert.equal(
    resolveSecurity(o, p('cli', 'ignored', 'h.example'), 'client')?.hostname,
    'h.example',
  );
});

test('QMP and HMP: object-add/object-del and the tls-* parameters on a real machine', async () => {
  const machine = new Vm({
    ramBytes: 4 << 20,
    workload: parseWorkload('none', 4 << 20),
    normalPageRatio: 0,
    memPrealloc: false,
    startPaused: true,
    incoming: 'defer',
  });
  const server = await startQmpServer(machine, 'tcp:127.0.0.1:0');
  const qmp = await QmpClient.connect(server.address);
  try {
    await qmp.negotiate();
    const fails = async (cmd: string, args: Record<string, unknown>, re: RegExp) => {
      await assert.rejects(qmp.execute(cmd, args), (e: QmpCommandError) => {
        assert.equal(e.errorClass, 'GenericError');
        assert.match(e.desc, re);
        return true;
      });
    };
    const params = await qmp.execute<Record<string, unknown>>('query-migrate-parameters');
    assert.deepEqual(
      [params['tls-creds'], params['tls-hostname'], params['tls-authz']],
      ['', '', ''],
    );
    await qmp.execute('object-add', {
      'qom-type': 'tls-creds-x509',
      id: 'tls0',
      dir: pki.server,
      endpoint: 'server',
      'verify-peer': true,
    });
    await fails(
      'object-add',
      { 'qom-type': 'authz-simple', id: 'z', identity: 1 },
      /expected: string/,
    );
    await fails('object-add', { 'qom-type': 'authz-simple', id: 'z', x: 1 }, /'x' is unexpected/);
    await qmp.execute('migrate-set-parameters', { 'tls-creds': 'tls0', 'tls-authz': 'authz0' });
    await fails(
      'migrate-incoming',
      { uri: 'tcp:127.0.0.1:0' },
      /^Cannot find QAuthZ object ID authz0$/,
    );

    const hmp = new Hmp(machine);
    assert.equal(
      await hmp.execute(
        `object_add authz-simple,id=authz0,identity=${pki.clientDn.replaceAll(',', ',,')}`,
      ),
      '',
    );
    assert.equal(
      await hmp.execute('object_add authz-simple,id=authz0,identity=x'),
      "Error: attempt to add duplicate property 'authz0' to object (type 'container')\n",
    );
    assert.match(await hmp.execute('object_add'), /object_add: parameter 'object' is missing/);
    assert.equal(await hmp.execute('migrate_set_parameter tls-hostname example.org'), '');
    assert.match(await hmp.execute('info migrate_parameters'), /^tls-creds: tls0$/m);

    await qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    await qmp.execute('migrate-set-parameters', { 'tls-creds': null });
    assert.equal(
      (await qmp.execute<Record<string, unknown>>('query-migrate-parameters'))['tls-creds'],
      '',
    );
    await fails(
      'migrate-set-parameters',
      { 'tls-creds': 5 },
      /^Invalid parameter type for 'tls-creds', expected: string or null$/,
    );
    assert.equal(await hmp.execute('object_del authz0'), '');
    await fails('object-del', { id: 'authz0' }, /^object 'authz0' not found$/);
    await qmp.execute('object-del', { id: 'tls0' });
  } finally {
    await qmp.close();
    await server.close();
    await machine.shutdown();
  }
});
