// Reading a multifd channel into one reused buffer instead of a new Buffer per read.
//
// Node's `onread` option does this (no allocation, no stream machinery per read: half the
// receive CPU on loopback in a measurement here), but Node 20 offers it only on sockets it
// creates, not on accepted ones. An accepted TCP socket's handle can be moved to a new Socket
// that has the option: the old Socket is left without a handle and forgotten. This relies on
// `socket._handle`, which Node has had since its first releases; TLS sockets keep the 'data'
// path (their handle is the TLS layer).

import net from 'node:net';
import tls from 'node:tls';

/** Read size: large enough that a 512 KiB packet takes a few reads. */
export const STATIC_READ_BYTES = 256 * 1024;

interface HandleOwner {
  _handle: unknown;
}

/**
 * Move a paused, plain TCP socket to a Socket that reads into `buffer` (or, if a function,
 * into the buffer it returns before each read) and calls `onChunk` with each read (return false
 * to pause; `resume()` continues). Returns null where that is not possible (TLS, or a socket
 * that has data queued or no handle); keep using `socket` then.
 */
export function rewrapForStaticReads(
  socket: net.Socket,
  buffer: Buffer | (() => Buffer),
  onChunk: (s: net.Socket, n: number, buf: Buffer) => boolean,
): net.Socket | null {
  if (socket instanceof tls.TLSSocket) return null;
  const old = socket as unknown as HandleOwner;
  if (!old._handle || socket.readableLength > 0) return null;
  const handle = old._handle;
  old._handle = null;
  socket.removeAllListeners();
  const s: net.Socket = new net.Socket({
    handle,
    onread: { buffer, callback: (n: number, buf: Uint8Array) => onChunk(s, n, buf as Buffer) },
  } as net.SocketConstructorOpts);
  return s;
}
