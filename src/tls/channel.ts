// TLS on a migration channel, with Node's `tls` module: the client side (`connectTls`, the
// source's main and multifd channels) and the server side (`acceptTls`, every connection the
// destination's listeners accept). Used only through src/migration/transport.ts.
//
// Server side, per accepted connection:
//   1. the first bytes decide: a TLS handshake record (0x16) goes on; anything else is a
//      plaintext client, refused with a livemig Error frame it can read (in clear);
//   2. the TLS 1.3 handshake (x509: the client's certificate is requested when verify-peer is
//      on; PSK: the identity is looked up in keys.psk);
//   3. authorization: the client's certificate must chain to ca-cert.pem, and its DN (or its
//      PSK identity) must equal tls-authz's identity. A refusal is sent as an Error frame
//      inside TLS, so the source learns why;
//   4. only then does the listener's connection handler see the socket: no byte of a refused
//      connection reaches the migration, let alone guest RAM.

import net from 'node:net';
import tls from 'node:tls';
import { FrameType, encodeFrame } from '../migration/protocol.js';
import { subjectDn } from './dn.js';
import type { TransportSecurity } from './security.js';

/** How long a connection may take to send its first byte and finish the TLS handshake. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** A refused peer that does not close its end is closed after this. */
const REFUSED_LINGER_MS = 1000;
/** The first byte of a TLS record carrying a handshake message (a ClientHello). */
const TLS_HANDSHAKE_RECORD = 0x16;
/**
 * TLS 1.3 with an external pre-shared key: OpenSSL's PSK callbacks, which Node uses, assume a
 * SHA-256 key, so only the SHA-256 suites can be negotiated (TLS_AES_256_GCM_SHA384 fails
 * with "no suitable signature algorithm"). The key exchange is psk_dhe_ke (ECDHE).
 */
export const PSK_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';

export interface ChannelRefusal {
  /** why, beginning with "TLS" (also sent to the peer) */
  reason: string;
  /** ADDR:PORT of the peer */
  remote: string;
}

/** The `reason` part of an OpenSSL error string ("...:SSL routines:func:reason:file:line:..."). */
function opensslReason(message: string): string {
  const m = /^[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)/.exec(message);
  return m ? m[1] : message;
}

/** An X.509 verification result code (X509_V_ERR_*) in words. */
function verifyText(code: string, creds: string): string {
  switch (code) {
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return `it is not signed by a CA in ca-cert.pem of tls-creds '${creds}' (${code})`;
    case 'CERT_HAS_EXPIRED':
      return `it has expired (${code})`;
    case 'CERT_NOT_YET_VALID':
      return `it is not valid yet (${code})`;
    case 'CERT_REVOKED':
      return `it is revoked by ca-crl.pem of tls-creds '${creds}' (${code})`;
    default:
      return `its verification failed (${code})`;
  }
}

const VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

// ---- client (source) -------------------------------------------------------------------------

/** An outgoing TLS channel; it may carry data once it emits 'secureConnect'. */
export function connectTls(host: string, port: number, sec: TransportSecurity): tls.TLSSocket {
  if (sec.error) throw new Error(`TLS: ${sec.error}`);
  // QEMU: the server's certificate must carry tls-hostname, or else the host of the URI.
  const hostname = sec.hostname || host;
  const opts: tls.ConnectionOptions = { host, port, minVersion: 'TLSv1.3' };
  if (sec.x509) {
    const x = sec.x509;
    opts.ca = x.ca;
    if (x.crl) opts.crl = x.crl;
    if (x.cert && x.key) {
      opts.cert = x.cert;
      opts.key = x.key;
    }
    opts.rejectUnauthorized = x.verifyPeer;
    opts.checkServerIdentity = (_host, cert) =>
      x.verifyPeer ? tls.checkServerIdentity(hostname, cert) : undefined;
    // SNI carries names only (RFC 6066); an IP address is checked against the IP SANs.
    if (net.isIP(hostname) === 0) opts.servername = hostname;
  } else if (sec.psk) {
    const [identity, hex] = sec.psk.keys[0];
    const psk = Buffer.from(hex, 'hex');
    opts.ciphers = PSK_CIPHERS;
    opts.pskCallback = () => ({ identity, psk });
    opts.checkServerIdentity = () => undefined;
  }
  const socket = tls.connect(opts);
  socket.setNoDelay(true);
  let secure = false;
  socket.once('secureConnect', () => (secure = true));
  // The migration reports socket errors as they come; say in its words what TLS refused.
  socket.prependListener('error', (e: Error) => {
    e.message = describeClientError(e as NodeJS.ErrnoException, secure, sec, hostname);
  });
  return socket;
}

