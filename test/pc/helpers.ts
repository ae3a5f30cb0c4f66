// What the PC tests share: the guest image (fetched by `livemig image fetch`; CI fetches it in
// .ci/run, so there a missing image is a failure, elsewhere a visible skip) and the guest's
// shell through its console. They boot with `livemig run --machine pc`'s default command line.

import type { TestContext } from 'node:test';
import { defaultBios, findGuestImage, type GuestImage } from '../../src/image/guest-image.js';

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
