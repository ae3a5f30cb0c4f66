// Writing a multifd batch as one vector: staging ranges (packet headers) and views of guest
// pages, with a single writev on the socket's descriptor. Node's stream API has no scatter
// write that does not queue each piece as its own chunk, and copying every normal page into a
// staging buffer first moves each byte through memory twice (a 4 GiB half-normal guest: ~10%
// of both processes' CPU).
//
// What the kernel does not take at once (the socket buffer is full) goes through the stream,
// which waits for room. A writev is only made while the stream has nothing queued, so the bytes
// on the wire keep the order of the flushes.

import { writevSync } from 'node:fs';
import type net from 'node:net';
import { socketFd } from '../socket-fd.js';

export interface VectorWriterStats {
  /** bytes the kernel took in writev */
  direct: number;
  /** bytes left to the stream (socket buffer full, or stream busy) */
  streamed: number;
  /** flushes that left something to the stream */
  partial: number;
}

export class VectorWriter {
  /**
   * Created holding a view, then emptied: an array keeps its elements kind, so `push` finds the
   * kind it was compiled for (in a pooled thread's warm-up) rather than an empty literal's.
   */
  private readonly iov: Uint8Array[] = [new Uint8Array(0)];
  private bytes = 0;
  readonly stats: VectorWriterStats = { direct: 0, streamed: 0, partial: 0 };

  /** `fd`: the socket's descriptor (src/migration/socket-fd.ts). */
  constructor(
    private readonly socket: net.Socket,
    private readonly fd: number,
  ) {
    this.iov.length = 0;
  }

  /** Append `v` to the next flush; it must stay unchanged until that flush settles. */
  push(v: Uint8Array): void {
    this.iov.push(v);
    this.bytes += v.length;
  }

  /** Bytes pushed since the last flush. */
  get length(): number {
    return this.bytes;
  }

  /**
   * Write what was pushed, after everything flushed before. Settles once the socket has taken
   * all of it; rejects with the socket's error (EPIPE, ECONNRESET, ...).
   */
  flush(): Promise<void> {
    const iov = this.iov;
    let n = 0;
    // Once the socket is destroyed its descriptor is closed, and the number may already name
    // another file.
    if (this.socket.destroyed || socketFd(this.socket) !== this.fd) {
      this.reset();
      return Promise.reject(new Error('connection closed'));
    }
    if (this.socket.writableLength === 0 && iov.length > 0) {
      try {
        n = writevSync(this.fd, iov);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') {
          this.reset();
          return Promise.reject(e as Error);
        }
      }
    }
    this.stats.direct += n;
    const rest = this.bytes - n;
    if (rest === 0) {
      this.reset();
      return Promise.resolve();
    }
    this.stats.streamed += rest;
    this.stats.partial++;
    let i = 0;
    while (n >= iov[i].length) n -= iov[i++].length;
    const socket = this.socket;
    const last = iov.length - 1;
    socket.cork();
    const done = new Promise<void>((resolve, reject) => {
      for (let j = i; j <= last; j++) {
        const v = j === i && n > 0 ? iov[j].subarray(n) : iov[j];
        if (j < last) socket.write(v);
        else socket.write(v, (err) => (err ? reject(err) : resolve()));
      }
    });
    socket.uncork();
    this.reset();
    return done;
  }

  private reset(): void {
    this.iov.length = 0;
    this.bytes = 0;
  }
}
