// A client for a Debian archive (a mirror's dists/ and pool/): the suite's Release file and its
// signature, the Packages index of one component and architecture, and .deb downloads checked
// against that index. Plain HTTP GETs; nothing of the system's apt is used or changed.

import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import { downloadFile, httpGet, HttpError, type HttpOptions } from './http.js';
import {
  indexPackagesGz,
  parseRelease,
  type IndexFilter,
  type PackageIndex,
  type PackageInfo,
  type ReleaseFile,
} from './packages.js';
import {
  clearsignedBody,
  gpgvVerify,
  signatureTools,
  type SignatureCheck,
  type SignatureOptions,
} from './signature.js';
import { note, type ProgressFn } from './progress.js';

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
/** Debian 12, the last release with i386 kernels. */
export const DEFAULT_SUITE = 'bookworm';
export const ARCH = 'i386';
export const COMPONENT = 'main';

export interface ArchiveOptions {
  mirror: string;
  suite: string;
  http?: HttpOptions;
  signature?: SignatureOptions;
  /** The packages to keep from the index (all by default; the whole index is ~60k). */
  keep?: (name: string) => boolean;
}

export interface ArchiveIndex {
  mirror: string;
  suite: string;
  /** For messages: "bookworm main/binary-i386 at http://deb.debian.org/debian" */
  where: string;
  release: ReleaseFile;
  signature: SignatureCheck;
  packages: PackageIndex;
}

const MAX_RELEASE_BYTES = 32 << 20;

/** The mirror URL without a trailing slash, or an error naming the bad value. */
export function normalizeMirror(mirror: string): string {
  let u: URL;
  try {
    u = new URL(mirror);
  } catch {
    u = new URL('invalid:');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new Error(
      `invalid mirror '${mirror}': expected an http:// or https:// URL of a Debian archive, ` +
        `like ${DEFAULT_MIRROR}`,
    );
  }
  return u.href.replace(/\/+$/, '');
}

export function checkSuite(suite: string): string {
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(suite)) {
    throw new Error(
      `invalid suite '${suite}': expected a Debian codename or suite name like ${DEFAULT_SUITE}`,
    );
  }
  return suite;
}

/** Release (checked) and Packages (checked against Release) of the suite, into `workDir`. */
export async function loadArchiveIndex(
  opts: ArchiveOptions,
  workDir: string,
  progress?: ProgressFn,
): Promise<ArchiveIndex> {
  const mirror = normalizeMirror(opts.mirror);
  const suite = checkSuite(opts.suite);
  const where = `${suite} ${COMPONENT}/binary-${ARCH} at ${mirror}`;
  const base = `${mirror}/dists/${suite}`;
  progress?.({ step: 'index', text: `${base}/InRelease`, phase: 'start', done: 0, total: null });
  const { text, signature } = await getRelease(base, workDir, opts);
  let release: ReleaseFile;
  try {
    release = await parseRelease(text);
  } catch (e) {
    throw new Error(`${base}: ${(e as Error).message}`);
  }
  note(progress, signature.text);
  if (suite !== release.suite && suite !== release.codename) {
    throw new Error(
      `${base}: the Release file is for suite '${release.suite}' (codename ` +
        `'${release.codename}'), not '${suite}'`,
    );
  }
  if (release.architectures.length > 0 && !release.architectures.includes(ARCH)) {
    throw new Error(
      `suite '${suite}' at ${mirror} has no ${ARCH} packages (architectures: ` +
        `${release.architectures.join(' ')}); Debian 12 (bookworm) is the last with i386 kernels`,
    );
  }
  const path = `${COMPONENT}/binary-${ARCH}/Packages.gz`;
  const entry = release.sha256.get(path);
  if (!entry) throw new Error(`${base}: the Release file lists no SHA256 for ${path}`);
  const byHash = `${COMPONENT}/binary-${ARCH}/by-hash/SHA256/${entry.sha256}`;
  const file = join(workDir, 'Packages.gz');
  const label = `the package index (${suite} ${path})`;
  // A mirror in the middle of an update may serve a newer Packages.gz than the Release we
  // have; by-hash names the exact one (apt does the same when the Release offers it).
  const urls = release.acquireByHash
    ? [`${base}/${byHash}`, `${base}/${path}`]
    : [`${base}/${path}`];
  let url = urls[0];
  for (const [i, u] of urls.entries()) {
    url = u;
    progress?.({
      step: 'download',
      text: label,
      phase: 'start',
      done: 0,
      total: entry.size,
    });
    try {
      const got = await downloadFile(
        u,
        file,
        entry.size,
        (done, total) => progress?.({ step: 'download', text: label, phase: 'bytes', done, total }),
        opts.http,
      );
      if (got.sha256 !== entry.sha256) {
        throw new Error(
          `${u}: sha256 ${got.sha256} (${got.size} bytes), but the Release file says ` +
            `${entry.sha256} (${entry.size} bytes)`,
        );
      }
      break;
    } catch (e) {
      if (!(e instanceof HttpError && e.status === 404 && i < urls.length - 1)) throw e;
    }
  }
  progress?.({
    step: 'download',
    text: label,
    phase: 'end',
    done: entry.size,
    total: entry.size,
  });
  progress?.({ step: 'index', text: url, phase: 'start', done: 0, total: null });
  const filter: IndexFilter = { keep: opts.keep };
  const packages = await indexPackagesGz(file, filter).catch((e: Error) => {
    throw new Error(`${url}: cannot read it: ${e.message}`);
  });
  progress?.({
    step: 'index',
    text: `${filter.seen} packages in ${where}`,
    phase: 'end',
    done: 0,
    total: null,
  });
  return { mirror, suite, where, release, signature, packages };
}

