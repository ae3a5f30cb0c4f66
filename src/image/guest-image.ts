// The guest image of the PC machine: an i386 Debian kernel, an initramfs with busybox and
// livemig's /init, and SeaBIOS, in a per-user cache. findGuestImage() trusts the cache only
// when every file's sha256 matches the manifest; fetchGuestImage() fetches what is missing or
// changed from a Debian mirror, staging everything and renaming it in only once all is checked.

import { existsSync, readFileSync } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { LIVEMIG_VERSION } from '../control/version.js';
import {
  ARCH,
  DEFAULT_MIRROR,
  DEFAULT_SUITE,
  checkSuite,
  downloadDeb,
  loadArchiveIndex,
  normalizeMirror,
  type ArchiveIndex,
} from './archive.js';
import { extractFromDeb, packagePath } from './deb.js';
import {
  makeStagingDir,
  removeStaleStaging,
  sha256,
  sha256FileSync,
  writeFileAtomic,
} from './files.js';
import type { HttpOptions } from './http.js';
import { buildInitramfs, checkBzImage, checkI386Elf, scriptHashes } from './initramfs.js';
import {
  MANIFEST_FILE,
  readManifest,
  writeManifest,
  type ImageManifest,
  type ImagePart,
  type InitrdPart,
} from './manifest.js';
import { requirePackage, resolveKernel, type PackageInfo } from './packages.js';
import { note, type FetchProgress, type ProgressFn } from './progress.js';
import type { SignatureOptions } from './signature.js';

export type { FetchProgress } from './progress.js';
export type { ImageManifest } from './manifest.js';

export interface GuestImage {
  dir: string;
  kernel: string;
  initrd: string;
  bios: string;
  vgaBios: string | null;
  manifest: ImageManifest;
}

/** The metapackage that names the current non-PAE i386 kernel. */
export const KERNEL_METAPACKAGE = 'linux-image-686';
export const BUSYBOX_PACKAGE = 'busybox-static';
export const SEABIOS_PACKAGE = 'seabios';
export const SYSTEM_SEABIOS_DIR = '/usr/share/seabios';
const BIOS_FILE = 'bios.bin';
const VGA_BIOS_FILE = 'vgabios-stdvga.bin';
const FILES = { kernel: 'vmlinuz', initrd: 'initrd.img', busybox: 'busybox' } as const;

function cacheHome(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  // The XDG spec says to ignore a relative XDG_CACHE_HOME.
  return xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
}

/** The image directory of a suite: CACHE/livemig/images/debian-SUITE-i386 (see defaultImageDir). */
export function imageDirFor(suite: string, cacheBase?: string): string {
  return join(cacheBase ?? cacheHome(), 'livemig', 'images', `debian-${suite}-${ARCH}`);
}

/**
 * Where the image lives: CACHE/livemig/images/debian-bookworm-i386, where CACHE is
 * `cacheBase`, else $XDG_CACHE_HOME, else ~/.cache.
 */
export function defaultImageDir(cacheBase?: string): string {
  return imageDirFor(DEFAULT_SUITE, cacheBase);
}

/** The system's SeaBIOS (Debian package seabios), when installed. */
export function systemBios(
  systemDir = SYSTEM_SEABIOS_DIR,
): { bios: string; vgaBios: string | null } | null {
  const bios = join(systemDir, BIOS_FILE);
  if (!existsSync(bios)) return null;
  const vga = join(systemDir, VGA_BIOS_FILE);
  return { bios, vgaBios: existsSync(vga) ? vga : null };
}

