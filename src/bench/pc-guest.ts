// What the PC bench types into the guest's serial console, and what it waits for: the shell,
// a file whose sha256 must survive the migration, and the busy scenario's cp loop. The same
// commands on both peers. Every wait has a timeout whose error shows the console's last lines.

import type { ConsoleClient } from '../chardev/console-client.js';
import { MARKER_READY, SHELL_PROMPT } from '../image/init-script.js';

/** How long a command's answer may take (the guest may be busy copying). */
export const COMMAND_TIMEOUT_MS = 20_000;

/** cp:SIZE, as livemig-workload takes it: SIZE like 8M or 512K. */
export function parseCpWorkload(w: string): { count: number; blockSize: number } {
  const m = /^cp:([1-9]\d*)([MK])$/.exec(w.trim());
  if (!m) {
    throw new Error(
      `invalid --busy-workload '${w}': expected cp:SIZE with SIZE like 8M or 512K ` +
        "(the guest's random file copied in a loop, as livemig-workload's cp)",
    );
  }
  return { count: Number(m[1]), blockSize: m[2] === 'M' ? 1048576 : 1024 };
}

/**
 * The busy loop: livemig-workload's cp (a random file copied to /tmp in an endless loop), plus
 * a line on the console after each copy, so that the host can count the guest's progress.
 */
export function copyLoopCommand(workload: string): string {
  const { count, blockSize } = parseCpWorkload(workload);
  return (
    "(trap '' HUP; " +
    `dd if=/dev/urandom of=/tmp/livemig-src bs=${blockSize} count=${count} 2>/dev/null; ` +
    'n=0; while true; do cp /tmp/livemig-src /tmp/livemig-dst; n=$((n+1)); ' +
    'echo "lm-copy $n" > /dev/ttyS0; done) </dev/null >/dev/null 2>&1 &'
  );
}

/** Wait for /init's ready line, then for the shell's prompt; when the ready line came (ms). */
export async function waitForShell(c: ConsoleClient, timeoutMs: number, from = 0): Promise<number> {
  const ready = await c.waitFor(MARKER_READY, timeoutMs, from);
  const at = Date.now();
  await c.waitFor(SHELL_PROMPT, COMMAND_TIMEOUT_MS, ready.end);
  return at;
}

let nonce = Math.floor(Math.random() * 1e6);

/** Type `echo lm-alive-$((K+1))`: only a shell that runs it prints K+1. Throws if none does. */
export async function shellAnswers(
  c: ConsoleClient,
  timeoutMs = COMMAND_TIMEOUT_MS,
): Promise<void> {
  const k = nonce++;
  const from = c.mark();
  await c.send(`echo lm-alive-$((${k}+1))\n`);
  await c.waitFor(new RegExp(`lm-alive-${k + 1}\\r?\\n`), timeoutMs, from);
}

function checkPath(id: number): string {
  return `/tmp/lm-check-${id}`;
}

async function sha256Of(c: ConsoleClient, path: string, typed: string, timeoutMs: number) {
  const from = c.mark();
  await c.send(`${typed}\n`);
  const re = new RegExp(`([0-9a-f]{64})\\s+${path.replace(/[/.-]/g, '\\$&')}\\r?\\n`);
  const m = await c.waitFor(re, timeoutMs, from);
  return m[1];
}

/** Write 1 MiB of random bytes to /tmp/lm-check-ID (removing earlier ones); its sha256. */
export function writeCheckFile(
  c: ConsoleClient,
  id: number,
  timeoutMs = COMMAND_TIMEOUT_MS,
): Promise<string> {
  const p = checkPath(id);
  return sha256Of(
    c,
    p,
    `rm -f /tmp/lm-check-*; dd if=/dev/urandom of=${p} bs=4096 count=256 2>/dev/null; sha256sum ${p}`,
    timeoutMs,
  );
}

/** The sha256 of /tmp/lm-check-ID now. */
export function checkFileSha(
  c: ConsoleClient,
  id: number,
  timeoutMs = COMMAND_TIMEOUT_MS,
): Promise<string> {
  return sha256Of(c, checkPath(id), `sha256sum ${checkPath(id)}`, timeoutMs);
}

/** Start the cp loop and wait for its first copy. */
export async function startCopyLoop(
  c: ConsoleClient,
  workload: string,
  timeoutMs = 60_000,
): Promise<void> {
  const from = c.mark();
  await c.send(copyLoopCommand(workload) + '\n');
  await c.waitFor(/lm-copy 1\r?\n/, timeoutMs, from);
}

/** A rejection's message, or the value; for checks that must not throw past their caller. */
export async function attempt<T>(
  p: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}
