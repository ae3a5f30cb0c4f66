// Waiting, without blocking the thread, until a condition over shared memory holds.

/**
 * Resolve true once `cond()` holds, re-checking whenever `words[index]` changes (its writers
 * notify it), or false once `timeoutMs` passed first.
 */
export async function waitUntil(
  words: Int32Array,
  index: number,
  cond: () => boolean,
  timeoutMs: number,
): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  // A pending Atomics.waitAsync does not keep Node's event loop alive; this timer does (it
  // must outlast the wait's own timeout, so it is not the deadline).
  const keepAlive = setInterval(() => {}, 2 ** 30);
  try {
    for (;;) {
      const seen = Atomics.load(words, index);
      if (cond()) return true;
      const left = end - performance.now();
      if (left <= 0) return false;
      const r = Atomics.waitAsync(words, index, seen, left);
      if (r.async) await r.value;
    }
  } finally {
    clearInterval(keepAlive);
  }
}