/** The BIOS and VGA BIOS to use by default: the system's SeaBIOS when present, else the image's. */
export function defaultBios(
  image?: GuestImage | null,
  systemDir = SYSTEM_SEABIOS_DIR,
): { bios: string; vgaBios: string | null } | null {
  const img = image === undefined ? findGuestImage() : image;
  const cached = (part: ImagePart | null | undefined) =>
    img && part?.file ? join(img.dir, part.file) : null;
  const sys = systemBios(systemDir);
  if (sys) return { bios: sys.bios, vgaBios: sys.vgaBios ?? cached(img?.manifest.parts.vgaBios) };
  const bios = cached(img?.manifest.parts.bios);
  return bios ? { bios, vgaBios: cached(img?.manifest.parts.vgaBios) } : null;
}

type PartState = 'ok' | 'missing' | 'corrupt' | 'stale';

interface Inspection {
  manifest: ImageManifest | null;
  state: Record<'kernel' | 'busybox' | 'bios' | 'initrd', PartState>;
  /** What is wrong, one line each, for messages. */
  problems: string[];
}

function inspect(dir: string, systemDir: string, manifest: ImageManifest | null): Inspection {
  const problems: string[] = [];
  const check = (name: string, part: ImagePart | null | undefined): PartState => {
    if (!part) return 'missing';
    const path = part.file ? join(dir, part.file) : part.path!;
    if (!existsSync(path)) {
      problems.push(`${name}: ${path} is missing`);
      return 'missing';
    }
    if (part.source === 'system') return 'ok'; // the system's package manager may update it
    const got = sha256FileSync(path);
    if (got === part.sha256) return 'ok';
    problems.push(`${name}: ${path} is corrupt: sha256 ${got}, the manifest says ${part.sha256}`);
    return 'corrupt';
  };
  const p = manifest?.parts;
  const state: Inspection['state'] = {
    kernel: check('kernel', p?.kernel),
    busybox: check('busybox', p?.busybox),
    bios: systemBios(systemDir)
      ? 'ok'
      : p?.bios?.source === 'system'
        ? 'missing'
        : check('bios', p?.bios),
    initrd: check('initrd', p?.initrd),
  };
  if (state.bios === 'ok' && !systemBios(systemDir) && p?.vgaBios) {
    state.bios = check('vga bios', p.vgaBios);
  }
  if (state.initrd === 'ok' && p) {
    const now = scriptHashes();
    if (p.initrd.scriptsSha256 !== now.scriptsSha256) {
      problems.push(`initrd: built with other guest scripts than this livemig's`);
      state.initrd = 'stale';
    } else if (p.initrd.busyboxSha256 !== p.busybox.sha256) {
      problems.push(`initrd: built with another busybox than the image's`);
      state.initrd = 'stale';
    }
  }
  return { manifest, state, problems };
}

function toImage(dir: string, m: ImageManifest, systemDir: string): GuestImage {
  const at = (part: ImagePart) => (part.file ? join(dir, part.file) : part.path!);
  const sys = systemBios(systemDir);
  const cachedVga = m.parts.vgaBios ? at(m.parts.vgaBios) : null;
  return {
    dir,
    kernel: at(m.parts.kernel),
    initrd: at(m.parts.initrd),
    bios: sys ? sys.bios : at(m.parts.bios),
    vgaBios: sys ? (sys.vgaBios ?? cachedVga) : cachedVga,
    manifest: m,
  };
}

/**
 * The fetched image, with its files' sha256 checked against the manifest; null when not
 * fetched, incomplete, or its initrd was built with other guest scripts than this livemig's
 * (fetchGuestImage rebuilds it without the network). Throws a clear error when a file is corrupt.
 */
export function findGuestImage(
  dir = defaultImageDir(),
  systemDir = SYSTEM_SEABIOS_DIR,
): GuestImage | null {
  const m = readManifest(dir);
  if (!m) return null;
  const ins = inspect(dir, systemDir, m);
  const corrupt = Object.values(ins.state).includes('corrupt');
  if (corrupt) {
    throw new Error(
      `the guest image in ${dir} is corrupt (${ins.problems.join('; ')}); ` +
        'run `livemig image fetch` to fetch it again',
    );
  }
  return Object.values(ins.state).every((s) => s === 'ok') ? toImage(dir, m, systemDir) : null;
}

