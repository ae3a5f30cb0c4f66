// How migration channels connect and listen. Every channel (main and multifd) goes through
// here, so a security layer (TLS) is applied to all of them or to none. The settings are
// plain data: they travel to worker threads in workerData. TLS itself is src/tls/channel.ts;
// docs/tls.md describes it.

import net from 'node:net';
import { acceptTls, connectTls, type ChannelRefusal } from '../tls/channel.js';
import type { TransportSecurity } from '../tls/security.js';

export type { ChannelRefusal } from '../tls/channel.js';
export type { TransportSecurity } from '../tls/security.js';

export interface TransportOptions {
  /** `undefined`: plain TCP. Read per connection, so a listener follows changes to it. */
  security?: TransportSecurity;
}

/** An outgoing channel: resolves on the socket's `connect` event (plain) or secure handshake. */
export function connectChannel(
  host: string,
  port: number,
  opts: TransportOptions = {},
): net.Socket {
  if (opts.security) return connectTls(host, port, opts.security);
  return net.connect({ host, port, noDelay: true });
}

/**
 * A listening server whose connection handler gets sockets ready for migration traffic
 * (for TLS: after the handshake and authorization succeeded). A connection TLS refuses never
 * reaches the handler; `onRefused` hears why (for the log and query-migrate).
 */
export function listenChannels(
  onConnection: (socket: net.Socket) => void,
  opts: TransportOptions = {},
  onRefused: (r: ChannelRefusal) => void = () => {},
): net.Server {
  return net.createServer({ noDelay: true }, (socket) =>
    acceptChannel(socket, opts, onConnection, onRefused),
  );
}

/**
 * One accepted connection made ready for migration traffic, as listenChannels does for each:
 * for a socket a server accepted before it knew the channel's settings (channel-listener.ts).
 */
export function acceptChannel(
  socket: net.Socket,
  opts: TransportOptions,
  onConnection: (socket: net.Socket) => void,
  onRefused: (r: ChannelRefusal) => void,
): void {
  // The settings of this connection are those in force when it arrives (QEMU looks the
  // credentials up per connection too), so a listening destination follows tls-creds.
  const security = opts.security;
  if (security) acceptTls(socket, security, onConnection, onRefused);
  else onConnection(socket);
}

/** The event that says an outgoing channel may carry data. */
export function readyEvent(opts: TransportOptions = {}): 'connect' | 'secureConnect' {
  return opts.security ? 'secureConnect' : 'connect';
}
