// What the PC tests share: the guest image (fetched by `livemig image fetch`; CI fetches it in
// .ci/run, so there a missing image is a failure, elsewhere a visible skip), a kernel command
// line, and the guest's shell through its console.

import type { TestContext } from 'node:test';
import { defaultBios, findGuestImage, type GuestImage } from '../../src/image/guest-image.js';
import { DEFAULT_APPEND } from '../../src/machine/pc/pc-config.js';

/** The kernel command line the tests boot with: `livemig run --machine pc`'s default. */
export const APPEND = DEFAULT_APPEND;

/** The fetched guest image, or null after marking the test skipped (outside CI). */
export function guestImage(t: TestContext): GuestImage | null {
  const image = findGuestImage();
  if (image && defaultBios(image)) return image;
  const why = 'no guest image: run `livemig image fetch` (CI does, in .ci/run)';
  if (process.env.CI) throw new Error(why);
  t.skip(why);
  return null;
}

export { guestShell as shell, lastCounter } from '../../src/machine/pc/guest-shell.js';
