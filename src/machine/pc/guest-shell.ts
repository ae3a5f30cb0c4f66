// Commands typed into a PC guest's shell through its serial console, as a person would, with
// their output read back: what the demo, the bench and the tests use to look inside the guest.

import type { ConsoleClient } from '../../chardev/index.js';

let marker = 0;

/**
 * Run `command` in the guest's shell and return what it printed. The end marker is computed by
 * the shell ($((...))), so the terminal's echo of the command line never matches it.
 */
export async function guestShell(
  console: ConsoleClient,
  command: string,
  timeoutMs = 20_000,
): Promise<string> {
  const n = ++marker;
  const from = console.mark();
  await console.send(`${command}; echo "@@end $((${n} + 0)) $?@@"\n`);
  const m = await console.waitFor(new RegExp(`@@end ${n} (\\d+)@@`), timeoutMs, from);
  const text = console.text(from).slice(0, m.index - from);
  // The first line is the terminal's echo of what was typed.
  return text.split(/\r?\n/).slice(1).join('\n').trim();
}

/** The SHA-256 of a file in the guest. */
export async function guestSha256(console: ConsoleClient, path: string): Promise<string> {
  const out = await guestShell(console, `sha256sum ${path}`);
  const m = /^([0-9a-f]{64})\s/m.exec(out);
  if (!m) throw new Error(`sha256sum ${path} in the guest printed: ${out}`);
  return m[1];
}

/** The last whole `livemig-counter N` line the console showed after `from`, or 0. */
export function lastCounter(console: ConsoleClient, from = 0): number {
  const all = [...console.text(from).matchAll(/livemig-counter (\d+)\s/g)];
  return all.length ? Number(all[all.length - 1][1]) : 0;
}
