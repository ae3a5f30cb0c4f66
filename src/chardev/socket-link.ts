// One attached console connection: guest output batched into it (bounded, so a client that
// stops reading cannot make livemig's memory grow), its bytes handed on as guest input, and one
// notice when it is gone, whichever way it goes.

import type { Socket } from 'node:net';
import { ByteBatcher } from './batcher.js';

/** Output queued in a connection beyond this is dropped rather than buffered. */
export const MAX_UNSENT_OUTPUT = 1024 * 1024;
/** Once the last output is in the kernel, how long the client has to close its side. */
const END_GRACE_MS = 1000;
/** A client that does not even read the last output is cut off after this. */
const END_LIMIT_MS = 5000;

export interface LinkHooks {
  input(data: Buffer): void;
  /** output dropped: `slow`, the client did not keep up; otherwise it left with output pending */
  dropped(bytes: number, slow: boolean): void;
  /** the connection ended or failed; called once */
  gone(link: SocketLink): void;
}

export class SocketLink {
  /** resolves when the socket is fully closed */
  readonly closed: Promise<void>;
  private readonly batcher: ByteBatcher;
  private isGone = false;

  constructor(
    readonly socket: Socket,
    private readonly hooks: LinkHooks,
  ) {
    this.batcher = new ByteBatcher((chunk) => this.send(chunk));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (data: Buffer) => {
      if (!this.isGone) hooks.input(data);
    });
    // A client leaving is the normal case (QEMU detaches on EOF too), not an error to report.
    socket.on('error', () => socket.destroy());
    socket.once('end', () => this.leave());
    socket.once('close', () => this.leave());
    socket.resume();
  }

  write(data: Uint8Array): void {
    if (!this.isGone) this.batcher.push(data);
  }

  /** Sends what is pending, then ends the connection (cut if the client lingers: END_*). */
  end(): Promise<void> {
    if (!this.isGone) this.batcher.flush();
    this.leave();
    if (!this.socket.destroyed) {
      const cut = (): void => void this.socket.destroy();
      this.socket.end(() => setTimeout(cut, END_GRACE_MS).unref());
      setTimeout(cut, END_LIMIT_MS).unref();
    }
    return this.closed;
  }

  private send(chunk: Buffer): void {
    if (this.isGone || !this.socket.writable) return;
    if (this.socket.writableLength + chunk.length > MAX_UNSENT_OUTPUT) {
      this.hooks.dropped(chunk.length, true);
      return;
    }
    this.socket.write(chunk);
  }

  private leave(): void {
    if (this.isGone) return;
    this.isGone = true;
    const pending = this.batcher.discard();
    if (pending > 0) this.hooks.dropped(pending, false);
    this.hooks.gone(this);
  }
}
