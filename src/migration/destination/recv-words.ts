// The words the destination's main thread shares with its multifdrecv_N threads.
//
// barrier (Int32, RECV_BARRIER): per channel, the last pass whose SYNC it has applied; then the
// abort word.
// - Channel c writes only its own word: after every packet of pass P is in guest RAM, it
//   Atomics.stores P there and notifies it, then waits until every channel's word is >= P.
// - The main thread writes only the abort word: 1 (Atomics.store, then a notify on every word)
//   when the migration is torn down; every waiter checks it before and after each wait.
// - The main thread reads the channels' words to learn that the final pass is in.
//
// stats (Float64, RECV_STAT per channel): written by channel c only, plain stores after each
// chunk it parses; read by the main thread (query-migrate, and the final pass's progress).

export const RECV_BARRIER = {
  /** index of the abort word, after the channels' words */
  abort: (channels: number) => channels,
  words: (channels: number) => channels + 1,
} as const;

/** Float64 fields of one channel's stats. */
export const RECV_STAT = {
  /** bytes read from the connection, its handshake included */
  bytes: 0,
  normal: 1,
  zero: 2,
  packets: 3,
  size: 4,
} as const;

export function createRecvBarrier(channels: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * RECV_BARRIER.words(channels));
}

export function createRecvStats(channels: number): SharedArrayBuffer {
  return new SharedArrayBuffer(8 * RECV_STAT.size * channels);
}

/** One channel's view of the barrier: what multifdrecv_N writes and waits on. */
export class ChannelBarrier {
  private readonly words: Int32Array;
  private readonly abortAt: number;

  constructor(
    buffer: SharedArrayBuffer,
    private readonly index: number,
    private readonly channels: number,
  ) {
    this.words = new Int32Array(buffer);
    this.abortAt = RECV_BARRIER.abort(channels);
  }

  get aborted(): boolean {
    return Atomics.load(this.words, this.abortAt) !== 0;
  }

  /** This channel has applied every packet of `pass`. */
  reached(pass: number): void {
    Atomics.store(this.words, this.index, pass);
    Atomics.notify(this.words, this.index);
  }

  /**
   * Wait until every channel has reached `pass`: true, or false when the migration is aborted.
   * `onLate(c)` ends the wait with false once `deadline` (performance.now()) has passed.
   */
  async waitAll(
    pass: number,
    deadline: number,
    onLate: (channel: number) => void,
  ): Promise<boolean> {
    for (let c = 0; c < this.channels; c++) {
      for (;;) {
        if (this.aborted) return false;
        const v = Atomics.load(this.words, c);
        if (v >= pass) break;
        if (performance.now() > deadline) {
          onLate(c);
          return false;
        }
        const r = Atomics.waitAsync(this.words, c, v, 200);
        if (r.async) await r.value;
      }
    }
    return true;
  }
}

/** The main thread's view of both: abort, and how far the channels are. */
export class RecvProgress {
  private readonly words: Int32Array;
  private readonly stats: Float64Array;

  constructor(
    barrier: SharedArrayBuffer,
    stats: SharedArrayBuffer,
    readonly channels: number,
  ) {
    this.words = new Int32Array(barrier);
    this.stats = new Float64Array(stats);
  }

  get aborted(): boolean {
    return Atomics.load(this.words, RECV_BARRIER.abort(this.channels)) !== 0;
  }

  /** Wake every waiting channel; they give up the migration. */
  abort(): void {
    Atomics.store(this.words, RECV_BARRIER.abort(this.channels), 1);
    for (let i = 0; i < RECV_BARRIER.words(this.channels); i++) Atomics.notify(this.words, i);
  }

  syncedPass(channel: number): number {
    return Atomics.load(this.words, channel);
  }

  /** Wait up to `ms` for channel `c`'s word to move from `seen`. */
  async waitSynced(channel: number, seen: number, ms: number): Promise<void> {
    const r = Atomics.waitAsync(this.words, channel, seen, ms);
    if (r.async) await r.value;
  }

  /** A field of RECV_STAT summed over the channels. */
  total(field: Exclude<keyof typeof RECV_STAT, 'size'>): number {
    let n = 0;
    for (let c = 0; c < this.channels; c++) n += this.stats[c * RECV_STAT.size + RECV_STAT[field]];
    return n;
  }
}

/** One channel's stats, written by multifdrecv_N. */
export function channelStats(stats: SharedArrayBuffer, index: number): Float64Array {
  return new Float64Array(stats, index * RECV_STAT.size * 8, RECV_STAT.size);
}
