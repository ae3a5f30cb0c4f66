// Guest output arrives a byte or a few at a time (a UART transmits byte by byte); one socket
// write or file write per byte would cost a syscall (and, with TCP_NODELAY, a packet) each.
// A ByteBatcher copies the bytes in and hands them on once per event-loop turn.

const DEFAULT_CAPACITY = 16 * 1024;

export class ByteBatcher {
  private staging: Buffer | undefined;
  private length = 0;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(
    /** receives each chunk; the chunk is the sink's to keep */
    private readonly sink: (chunk: Buffer) => void,
    private readonly capacity = DEFAULT_CAPACITY,
  ) {}

  /** Bytes pushed and not yet handed to the sink. */
  get pending(): number {
    return this.length;
  }

  /** Copies `data` (the caller may reuse its buffer at once). */
  push(data: Uint8Array): void {
    let offset = 0;
    while (offset < data.length) {
      this.staging ??= Buffer.allocUnsafe(this.capacity);
      const n = Math.min(data.length - offset, this.capacity - this.length);
      this.staging.set(data.subarray(offset, offset + n), this.length);
      this.length += n;
      offset += n;
      if (this.length === this.capacity) this.flush();
    }
    if (this.length > 0) {
      this.scheduled ??= setImmediate(() => {
        this.scheduled = undefined;
        this.flush();
      });
    }
  }

  /** Hands what is pending to the sink now. */
  flush(): void {
    this.cancel();
    if (this.length === 0 || this.staging === undefined) return;
    let chunk: Buffer;
    if (this.length === this.capacity) {
      chunk = this.staging; // full: hand it over whole, the next push allocates another
      this.staging = undefined;
    } else {
      // a copy of just the bytes, so that a sink that queues it does not pin the whole staging
      chunk = Buffer.from(this.staging.subarray(0, this.length));
    }
    this.length = 0;
    this.sink(chunk);
  }

  /** Forgets what is pending; returns how many bytes that was. */
  discard(): number {
    this.cancel();
    const dropped = this.length;
    this.length = 0;
    return dropped;
  }

  private cancel(): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
  }
}
