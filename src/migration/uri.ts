// Migration URIs. livemig supports QEMU's tcp: transport.

import { genericError } from '../util/errors.js';

export interface TcpAddress {
  host: string;
  port: number;
}

/** Parse `tcp:HOST:PORT` (HOST may be `[v6]`); port 0 is allowed for listening only. */
export function parseTcpUri(uri: string, allowPortZero = false): TcpAddress {
  const m = /^tcp:(\[[^\]]+\]|[^:]*):(\d+)$/.exec(uri);
  if (!m) {
    const scheme = /^([a-z0-9+.-]+):/i.exec(uri)?.[1];
    if (scheme && scheme !== 'tcp') {
      throw genericError(
        `unsupported migration URI scheme '${scheme}' in '${uri}': livemig supports tcp:HOST:PORT`,
      );
    }
    throw genericError(`invalid migration URI '${uri}': expected tcp:HOST:PORT`);
  }
  const port = Number(m[2]);
  if (port > 65535 || (port === 0 && !allowPortZero)) {
    throw genericError(`invalid port ${port} in migration URI '${uri}': expected 1..65535`);
  }
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host: host === '' ? '0.0.0.0' : host, port };
}
