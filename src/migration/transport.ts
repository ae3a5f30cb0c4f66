// How migration channels connect and listen. Every channel (main and multifd) goes through
// here, so a security layer (TLS) is applied to all of them or to none. The settings are
// plain data: they travel to worker threads in workerData.

import net from 'node:net';

/** Channel security settings; `undefined` means plain TCP. */
export interface TransportSecurity {
  kind: 'tls';
  /** Filled in by the TLS layer (credentials as PEM text, PSK identities, authorization). */
  [key: string]: unknown;
}

export interface TransportOptions {
  security?: TransportSecurity;
}

/** An outgoing channel: resolves on the socket's `connect` event (plain) or secure handshake. */
export function connectChannel(
  host: string,
  port: number,
  opts: TransportOptions = {},
): net.Socket {
  if (opts.security) throw new Error('TLS transport is not available in this build');
  return net.connect({ host, port, noDelay: true });
}

/**
 * A listening server whose connection handler gets sockets ready for migration traffic
 * (for TLS: after the handshake and authorization succeeded).
 */
export function listenChannels(
  onConnection: (socket: net.Socket) => void,
  opts: TransportOptions = {},
): net.Server {
  if (opts.security) throw new Error('TLS transport is not available in this build');
  return net.createServer({ noDelay: true }, onConnection);
}

/** The event that says an outgoing channel may carry data. */
export function readyEvent(opts: TransportOptions = {}): 'connect' | 'secureConnect' {
  return opts.security ? 'secureConnect' : 'connect';
}
