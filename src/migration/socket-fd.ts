// The file descriptor under a plain TCP socket, for the I/O Node's stream API has no form of:
// readv into scattered guest pages and writev from them (src/migration/destination/
// packet-parser.ts readPayload, src/migration/source/send-channel.ts). Both run on the
// socket's own thread, and never while the stream itself has data queued in that direction,
// so the byte order on the wire is the stream's.

import type net from 'node:net';
import tls from 'node:tls';

/** The descriptor of `socket`, or -1 for TLS (its bytes are not the wire's) or when closed. */
export function socketFd(socket: net.Socket): number {
  if (socket instanceof tls.TLSSocket) return -1;
  // `_handle` is the libuv TCP wrap; Node has exposed its `fd` getter on POSIX since 0.x.
  const fd = (socket as unknown as { _handle: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}
