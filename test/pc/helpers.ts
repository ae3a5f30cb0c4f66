// What the PC tests share: the guest image (fetched by `livemig image fetch`; CI fetches it in
// .ci/run, so there a missing image is a failure, elsewhere a visible skip), a kernel command
// line, and a shell on a console that returns a command's output.

import type { TestContext } from 'node:test';
import { defaultBios, findGuestImage, type GuestImage } from '../../src/image/guest-image.js';
import { ConsoleClient } from '../../src/chardev/index.js';

export const APPEND = 'console=ttyS0 tsc=reliable mitigations=off random.trust_cpu=on';

/** The fetched guest image, or null after marking the test skipped (outside CI). */
export function guestImage(t: TestContext): GuestImage | null {
  const image = findGuestImage();
  if (image && defaultBios(image)) return image;
  const why = 'no guest image: run `livemig image fetch` (CI does, in .ci/run)';
  if (process.env.CI) throw new Error(why);
  t.skip(why);
  return null;
}

let marker = 0;

/**
 * Run `command` in the guest's shell and return what it printed. The end marker is computed by
 * the shell ($((...))), so the terminal's echo of the command line never matches it.
 */
export async function shell(
  c: ConsoleClient,
  command: string,
  timeoutMs = 20_000,
): Promise<string> {
  const n = ++marker;
  const from = c.mark();
  await c.send(`${command}; echo "@@end $((${n} + 0)) $?@@"\n`);
  const m = await c.waitFor(new RegExp(`@@end ${n} (\\d+)@@`), timeoutMs, from);
  const text = c.text(from).slice(0, m.index - from);
  // Drop the echoed command line.
  const lines = text.split(/\r?\n/);
  return lines.slice(1).join('\n').trim();
}

/** The last `livemig-counter N` the console showed after `from`, or 0. */
export function lastCounter(c: ConsoleClient, from = 0): number {
  const all = [...c.text(from).matchAll(/livemig-counter (\d+)/g)];
  return all.length ? Number(all[all.length - 1][1]) : 0;
}