function describeClientError(
  e: NodeJS.ErrnoException,
  secure: boolean,
  sec: TransportSecurity,
  hostname: string,
): string {
  const code = e.code ?? '';
  const reason = opensslReason(e.message);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return (
      `TLS: the destination's certificate does not match the name '${hostname}' ` +
      `(tls-hostname, or the host of the URI): ${e.message}`
    );
  }
  if (VERIFY_CODES.has(code)) {
    if (sec.psk) {
      return (
        `TLS: the destination presented a certificate instead of using the pre-shared key ` +
        `(is its tls-creds a tls-creds-psk?)`
      );
    }
    return `TLS: the destination's certificate is refused: ${verifyText(code, sec.creds)}`;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return `TLS: the destination does not speak TLS (${reason}); is tls-creds set on the destination?`;
  }
  if (secure) return code.startsWith('ERR_SSL_') ? `TLS: ${reason}` : e.message;
  if (code === 'ECONNRESET') {
    return 'TLS handshake failed: the destination closed the connection';
  }
  if (sec.psk && code.startsWith('ERR_SSL_')) {
    return (
      `TLS handshake failed: the destination refused the pre-shared key of identity ` +
      `'${sec.psk.keys[0][0]}' (${reason}): unknown identity, or a different key`
    );
  }
  if (code.includes('_ALERT_'))
    return `TLS handshake failed: the destination refused it (${reason})`;
  return code.startsWith('ERR_SSL_') ? `TLS handshake failed: ${reason}` : e.message;
}

// ---- server (destination) --------------------------------------------------------------------

/**
 * Take over an accepted connection: TLS handshake and authorization, then `onConnection` with
 * the TLS socket; or `onRefused`, and the connection is closed.
 */
export function acceptTls(
  raw: net.Socket,
  sec: TransportSecurity,
  onConnection: (socket: net.Socket) => void,
  onRefused: (r: ChannelRefusal) => void,
): void {
  const remote = `${raw.remoteAddress}:${raw.remotePort}`;
  raw.setNoDelay(true);
  raw.on('error', () => raw.destroy());
  const refuse = (reason: string, socket: net.Socket, tell: boolean): void => {
    onRefused({ reason, remote });
    socket.on('error', () => socket.destroy());
    if (tell && socket.writable) socket.end(encodeFrame(FrameType.Error, { message: reason }));
    else socket.destroy();
    setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
  };
  // A connection that never sends anything is closed without ceremony (as a plain one is).
  const idle = setTimeout(() => raw.destroy(), TLS_HANDSHAKE_TIMEOUT_MS);
  raw.once('close', () => clearTimeout(idle));
  raw.once('data', (chunk: Buffer) => {
    clearTimeout(idle);
    if (chunk[0] !== TLS_HANDSHAKE_RECORD) {
      const why = sec.error
        ? `TLS: ${sec.error}`
        : `TLS: refused a plaintext connection: this destination requires TLS (tls-creds '${sec.creds}')`;
      refuse(why, raw, true);
      return;
    }
    if (sec.error) {
      refuse(`TLS: ${sec.error}`, raw, false);
      return;
    }
    raw.pause();
    raw.unshift(chunk); // the TLS socket reads the ClientHello from the buffer
    let pskIdentity: string | undefined;
    const server = tls.createServer(serverOptions(sec, (id) => (pskIdentity = id)));
    server.on('secureConnection', (s: tls.TLSSocket) => {
      const why = authorize(s, sec, pskIdentity);
      if (why) refuse(why, s, true);
      else onConnection(s);
    });
    server.on('tlsClientError', (e: NodeJS.ErrnoException, s: tls.TLSSocket) => {
      refuse(describeServerError(e, sec, pskIdentity), s, false);
    });
    server.emit('connection', raw);
  });
}

