// manifest.json of a guest image: where each part came from (package, version, URL, the .deb's
// sha256) and the sha256 of each file, so a later run can trust the cache without the network
// and `--update` can tell which packages changed.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './files.js';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 1;

export interface ImagePart {
  /** 'archive': extracted from a .deb; 'system': a file of this machine; 'built': by livemig */
  source: 'archive' | 'system' | 'built';
  /** The file's name in the image directory; null for a system file (see `path`). */
  file: string | null;
  /** Absolute path of a system file. */
  path?: string;
  sha256: string;
  size: number;
  /** The Debian package it came from and its version (null when unknown). */
  package: string | null;
  version: string | null;
  /** The .deb's URL; null for system and built files. */
  url: string | null;
  /** sha256 of that .deb, from the archive's index. */
  debSha256?: string;
  /** The file's path inside the package, like ./boot/vmlinuz-6.1.0-50-686 */
  pathInPackage?: string;
}

export interface InitrdPart extends ImagePart {
  source: 'built';
  /** sha256 of the /init script inside. */
  initSha256: string;
  /** sha256 over all of livemig's scripts inside (/init, /bin/livemig-workload, /etc/...). */
  scriptsSha256: string;
  /** sha256 of the busybox binary inside. */
  busyboxSha256: string;
}

export interface ImageManifest {
  format: typeof MANIFEST_FORMAT;
  /** like debian-bookworm-i386 */
  name: string;
  mirror: string;
  suite: string;
  architecture: string;
  /** How the archive's signature was checked when the index was last read. */
  signature: string;
  /** The kernel's release, like 6.1.0-50-686, and the metapackage it was resolved through. */
  kernelRelease: string;
  kernelVia: string;
  /** ISO time of the last change. */
  updated: string;
  /** livemig version that wrote it */
  livemig: string;
  parts: {
    kernel: ImagePart;
    initrd: InitrdPart;
    busybox: ImagePart;
    bios: ImagePart;
    vgaBios: ImagePart | null;
  };
}

/** The manifest in `dir`; null when there is none; throws when it is not a valid one. */
export function readManifest(dir: string): ImageManifest | null {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message})`);
  }
  const problem = manifestProblem(m);
  if (problem) throw new Error(`${path} is not a livemig guest-image manifest: ${problem}`);
  return m as ImageManifest;
}

export async function writeManifest(dir: string, m: ImageManifest): Promise<void> {
  await writeFileAtomic(join(dir, MANIFEST_FILE), JSON.stringify(m, null, 2) + '\n');
}

function manifestProblem(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'not an object';
  const o = m as Record<string, unknown>;
  if (o.format !== MANIFEST_FORMAT) {
    return `format ${JSON.stringify(o.format)}, this livemig reads format ${MANIFEST_FORMAT}`;
  }
  const parts = o.parts as Record<string, unknown> | undefined;
  if (typeof parts !== 'object' || parts === null) return 'no parts';
  for (const name of ['kernel', 'initrd', 'busybox', 'bios', 'vgaBios']) {
    const p = parts[name] as Record<string, unknown> | null | undefined;
    if (name === 'vgaBios' && p === null) continue;
    if (typeof p !== 'object' || p === null) return `no part '${name}'`;
    if (typeof p.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(p.sha256)) {
      return `part '${name}' has no sha256`;
    }
    const fileOk = typeof p.file === 'string' && /^[A-Za-z0-9._-]+$/.test(p.file);
    const pathOk = p.file === null && typeof p.path === 'string' && p.path.startsWith('/');
    if (!fileOk && !pathOk) return `part '${name}' names no file in the image or absolute path`;
  }
  const initrd = parts.initrd as Record<string, unknown>;
  if (typeof initrd.scriptsSha256 !== 'string' || typeof initrd.busyboxSha256 !== 'string') {
    return "part 'initrd' lacks scriptsSha256 or busyboxSha256";
  }
  return null;
}
