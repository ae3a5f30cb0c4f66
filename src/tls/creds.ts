// Loading TLS credentials from a directory, as QEMU's tls-creds-x509 and tls-creds-psk do at
// object-add: the files are read (and checked) once, when the object is created, so a typo in
// `dir` is reported by object-add, not by a failed migration later.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { genericError } from '../util/errors.js';
import type { PskSettings, TlsEndpoint, X509Settings } from './security.js';

/** QEMU's file names inside a tls-creds `dir`. */
export const X509_FILES = {
  ca: 'ca-cert.pem',
  crl: 'ca-crl.pem',
  serverCert: 'server-cert.pem',
  serverKey: 'server-key.pem',
  clientCert: 'client-cert.pem',
  clientKey: 'client-key.pem',
} as const;
export const PSK_FILE = 'keys.psk';
/** The identity a PSK client presents when `username` is not set (QEMU's default). */
export const DEFAULT_PSK_USERNAME = 'qemu';

const STRERROR: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
};

/** A credentials file's text; undefined if optional and absent. Errors in QEMU's words. */
function readCredential(dir: string, name: string, required: boolean): string | undefined {
  const path = join(dir, name);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (!required && code === 'ENOENT') return undefined;
    throw genericError(`Unable to access credentials ${path}: ${STRERROR[code] ?? code}`);
  }
}

/** Every PEM certificate in a file (ca-cert.pem may hold several CAs, a cert file its chain). */
function certificates(text: string, path: string): X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw genericError(`Unable to import certificate ${path}: no PEM certificate found`);
  return blocks.map((b) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw genericError(`Unable to import certificate ${path}: ${(e as Error).message}`);
    }
  });
}

function checkDates(cert: X509Certificate, path: string, now: number): void {
  if (Date.parse(cert.validTo) < now) throw genericError(`The certificate ${path} has expired`);
  if (Date.parse(cert.validFrom) > now) {
    throw genericError(`The certificate ${path} is not yet active`);
  }
}

/** QEMU's sanity-check: the CAs are CAs, the certificate chains to one of them, the key fits. */
function checkCertificate(
  cas: X509Certificate[],
  caPath: string,
  certText: string,
  certPath: string,
  keyText: string,
  keyPath: string,
): void {
  const now = Date.now();
  const chain = certificates(certText, certPath);
  chain.forEach((c) => checkDates(c, certPath, now));
  const signedBy = (c: X509Certificate, issuer: X509Certificate): boolean =>
    c.checkIssued(issuer) && c.verify(issuer.publicKey);
  for (let i = 0; i < chain.length; i++) {
    if (cas.some((ca) => signedBy(chain[i], ca))) break;
    if (i + 1 < chain.length && signedBy(chain[i], chain[i + 1])) continue;
    throw genericError(
      `The certificate ${certPath} is not signed by any CA certificate in ${caPath}`,
    );
  }
  let key;
  try {
    key = createPrivateKey(keyText);
  } catch (e) {
    throw genericError(`Unable to import private key ${keyPath}: ${(e as Error).message}`);
  }
  if (!chain[0].checkPrivateKey(key)) {
    throw genericError(`The private key ${keyPath} does not match the certificate ${certPath}`);
  }
}

/**
 * tls-creds-x509: ca-cert.pem always; a server needs server-cert.pem and server-key.pem, a
 * client may have client-cert.pem and client-key.pem (needed if the server verifies peers).
 */
export function loadX509(dir: string, endpoint: TlsEndpoint, verifyPeer: boolean): X509Settings {
  const caPath = join(dir, X509_FILES.ca);
  const ca = readCredential(dir, X509_FILES.ca, true)!;
  const cas = certificates(ca, caPath);
  const now = Date.now();
  for (const c of cas) {
    checkDates(c, caPath, now);
    if (!c.ca) throw genericError(`The certificate ${caPath} is not a CA certificate`);
  }
  const crl = readCredential(dir, X509_FILES.crl, false);
  const server = endpoint === 'server';
  const certName = server ? X509_FILES.serverCert : X509_FILES.clientCert;
  const keyName = server ? X509_FILES.serverKey : X509_FILES.clientKey;
  const cert = readCredential(dir, certName, server);
  const key = readCredential(dir, keyName, server || cert !== undefined);
  if (key !== undefined && cert === undefined) {
    throw genericError(
      `${join(dir, keyName)} has no certificate: ${join(dir, certName)} is missing`,
    );
  }
  if (cert !== undefined && key !== undefined) {
    checkCertificate(cas, caPath, cert, join(dir, certName), key, join(dir, keyName));
  }
  const out: X509Settings = { ca, verifyPeer };
  if (crl !== undefined) out.crl = crl;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  return out;
}

/**
 * keys.psk in QEMU's (GnuTLS's) format: one `identity:hexkey` line per identity. Blank lines are
 * skipped; anything else that is not `identity:hexkey` is an error naming the line.
 */
export function parsePskFile(text: string, path: string): [string, string][] {
  const keys: [string, string][] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    const colon = line.indexOf(':');
    const where = `${path} line ${i + 1}`;
    if (colon <= 0) throw genericError(`${where}: expected 'identity:hexkey'`);
    const identity = line.slice(0, colon);
    const hex = line.slice(colon + 1).trim();
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) {
      throw genericError(`${where}: the key of '${identity}' is not an even number of hex digits`);
    }
    // OpenSSL's limit on a pre-shared key (PSK_MAX_PSK_LEN)
    if (hex.length / 2 > 256) {
      throw genericError(`${where}: the key of '${identity}' is longer than 256 bytes`);
    }
    if (seen.has(identity)) throw genericError(`${where}: identity '${identity}' appears twice`);
    seen.add(identity);
    keys.push([identity, hex.toLowerCase()]);
  });
  if (keys.length === 0) throw genericError(`${path} holds no 'identity:hexkey' line`);
  return keys;
}

/** tls-creds-psk: a server knows every identity in keys.psk; a client only its own. */
export function loadPsk(dir: string, endpoint: TlsEndpoint, username: string): PskSettings {
  const path = join(dir, PSK_FILE);
  const keys = parsePskFile(readCredential(dir, PSK_FILE, true)!, path);
  if (endpoint === 'server') return { keys };
  const mine = keys.find(([identity]) => identity === username);
  if (!mine) throw genericError(`Username ${username} not found in ${path}`);
  return { identity: username, keys: [mine] };
}
