// Splits a character stream into JSON texts the way QEMU's json-streamer does: by bracket depth
// outside strings, so texts may be concatenated, pretty-printed or split across chunks. A text
// that fails to parse is reported and scanning resumes after it, so one bad request does not
// end the session.

export type JsonItem = { ok: true; value: unknown } | { ok: false; error: string };

export interface JsonPushResult {
  items: JsonItem[];
  /** The unfinished text grew past maxPending; the caller should drop the connection. */
  overflow: boolean;
}

/** QEMU's json-parser refuses deeper nesting too (MAX_NESTING). */
const DEFAULT_MAX_DEPTH = 1024;

export class JsonStream {
  /** Characters of the unfinished text carried over from earlier chunks. */
  private pending = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** A bare top-level scalar (number, literal or garbage) is being read. */
  private inScalar = false;

  constructor(
    private readonly maxPending: number,
    private readonly maxDepth = DEFAULT_MAX_DEPTH,
  ) {}

  push(chunk: string): JsonPushResult {
    const items: JsonItem[] = [];
    let start = 0; // start in `chunk` of the current text's unconsumed part
    const text = (end: number): string => {
      const t = this.pending + chunk.slice(start, end);
      this.pending = '';
      start = end;
      return t;
    };
    const fail = (end: number, why: string): void => {
      text(end);
      this.reset();
      items.push({ ok: false, error: `JSON parse error, ${why}` });
    };

    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
        } else if (c === 0x5c /* \ */) {
          this.escaped = true;
        } else if (c === 0x22 /* " */) {
          this.inString = false;
          if (this.depth === 0) items.push(parse(text(i + 1)));
        } else if (c < 0x20) {
          // A raw control character cannot be in a JSON string; QEMU's lexer gives up here too,
          // which also lets a newline end a runaway string.
          fail(i + 1, 'control character in string');
        }
        continue;
      }
      const isSpace = c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
      const isOpen = c === 0x7b /* { */ || c === 0x5b; /* [ */
      const isClose = c === 0x7d /* } */ || c === 0x5d; /* ] */
      if (this.depth === 0) {
        if (this.inScalar && (isSpace || isOpen || isClose || c === 0x22)) {
          this.inScalar = false;
          items.push(parse(text(i)));
        }
        if (isSpace) {
          start = i + 1; // whitespace between texts is not part of any text
          continue;
        }
      }
      if (c === 0x22) {
        this.inString = true;
      } else if (isOpen) {
        if (++this.depth > this.maxDepth) fail(i + 1, 'nesting too deep');
      } else if (isClose) {
        if (this.depth === 0) {
          fail(i + 1, `unexpected '${String.fromCharCode(c)}'`);
        } else if (--this.depth === 0) {
          items.push(parse(text(i + 1)));
        }
      } else if (this.depth === 0) {
        this.inScalar = true;
      }
    }
    this.pending += chunk.slice(start);
    return { items, overflow: this.pending.length > this.maxPending };
  }

  /** Forget any unfinished text (after an error, as QEMU's parser does). */
  reset(): void {
    this.pending = '';
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.inScalar = false;
  }
}

function parse(text: string): JsonItem {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, error: `JSON parse error, ${(err as Error).message}` };
  }
}