/** What `livemig image info` shows: the image, or why there is none usable. */
export function describeGuestImage(
  dir = defaultImageDir(),
  systemDir = SYSTEM_SEABIOS_DIR,
): { image: GuestImage } | { image: null; problems: string[] } {
  const m = readManifest(dir);
  if (!m) return { image: null, problems: [] };
  const ins = inspect(dir, systemDir, m);
  if (Object.values(ins.state).every((s) => s === 'ok'))
    return { image: toImage(dir, m, systemDir) };
  return { image: null, problems: ins.problems };
}

export interface FetchOptions {
  /** The image directory; default defaultImageDir() (for another suite: debian-SUITE-i386). */
  dir?: string;
  mirror?: string;
  suite?: string;
  /** Fetch and rebuild everything. */
  force?: boolean;
  /** Read the archive's index even when the image is complete; fetch the packages that changed. */
  update?: boolean;
  onProgress?: (p: FetchProgress) => void;
  /** Timeouts and attempts of the HTTP requests. */
  http?: HttpOptions;
  /** gpgv and keyring for the archive's signature. */
  signature?: SignatureOptions;
  /** Where the system's SeaBIOS is looked for. */
  systemSeabiosDir?: string;
}

/** The packages an image can need: kernels (to follow the metapackage), busybox, SeaBIOS. */
function wantedPackage(name: string): boolean {
  return name.startsWith('linux-image-') || name === BUSYBOX_PACKAGE || name === SEABIOS_PACKAGE;
}

type Need = { kernel: boolean; busybox: boolean; bios: boolean; initrd: boolean };

