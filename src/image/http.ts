// HTTP GETs against a Debian mirror with Node's fetch: a stall timeout (no byte for N seconds
// aborts), a bounded number of attempts for failures that may pass (network errors, timeouts,
// HTTP 5xx/408/429), and errors that name the URL and what failed. Bodies are streamed.

import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';

export interface HttpOptions {
  /** Attempts for failures that may pass (network errors, timeouts, 5xx). Default 3. */
  attempts?: number;
  /** Wait before the second attempt, doubled for each further one. Default 1000 ms. */
  retryDelayMs?: number;
  /** Abort when no response or no body byte arrives for this long. Default 30000 ms. */
  timeoutMs?: number;
}

const DEFAULTS: Required<HttpOptions> = { attempts: 3, retryDelayMs: 1000, timeoutMs: 30_000 };

/** A GET that failed for good. `status` is the HTTP status when the server answered. */
export class HttpError extends Error {
  constructor(
    message: string,
    readonly url: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The body of `url`, at most `maxBytes` of it (indexes, not packages). */
export async function httpGet(url: string, maxBytes: number, opts?: HttpOptions): Promise<Buffer> {
  return withAttempts(url, opts, async (stall) => {
    const chunks: Buffer[] = [];
    let n = 0;
    await streamBody(url, stall, maxBytes, (chunk) => {
      chunks.push(Buffer.from(chunk));
      n += chunk.byteLength;
    });
    return Buffer.concat(chunks, n);
  });
}

export interface Downloaded {
  size: number;
  sha256: string;
}

/**
 * Stream `url` into the file `dest` (created or truncated on each attempt), hashing on the way.
 * `maxBytes` bounds what a server may send (the index's Size for a package). A failed download
 * removes `dest`. Checking the hash against an index is the caller's: it knows the package.
 */
export async function downloadFile(
  url: string,
  dest: string,
  maxBytes: number,
  onBytes?: (done: number, total: number | null) => void,
  opts?: HttpOptions,
): Promise<Downloaded> {
  try {
    return await withAttempts(url, opts, async (stall) => {
      const fh = await open(dest, 'w');
      const hash = createHash('sha256');
      let size = 0;
      try {
        await streamBody(url, stall, maxBytes, async (chunk, total) => {
          try {
            await fh.write(chunk);
          } catch (e) {
            throw new LocalError(e as Error);
          }
          hash.update(chunk);
          size += chunk.byteLength;
          onBytes?.(size, total);
        });
      } finally {
        await fh.close();
      }
      return { size, sha256: hash.digest('hex') };
    });
  } catch (e) {
    await rm(dest, { force: true });
    throw e;
  }
}

/** An error on our side (disk full, ...) inside a body callback: never retried, passed on as is. */
class LocalError extends Error {
  constructor(readonly inner: Error) {
    super(inner.message);
  }
}

class StatusError extends Error {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly finalUrl: string,
  ) {
    super(`HTTP ${status}`);
  }
}

class TooLargeError extends Error {}

/** Aborts the request when `kick()` is not called for `ms`. */
class Stall {
  readonly controller = new AbortController();
  timedOut = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly ms: number) {
    this.kick();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  kick(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.ms);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

async function streamBody(
  url: string,
  stall: Stall,
  maxBytes: number,
  onChunk: (chunk: Uint8Array, total: number | null) => void | Promise<void>,
): Promise<void> {
  const res = await fetch(url, { signal: stall.signal, redirect: 'follow' });
  stall.kick();
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => {});
    throw new StatusError(res.status, res.statusText, res.url);
  }
  const length = Number(res.headers.get('content-length'));
  const total = Number.isSafeInteger(length) && length >= 0 ? length : null;
  if (total !== null && total > maxBytes) {
    await res.body.cancel().catch(() => {});
    throw new TooLargeError(
      `the server announces ${total} bytes, more than the ${maxBytes} expected`,
    );
  }
  const reader = res.body.getReader();
  let n = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      stall.kick();
      if (done) break;
      n += value.byteLength;
      if (n > maxBytes)
        throw new TooLargeError(`the server sent more than the ${maxBytes} bytes expected`);
      await onChunk(value, total);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  if (total !== null && n !== total) {
    throw new ShortBodyError(`the body ended after ${n} of ${total} bytes`);
  }
}

class ShortBodyError extends Error {}

async function withAttempts<T>(
  url: string,
  opts: HttpOptions | undefined,
  run: (stall: Stall) => Promise<T>,
): Promise<T> {
  const o = { ...DEFAULTS, ...opts };
  for (let attempt = 1; ; attempt++) {
    const stall = new Stall(o.timeoutMs);
    try {
      return await run(stall);
    } catch (e) {
      if (e instanceof LocalError) throw e.inner;
      const f = describeFailure(e, url, stall, o.timeoutMs);
      if (!f.retry || attempt >= o.attempts) {
        const tries = attempt > 1 ? ` (${attempt} attempts)` : '';
        throw new HttpError(`cannot get ${url}: ${f.text}${tries}`, url, f.status);
      }
      await sleep(o.retryDelayMs * 2 ** (attempt - 1));
    } finally {
      stall.clear();
    }
  }
}

const NET_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found (DNS)',
  EAI_AGAIN: 'DNS lookup failed (temporary failure)',
  ECONNRESET: 'connection reset by the server',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed by the server',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed by the server',
};

function describeFailure(
  e: unknown,
  url: string,
  stall: Stall,
  timeoutMs: number,
): { text: string; retry: boolean; status?: number } {
  if (e instanceof StatusError) {
    const redirected = e.finalUrl && e.finalUrl !== url ? ` (redirected to ${e.finalUrl})` : '';
    const text = `HTTP ${e.status}${e.statusText ? ` ${e.statusText}` : ''}${redirected}`;
    const retry = e.status >= 500 || e.status === 408 || e.status === 429;
    return { text, retry, status: e.status };
  }
  if (e instanceof TooLargeError) return { text: e.message, retry: false };
  if (e instanceof ShortBodyError) return { text: e.message, retry: true };
  if (stall.timedOut) {
    return { text: `timed out: nothing received for ${timeoutMs / 1000} s`, retry: true };
  }
  const code = errorCode(e);
  if (code) {
    const known = NET_CODES[code];
    return { text: known ? `${known} (${code})` : code, retry: code !== 'ENOTFOUND' };
  }
  const err = e as Error;
  const cause = (err as { cause?: Error }).cause;
  const text = cause?.message ?? err.message ?? String(e);
  if (text === 'bad port') {
    // fetch() refuses some ports outright (the WHATWG "bad ports": 9, 25, 6000, ...).
    return { text: `fetch() refuses port ${new URL(url).port} (a "bad port")`, retry: false };
  }
  return { text, retry: false };
}

/** The errno-style code inside a fetch failure (cause, or the first of an AggregateError). */
function errorCode(e: unknown): string | undefined {
  let cur = e as { code?: unknown; cause?: unknown; errors?: unknown[] } | undefined;
  for (let depth = 0; cur && depth < 4; depth++) {
    if (typeof cur.code === 'string') return cur.code;
    if (Array.isArray(cur.errors) && cur.errors.length > 0) {
      cur = cur.errors[0] as typeof cur;
      continue;
    }
    cur = cur.cause as typeof cur;
  }
  return undefined;
}
