// A throwaway PKI for tests and benchmarks, made with the openssl command (Debian's
// /usr/bin/openssl): a CA, a destination (server) certificate for 127.0.0.1/localhost, an
// authorized client certificate, an unauthorized one from the same CA, a client certificate
// from a second ("wrong") CA, and keys.psk files. Each credentials directory has QEMU's file
// names, so it can be given to object-add as `dir`. Elliptic-curve keys (P-256): generation
// takes a fraction of a second.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface TestPki {
  root: string;
  /** tls-creds-x509 endpoint=server: ca-cert.pem, server-cert.pem, server-key.pem */
  server: string;
  /** endpoint=client: the CA and a client certificate with DN `clientDn` */
  client: string;
  /** endpoint=client: a certificate from the same CA, DN `intruderDn` (not authorized) */
  intruder: string;
  /** endpoint=client: trusts the right CA (and another), its certificate comes from the other */
  wrongCa: string;
  /** endpoint=client: everything from the other CA: it refuses the destination's certificate */
  untrusting: string;
  /** tls-creds-psk endpoint=server: keys.psk with `pskIdentity` and another identity */
  pskServer: string;
  /** tls-creds-psk endpoint=client: keys.psk with `pskIdentity` and the same key */
  pskClient: string;
  /** tls-creds-psk endpoint=client: `pskIdentity` with a different key */
  pskWrongKey: string;
  clientDn: string;
  intruderDn: string;
  pskIdentity: string;
}

/** The openssl binary: $OPENSSL, else Debian's, else whatever PATH finds. */
export function opensslPath(): string {
  if (process.env.OPENSSL) return process.env.OPENSSL;
  return existsSync('/usr/bin/openssl') ? '/usr/bin/openssl' : 'openssl';
}

export function createTestPki(root: string): TestPki {
  const openssl = opensslPath();
  const run = (args: string[]): void => {
    execFileSync(openssl, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const work = join(root, 'work');
  mkdirSync(work, { recursive: true });
  const keyArgs = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const ca = (name: string, cn: string): void => {
    run(
      ['req', '-x509', ...keyArgs, '-days', '30', '-subj', `/CN=${cn}`]
        .concat(['-keyout', join(work, `${name}-key.pem`), '-out', join(work, `${name}-cert.pem`)])
        .concat(['-addext', 'basicConstraints=critical,CA:TRUE'])
        .concat(['-addext', 'keyUsage=critical,keyCertSign,cRLSign']),
    );
  };
  const cert = (name: string, caName: string, subj: string, ext: string): void => {
    const csr = join(work, `${name}.csr`);
    const extFile = join(work, `${name}.ext`);
    writeFileSync(extFile, ext);
    run(['req', ...keyArgs, '-subj', subj, '-keyout', join(work, `${name}-key.pem`), '-out', csr]);
    run(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-days',
        '30',
        '-extfile',
        extFile,
        '-set_serial',
        '0x' + randomBytes(8).toString('hex'),
      ]
        .concat([
          '-CA',
          join(work, `${caName}-cert.pem`),
          '-CAkey',
          join(work, `${caName}-key.pem`),
        ])
        .concat(['-out', join(work, `${name}-cert.pem`)]),
    );
  };
  const dir = (name: string, files: Record<string, string>): string => {
    const d = join(root, name);
    mkdirSync(d, { recursive: true });
    for (const [to, from] of Object.entries(files)) copyFileSync(join(work, from), join(d, to));
    return d;
  };

  ca('ca', 'livemig test CA');
  ca('other-ca', 'another CA');
  const org = '/C=GB/ST=London/L=London/O=Example Org';
  const clientExt = 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n';
  cert(
    'server',
    'ca',
    `${org}/CN=destination.example.com`,
    'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' +
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:destination.example.com\n',
  );
  cert('client', 'ca', `${org}/CN=laptop.example.com`, clientExt);
  cert('intruder', 'ca', `${org}/CN=intruder.example.com`, clientExt);
  cert('wrong-ca-client', 'other-ca', `${org}/CN=laptop.example.com`, clientExt);

  // The wrong-CA client trusts both CAs (so it accepts the destination, and its own certificate
  // passes object-add's sanity check); the destination trusts only the first.
  writeFileSync(
    join(work, 'both-ca-cert.pem'),
    readFileSync(join(work, 'ca-cert.pem'), 'utf8') +
      readFileSync(join(work, 'other-ca-cert.pem'), 'utf8'),
  );

  const pskIdentity = 'migration';
  const key = randomBytes(32).toString('hex');
  const pskDir = (name: string, text: string): string => {
    const d = join(root, name);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'keys.psk'), text, { mode: 0o600 });
    return d;
  };
  return {
    root,
    server: dir('server', {
      'ca-cert.pem': 'ca-cert.pem',
      'server-cert.pem': 'server-cert.pem',
      'server-key.pem': 'server-key.pem',
    }),
    client: dir('client', {
      'ca-cert.pem': 'ca-cert.pem',
      'client-cert.pem': 'client-cert.pem',
      'client-key.pem': 'client-key.pem',
    }),
    intruder: dir('intruder', {
      'ca-cert.pem': 'ca-cert.pem',
      'client-cert.pem': 'intruder-cert.pem',
      'client-key.pem': 'intruder-key.pem',
    }),
    wrongCa: dir('wrong-ca', {
      'ca-cert.pem': 'both-ca-cert.pem',
      'client-cert.pem': 'wrong-ca-client-cert.pem',
      'client-key.pem': 'wrong-ca-client-key.pem',
    }),
    untrusting: dir('untrusting', {
      'ca-cert.pem': 'other-ca-cert.pem',
      'client-cert.pem': 'wrong-ca-client-cert.pem',
      'client-key.pem': 'wrong-ca-client-key.pem',
    }),
    pskServer: pskDir(
      'psk-server',
      `other:${randomBytes(32).toString('hex')}\n${pskIdentity}:${key}\n`,
    ),
    pskClient: pskDir('psk-client', `${pskIdentity}:${key}\n`),
    pskWrongKey: pskDir('psk-wrong-key', `${pskIdentity}:${randomBytes(32).toString('hex')}\n`),
    clientDn: 'CN=laptop.example.com,O=Example Org,L=London,ST=London,C=GB',
    intruderDn: 'CN=intruder.example.com,O=Example Org,L=London,ST=London,C=GB',
    pskIdentity,
  };
}
