// File helpers for the image cache: sha256 of files, atomic writes (temp file + rename, so a
// reader never sees half a file) and staging directories for a fetch in progress.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** sha256 of a file, synchronously (the image parts are a few MiB at most). */
export function sha256FileSync(path: string): string {
  return sha256(readFileSync(path));
}

/** Write `data` to `path` through a temp file in the same directory and a rename. */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644) {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomHex()}`);
  try {
    await writeFile(tmp, data, { mode });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

const STAGING_PREFIX = '.staging-';

/** A fresh staging directory inside `dir` (same file system, so its files can be renamed in). */
export async function makeStagingDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return mkdtemp(join(dir, `${STAGING_PREFIX}${process.pid}-`));
}

/** Remove staging directories left by fetches whose process is gone (killed, power loss). */
export async function removeStaleStaging(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(STAGING_PREFIX)) continue;
    const pid = Number(name.slice(STAGING_PREFIX.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) continue;
    if (pid === process.pid) continue;
    await rm(join(dir, name), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function randomHex(): string {
  return randomBytes(4).toString('hex');
}