function serverOptions(sec: TransportSecurity, sawIdentity: (id: string) => void): tls.TlsOptions {
  const opts: tls.TlsOptions = {
    minVersion: 'TLSv1.3',
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
  };
  if (sec.x509) {
    const x = sec.x509;
    opts.ca = x.ca;
    if (x.crl) opts.crl = x.crl;
    opts.cert = x.cert;
    opts.key = x.key;
    // Verification is checked after the handshake (authorize), so that the refusal can say why.
    opts.requestCert = x.verifyPeer;
    opts.rejectUnauthorized = false;
  } else if (sec.psk) {
    const keys = new Map(sec.psk.keys.map(([id, hex]) => [id, Buffer.from(hex, 'hex')]));
    opts.ciphers = PSK_CIPHERS;
    opts.pskCallback = (_socket, identity) => {
      sawIdentity(identity);
      return keys.get(identity) ?? null;
    };
  }
  return opts;
}

/** '' if the peer may migrate; else why not. */
function authorize(s: tls.TLSSocket, sec: TransportSecurity, pskIdentity?: string): string {
  if (sec.psk) {
    if (sec.authz && pskIdentity !== sec.authz.identity) {
      return `TLS: PSK identity '${pskIdentity}' is not authorized by ${sec.authz.id}`;
    }
    return '';
  }
  if (!sec.x509?.verifyPeer) return '';
  const peer = s.getPeerX509Certificate();
  if (!peer) {
    return `TLS: the client presented no certificate (tls-creds '${sec.creds}' has verify-peer=on)`;
  }
  const dn = subjectDn(peer);
  if (!s.authorized) {
    const code = String(s.authorizationError);
    return `TLS: client certificate DN '${dn}' is refused: ${verifyText(code, sec.creds)}`;
  }
  if (sec.authz && dn !== sec.authz.identity) {
    return `TLS: client certificate DN '${dn}' is not authorized by ${sec.authz.id}`;
  }
  return '';
}

function describeServerError(
  e: NodeJS.ErrnoException,
  sec: TransportSecurity,
  pskIdentity: string | undefined,
): string {
  const code = e.code ?? '';
  const reason = opensslReason(e.message);
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
    return `TLS handshake did not complete within ${TLS_HANDSHAKE_TIMEOUT_MS} ms`;
  }
  if (sec.psk) {
    if (pskIdentity === undefined && code.startsWith('ERR_SSL_')) {
      return `TLS: the client offered no pre-shared key (tls-creds '${sec.creds}' is tls-creds-psk)`;
    }
    if (pskIdentity !== undefined && !sec.psk.keys.some(([id]) => id === pskIdentity)) {
      return `TLS: PSK identity '${pskIdentity}' is not in keys.psk of tls-creds '${sec.creds}'`;
    }
    if (code === 'ERR_SSL_BINDER_DOES_NOT_VERIFY' || code === 'ERR_SSL_DECRYPTION_FAILED') {
      return `TLS: the pre-shared key of identity '${pskIdentity}' differs from keys.psk of tls-creds '${sec.creds}'`;
    }
  }
  if (code === 'ERR_SSL_UNSUPPORTED_PROTOCOL') {
    return `TLS handshake failed: the client does not offer TLS 1.3 (${reason})`;
  }
  if (code === 'ECONNRESET') {
    return (
      'TLS handshake failed: the client closed the connection (does it trust this ' +
      "destination's certificate, under the name it expects?)"
    );
  }
  if (code.includes('_ALERT_')) return `TLS handshake failed: the client refused it (${reason})`;
  return `TLS handshake failed: ${reason}`;
}
