// The C yardsticks of the benches (bench/floor/*.c), compiled once per source version into the
// temporary directory, never beside the checkout.

import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/** The path of `source` built with `cc` and `flags`; builds it if this version is not built yet. */
export function compileC(source: string, cc: string, flags: string[]): string {
  const dir = join(tmpdir(), 'livemig-floor');
  mkdirSync(dir, { recursive: true });
  const tag = `${Math.floor(statSync(source).mtimeMs)}-${flags.join('').replace(/[^\w]/g, '')}`;
  const bin = join(dir, `${basename(source, '.c')}-${tag}`);
  try {
    statSync(bin);
    return bin;
  } catch {
    // not built yet
  }
  try {
    execFileSync(cc, [...flags, '-o', bin, source], { stdio: 'inherit' });
  } catch (e) {
    throw new Error(
      `cannot compile ${source} with '${cc}' (${(e as Error).message}); ` +
        `install a C compiler (Debian: apt-get install build-essential) or name one with --cc`,
    );
  }
  return bin;
}
