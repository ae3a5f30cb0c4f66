// A migration's channel security as plain data: what `connectChannel`/`listenChannels`
// (src/migration/transport.ts) need to run TLS, resolved from the `tls-creds`, `tls-hostname`
// and `tls-authz` parameters and the objects they name. Plain data because it travels to the
// multifdsend_N/multifdrecv_N threads in workerData: PEM texts and hex keys, no handles.

import { genericError } from '../util/errors.js';
import type { TlsObjects } from './objects.js';

export type TlsEndpoint = 'client' | 'server';

export interface X509Settings {
  /** ca-cert.pem */
  ca: string;
  /** ca-crl.pem, if the directory has one */
  crl?: string;
  /** server-cert.pem / client-cert.pem (a client may have none) */
  cert?: string;
  /** server-key.pem / client-key.pem */
  key?: string;
  /** client: check the server's certificate and name; server: require a client certificate */
  verifyPeer: boolean;
}

export interface PskSettings {
  /** client: the identity (QEMU's `username`) it presents; its key is the only one in `keys` */
  identity?: string;
  /** [identity, key as hex] from keys.psk */
  keys: [string, string][];
}

export interface TransportSecurity {
  kind: 'tls';
  /** the id of the tls-creds object, for messages */
  creds: string;
  endpoint: TlsEndpoint;
  x509?: X509Settings;
  psk?: PskSettings;
  /** client: the name the server's certificate must carry (tls-hostname; empty: the URI host) */
  hostname?: string;
  /** server: tls-authz, the authz-simple object a client's DN (x509) or identity (PSK) must match */
  authz?: { id: string; identity: string };
  /**
   * Set when the parameters name objects that are missing or wrong: every connection is then
   * refused with this text (fail closed: never plain TCP when TLS was asked for).
   */
  error?: string;
}

/** The parameters that configure TLS (a subset of MigrationParameters). */
export interface TlsParameters {
  'tls-creds': string;
  'tls-hostname': string;
  'tls-authz': string;
}

/**
 * QEMU's migration_tls_get_creds plus the authz lookup: the settings for one side, or undefined
 * for plain TCP (tls-creds empty; tls-hostname and tls-authz are then ignored, as in QEMU).
 * Throws a GenericError in QEMU's words when the objects are missing or of the wrong kind.
 */
export function resolveSecurity(
  objects: TlsObjects,
  params: TlsParameters,
  endpoint: TlsEndpoint,
): TransportSecurity | undefined {
  const id = params['tls-creds'];
  if (id === '') return undefined;
  const obj = objects.get(id);
  if (!obj) throw genericError(`No TLS credentials with id '${id}'`);
  if (obj.type !== 'tls-creds-x509' && obj.type !== 'tls-creds-psk') {
    throw genericError(`Object with id '${id}' is not TLS credentials`);
  }
  if (obj.endpoint !== endpoint) {
    throw genericError(`Expected TLS credentials for a ${endpoint} endpoint`);
  }
  const sec: TransportSecurity = { kind: 'tls', creds: id, endpoint };
  if (obj.type === 'tls-creds-x509') sec.x509 = { ...obj.x509 };
  else sec.psk = { identity: obj.psk.identity, keys: obj.psk.keys.map(([i, k]) => [i, k]) };
  if (endpoint === 'client') {
    if (params['tls-hostname'] !== '') sec.hostname = params['tls-hostname'];
    return sec;
  }
  const authzId = params['tls-authz'];
  if (authzId !== '') {
    const authz = objects.get(authzId);
    if (!authz) throw genericError(`Cannot find QAuthZ object ID ${authzId}`);
    if (authz.type !== 'authz-simple') {
      throw genericError(`Object '${authzId}' is not a QAuthZ subclass`);
    }
    // QEMU skips authorization silently when verify-peer is off; livemig refuses the
    // combination rather than accept every client while tls-authz looks in force.
    if (sec.x509 && !sec.x509.verifyPeer) {
      throw genericError(
        `tls-authz '${authzId}' needs a client certificate to check, but TLS credentials ` +
          `'${id}' have verify-peer=off`,
      );
    }
    sec.authz = { id: authzId, identity: authz.identity };
  }
  return sec;
}

/**
 * For a destination that is already listening when its parameters or objects change: the
 * settings, or settings that refuse every connection and say why (never plain TCP by mistake).
 */
export function resolveSecurityOrRefuse(
  objects: TlsObjects,
  params: TlsParameters,
  endpoint: TlsEndpoint,
): TransportSecurity | undefined {
  try {
    return resolveSecurity(objects, params, endpoint);
  } catch (e) {
    return { kind: 'tls', creds: params['tls-creds'], endpoint, error: (e as Error).message };
  }
}