/** Fetch what is missing (no network when complete), return the image. */
export async function fetchGuestImage(opts: FetchOptions = {}): Promise<GuestImage> {
  const suite = checkSuite(opts.suite ?? DEFAULT_SUITE);
  const mirror = normalizeMirror(opts.mirror ?? DEFAULT_MIRROR);
  const dir = opts.dir ?? imageDirFor(suite);
  const systemDir = opts.systemSeabiosDir ?? SYSTEM_SEABIOS_DIR;
  const progress = opts.onProgress;
  await removeStaleStaging(dir);

  let old: ImageManifest | null = null;
  try {
    old = readManifest(dir);
  } catch (e) {
    note(progress, `${(e as Error).message}; fetching everything again`);
  }
  if (old && old.suite !== suite) {
    note(progress, `${dir} holds suite ${old.suite}, not ${suite}; fetching everything again`);
    old = null;
  }
  const ins = inspect(dir, systemDir, opts.force ? null : old);
  for (const p of ins.problems) note(progress, p);
  const need: Need = {
    kernel: ins.state.kernel !== 'ok',
    busybox: ins.state.busybox !== 'ok',
    bios: ins.state.bios !== 'ok',
    initrd: ins.state.initrd !== 'ok',
  };
  const sys = systemBios(systemDir);
  if (!Object.values(need).some(Boolean) && !opts.update && ins.manifest) {
    return toImage(dir, ins.manifest, systemDir);
  }

  const staging = await makeStagingDir(dir);
  try {
    let index: ArchiveIndex | null = null;
    if (need.kernel || need.busybox || (need.bios && !sys) || opts.update) {
      index = await loadArchiveIndex(
        { mirror, suite, http: opts.http, signature: opts.signature, keep: wantedPackage },
        staging,
        progress,
      );
    }
    const parts: Partial<ImageManifest['parts']> = { ...ins.manifest?.parts };
    let kernelRelease = ins.manifest?.kernelRelease ?? '';
    let kernelVia = ins.manifest?.kernelVia ?? '';
    const staged: Record<string, string> = {}; // file name in the image -> staged path

    if (index) {
      if (!index.packages.has(KERNEL_METAPACKAGE)) {
        throw new Error(
          `no package '${KERNEL_METAPACKAGE}' in ${index.where}: no i386 kernel in this suite ` +
            `(Debian 12, ${DEFAULT_SUITE}, is the last with one)`,
        );
      }
      const k = resolveKernel(index.packages, KERNEL_METAPACKAGE, index.where);
      const busybox = requirePackage(index.packages, BUSYBOX_PACKAGE, index.where);
      if (opts.update) {
        need.kernel ||= parts.kernel?.debSha256 !== k.pkg.sha256;
        need.busybox ||= parts.busybox?.debSha256 !== busybox.sha256;
        const seabios = sys ? null : requirePackage(index.packages, SEABIOS_PACKAGE, index.where);
        need.bios ||= !!seabios && parts.bios?.debSha256 !== seabios.sha256;
      }
      if (need.kernel) {
        kernelRelease = k.kernelRelease;
        kernelVia = k.chain.map((p) => `${p.name} ${p.version}`).join(' -> ');
        note(progress, `kernel: ${kernelVia}`);
        const [kernel] = await fetchFiles(
          index,
          k.pkg,
          'the kernel',
          staging,
          {
            [`boot/vmlinuz-${k.kernelRelease}`]: FILES.kernel,
          },
          progress,
          opts.http,
        );
        checkBzImage(await readFile(join(staging, FILES.kernel)), `${k.pkg.name}'s vmlinuz`);
        parts.kernel = kernel;
        staged[FILES.kernel] = join(staging, FILES.kernel);
      }
      if (need.busybox) {
        const [bb] = await fetchFiles(
          index,
          busybox,
          'busybox',
          staging,
          {
            'bin/busybox': FILES.busybox,
          },
          progress,
          opts.http,
        );
        checkI386Elf(
          await readFile(join(staging, FILES.busybox)),
          `${busybox.name}'s ./bin/busybox`,
        );
        parts.busybox = bb;
        staged[FILES.busybox] = join(staging, FILES.busybox);
        need.initrd = true;
      }
      if (need.bios && !sys) {
        const seabios = requirePackage(index.packages, SEABIOS_PACKAGE, index.where);
        const [bios, vga] = await fetchFiles(
          index,
          seabios,
          'the BIOS',
          staging,
          {
            [`usr/share/seabios/${BIOS_FILE}`]: BIOS_FILE,
            [`usr/share/seabios/${VGA_BIOS_FILE}`]: VGA_BIOS_FILE,
          },
          progress,
          opts.http,
        );
        parts.bios = bios;
        parts.vgaBios = vga;
        staged[BIOS_FILE] = join(staging, BIOS_FILE);
        staged[VGA_BIOS_FILE] = join(staging, VGA_BIOS_FILE);
      }
    }
    if (sys && (need.bios || !parts.bios || parts.bios.source === 'system' || opts.force)) {
      parts.bios = systemPart(sys.bios);
      parts.vgaBios = sys.vgaBios ? systemPart(sys.vgaBios) : (parts.vgaBios ?? null);
      note(progress, `BIOS: the system's SeaBIOS, ${sys.bios}`);
    }
    if (need.initrd) {
      const bbPath = staged[FILES.busybox] ?? join(dir, FILES.busybox);
      parts.initrd = await stageInitrd(bbPath, parts.busybox!, staging, progress);
      staged[FILES.initrd] = join(staging, FILES.initrd);
    }

    const manifest: ImageManifest = {
      format: 1,
      name: `debian-${suite}-${ARCH}`,
      mirror: index?.mirror ?? ins.manifest?.mirror ?? mirror,
      suite,
      architecture: ARCH,
      signature: index?.signature.text ?? ins.manifest?.signature ?? '',
      kernelRelease,
      kernelVia,
      updated: new Date().toISOString(),
      livemig: LIVEMIG_VERSION,
      parts: parts as ImageManifest['parts'],
    };
    // Commit: without a manifest the directory is no image, so a crash between the renames
    // leaves an incomplete image (fetched again), never a mix that looks valid.
    await rm(join(dir, MANIFEST_FILE), { force: true });
    for (const [name, path] of Object.entries(staged)) await rename(path, join(dir, name));
    await writeManifest(dir, manifest);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const image = findGuestImage(dir, systemDir);
  if (!image)
    throw new Error(`internal error: the guest image in ${dir} is incomplete after fetching`);
  return image;
}

/** Download `pkg`, extract `files` (path in package -> file name) into `staging`, drop the .deb. */
async function fetchFiles(
  index: ArchiveIndex,
  pkg: PackageInfo,
  role: string,
  staging: string,
  files: Record<string, string>,
  progress: ProgressFn | undefined,
  http: HttpOptions | undefined,
): Promise<ImagePart[]> {
  const label = `${pkg.name} ${pkg.version} (${role})`;
  const deb = join(staging, `${pkg.name}.deb`);
  const url = await downloadDeb(index.mirror, pkg, deb, progress, label, http);
  const text = `${Object.keys(files)
    .map((p) => `./${p}`)
    .join(', ')} from ${pkg.name}`;
  progress?.({ step: 'extract', text, phase: 'start', done: 0, total: null });
  const wanted = Object.fromEntries(Object.entries(files).map(([p, f]) => [p, join(staging, f)]));
  const out = await extractFromDeb(deb, `${pkg.name} ${pkg.version}`, wanted);
  await rm(deb, { force: true }); // the extracted files and the manifest are all we keep
  progress?.({ step: 'extract', text, phase: 'end', done: 0, total: null });
  return Object.entries(files).map(([p, file]) => {
    const x = out.find((o) => o.path === packagePath(p))!;
    return {
      source: 'archive',
      file,
      sha256: x.sha256,
      size: x.size,
      package: pkg.name,
      version: pkg.version,
      url,
      debSha256: pkg.sha256,
      pathInPackage: `./${x.path}`,
    };
  });
}

async function stageInitrd(
  busyboxPath: string,
  busybox: ImagePart,
  staging: string,
  progress: ProgressFn | undefined,
): Promise<InitrdPart> {
  const text = `${FILES.initrd}: busybox ${busybox.version ?? ''} and livemig's /init`;
  progress?.({ step: 'initrd', text, phase: 'start', done: 0, total: null });
  const bb = await readFile(busyboxPath);
  if (sha256(bb) !== busybox.sha256) {
    throw new Error(`${busyboxPath} changed while building the initrd (sha256 ${sha256(bb)})`);
  }
  const initrd = buildInitramfs(bb);
  await writeFileAtomic(join(staging, FILES.initrd), initrd.data);
  progress?.({
    step: 'initrd',
    text,
    phase: 'end',
    done: initrd.data.length,
    total: initrd.data.length,
  });
  return {
    source: 'built',
    file: FILES.initrd,
    sha256: initrd.sha256,
    size: initrd.data.length,
    package: null,
    version: null,
    url: null,
    initSha256: initrd.initSha256,
    scriptsSha256: initrd.scriptsSha256,
    busyboxSha256: busybox.sha256,
  };
}

function systemPart(path: string): ImagePart {
  const data = readFileSync(path);
  const installed = dpkgInstalledVersion(SEABIOS_PACKAGE);
  return {
    source: 'system',
    file: null,
    path,
    sha256: sha256(data),
    size: data.length,
    package: installed ? SEABIOS_PACKAGE : null,
    version: installed,
    url: null,
  };
}

/** The installed version of a package per dpkg's status file (read only), or null. */
function dpkgInstalledVersion(name: string): string | null {
  let text: string;
  try {
    text = readFileSync('/var/lib/dpkg/status', 'utf8');
  } catch {
    return null;
  }
  const re = new RegExp(`^Package: ${name}\\n(?:[^\\n]+\\n)*?Version: ([^\\n]+)`, 'm');
  const m = re.exec(text);
  return m ? m[1] : null;
}