/** InRelease (signature checked when possible), else Release with Release.gpg. */
async function getRelease(
  base: string,
  workDir: string,
  opts: ArchiveOptions,
): Promise<{ text: string; signature: SignatureCheck }> {
  const tools = signatureTools(opts.signature);
  const inRelease = `${base}/InRelease`;
  try {
    const data = await httpGet(inRelease, MAX_RELEASE_BYTES, opts.http);
    const file = join(workDir, 'InRelease');
    await writeFile(file, data);
    let text: string;
    try {
      text = clearsignedBody(data.toString('utf8'));
    } catch (e) {
      throw new Error(`${inRelease}: ${(e as Error).message}`);
    }
    if ('missing' in tools) {
      return {
        text,
        signature: { verified: false, text: `signature not checked: ${tools.missing}` },
      };
    }
    return { text, signature: await gpgvVerify(tools, inRelease, file) };
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 404)) throw e;
  }
  const releaseUrl = `${base}/Release`;
  let data: Buffer;
  try {
    data = await httpGet(releaseUrl, MAX_RELEASE_BYTES, opts.http);
  } catch (e) {
    if (e instanceof HttpError && e.status === 404) {
      throw new Error(
        `no suite '${opts.suite}' at ${opts.mirror}: ${inRelease} and ${releaseUrl} ` +
          `both answer HTTP 404`,
      );
    }
    throw e;
  }
  const text = data.toString('utf8');
  const releaseFile = join(workDir, 'Release');
  await writeFile(releaseFile, data);
  if ('missing' in tools) {
    return {
      text,
      signature: { verified: false, text: `signature not checked: ${tools.missing}` },
    };
  }
  const gpgUrl = `${releaseUrl}.gpg`;
  try {
    const sig = await httpGet(gpgUrl, 1 << 20, opts.http);
    await writeFile(join(workDir, 'Release.gpg'), sig);
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 404)) throw e;
    return {
      text,
      signature: {
        verified: false,
        text: `signature not checked: the mirror has no InRelease and no Release.gpg (${gpgUrl})`,
      },
    };
  }
  return {
    text,
    signature: await gpgvVerify(tools, gpgUrl, join(workDir, 'Release.gpg'), releaseFile),
  };
}

export function debUrl(mirror: string, pkg: PackageInfo): string {
  return `${normalizeMirror(mirror)}/${pkg.filename.replace(/^\/+/, '')}`;
}

/** Download a package's .deb to `dest`, checking its Size and SHA256 against the index. */
export async function downloadDeb(
  mirror: string,
  pkg: PackageInfo,
  dest: string,
  progress?: ProgressFn,
  label = `${pkg.name} ${pkg.version}`,
  http?: HttpOptions,
): Promise<string> {
  const url = debUrl(mirror, pkg);
  progress?.({ step: 'download', text: label, phase: 'start', done: 0, total: pkg.size });
  const got = await downloadFile(
    url,
    dest,
    pkg.size,
    (done, total) => progress?.({ step: 'download', text: label, phase: 'bytes', done, total }),
    http,
  );
  if (got.sha256 !== pkg.sha256 || got.size !== pkg.size) {
    await rm(dest, { force: true });
    throw new Error(
      `${pkg.name} ${pkg.version}: the .deb from ${url} has sha256 ${got.sha256} ` +
        `(${got.size} bytes), but the index says sha256 ${pkg.sha256} (${pkg.size} bytes)`,
    );
  }
  progress?.({ step: 'download', text: label, phase: 'end', done: got.size, total: pkg.size });
  return url;
}
