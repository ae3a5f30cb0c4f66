// A growing byte buffer with LEB128 writes, for assembling WebAssembly modules: v86's JIT
// generates a module every few milliseconds while a guest boots, and each is rewritten
// (src/machine/pc/store-marking.ts), so writes go into one buffer rather than number arrays.

export class ByteWriter {
  private buf: Uint8Array;
  length = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): this {
    this.room(1);
    this.buf[this.length++] = b;
    return this;
  }

  /** An unsigned LEB128 (0 .. 2^32 - 1). */
  u32(n: number): this {
    this.room(5);
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n !== 0) b |= 0x80;
      this.buf[this.length++] = b;
    } while (n !== 0);
    return this;
  }

  /** A signed LEB128 of a 32-bit integer. */
  s32(n: number): this {
    this.room(5);
    n |= 0;
    for (;;) {
      const b = n & 0x7f;
      n >>= 7;
      const done = (n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0);
      this.buf[this.length++] = done ? b : b | 0x80;
      if (done) return this;
    }
  }

  /** Bytes [from, to) of `src`. */
  bytes(src: Uint8Array, from: number, to: number): this {
    const n = to - from;
    this.room(n);
    if (n <= 32) {
      // most runs are a few instructions: a loop beats a subarray and a set
      const buf = this.buf;
      let at = this.length;
      for (let i = from; i < to; i++) buf[at++] = src[i];
    } else {
      this.buf.set(src.subarray(from, to), this.length);
    }
    this.length += n;
    return this;
  }

  /** A section: its id, its size, then what `fill` writes (about `sizeHint` bytes). */
  section(id: number, fill: (w: ByteWriter) => void, sizeHint = 1024): this {
    const body = new ByteWriter(sizeHint);
    fill(body);
    this.byte(id).u32(body.length);
    return this.bytes(body.buf, 0, body.length);
  }

  reset(): this {
    this.length = 0;
    return this;
  }

  /** What was written, without a copy: valid until the next write or reset. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** A copy of what was written, in a plain ArrayBuffer of its own. */
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
