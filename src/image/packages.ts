// Debian's index formats: control-file stanzas ("Field: value" lines, continuation lines start
// with a space, stanzas separated by blank lines), the Release file's SHA256 list, Packages
// entries, Depends fields, and dpkg's version order. Just what fetching a few packages needs.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';

/** One stanza; field names lowercased (Debian field names are case-insensitive). */
export type Stanza = Map<string, string>;

/** Stanzas from lines; `keep` limits which fields are stored (a Packages file is ~50 MB). */
export async function* readStanzas(
  lines: AsyncIterable<string> | Iterable<string>,
  keep?: ReadonlySet<string>,
): AsyncGenerator<Stanza> {
  let cur: Stanza = new Map();
  let last: string | null = null;
  for await (const line of lines) {
    if (line.trim() === '') {
      if (cur.size > 0) yield cur;
      cur = new Map();
      last = null;
      continue;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      if (last !== null) cur.set(last, `${cur.get(last)}\n${line.slice(1)}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue; // not a field (a PGP armour line in a bad file); ignored
    const name = line.slice(0, colon).toLowerCase();
    if (keep && !keep.has(name)) {
      last = null;
      continue;
    }
    cur.set(name, line.slice(colon + 1).trim());
    last = name;
  }
  if (cur.size > 0) yield cur;
}

export async function parseStanzas(text: string): Promise<Stanza[]> {
  const out: Stanza[] = [];
  for await (const s of readStanzas(text.split('\n'))) out.push(s);
  return out;
}

export interface ReleaseFile {
  suite: string;
  codename: string;
  architectures: string[];
  components: string[];
  /** Files can also be fetched by their sha256 under by-hash/SHA256/ */
  acquireByHash: boolean;
  /** path (like main/binary-i386/Packages.gz) -> its sha256 and size */
  sha256: Map<string, { sha256: string; size: number }>;
}

export async function parseRelease(text: string): Promise<ReleaseFile> {
  const [st] = await parseStanzas(text);
  if (!st || !st.has('sha256')) {
    throw new Error('not a Debian Release file: it has no SHA256 field');
  }
  const sha256 = new Map<string, { sha256: string; size: number }>();
  for (const line of st.get('sha256')!.split('\n')) {
    const m = /^\s*([0-9a-f]{64})\s+(\d+)\s+(\S+)\s*$/.exec(line);
    if (m) sha256.set(m[3], { sha256: m[1], size: Number(m[2]) });
  }
  const words = (f: string) => (st.get(f) ?? '').split(/\s+/).filter(Boolean);
  return {
    suite: st.get('suite') ?? '',
    codename: st.get('codename') ?? '',
    architectures: words('architectures'),
    components: words('components'),
    acquireByHash: (st.get('acquire-by-hash') ?? '').toLowerCase() === 'yes',
    sha256,
  };
}

export interface PackageInfo {
  name: string;
  version: string;
  architecture: string;
  /** Path of the .deb relative to the mirror's root, like pool/main/b/busybox/... */
  filename: string;
  size: number;
  sha256: string;
  depends: string;
}

/** Package name -> its entry (the highest version when a name appears more than once). */
export type PackageIndex = Map<string, PackageInfo>;

const PACKAGE_FIELDS = new Set([
  'package',
  'version',
  'architecture',
  'filename',
  'size',
  'sha256',
  'depends',
  'pre-depends',
]);

/** Which packages an index keeps (all by default); `seen` counts every stanza read. */
export interface IndexFilter {
  keep?: (name: string) => boolean;
  seen?: number;
}

export async function indexPackages(
  lines: AsyncIterable<string> | Iterable<string>,
  filter: IndexFilter = {},
): Promise<PackageIndex> {
  const index: PackageIndex = new Map();
  filter.seen = 0;
  for await (const st of readStanzas(lines, PACKAGE_FIELDS)) {
    filter.seen++;
    const name = st.get('package');
    const version = st.get('version');
    if (!name || !version || (filter.keep && !filter.keep(name))) continue;
    const prev = index.get(name);
    if (prev && compareVersions(prev.version, version) >= 0) continue;
    const deps = [st.get('pre-depends'), st.get('depends')].filter(Boolean).join(', ');
    index.set(name, {
      name,
      version,
      architecture: st.get('architecture') ?? '',
      filename: st.get('filename') ?? '',
      size: Number(st.get('size') ?? NaN),
      sha256: (st.get('sha256') ?? '').toLowerCase(),
      depends: deps,
    });
  }
  return index;
}

/** Index a Packages.gz file, streamed line by line. */
export async function indexPackagesGz(path: string, filter?: IndexFilter): Promise<PackageIndex> {
  const gunzip = createReadStream(path).pipe(createGunzip());
  const lines = createInterface({ input: gunzip, crlfDelay: Infinity });
  try {
    return await indexPackages(lines, filter);
  } finally {
    lines.close();
    gunzip.destroy();
  }
}

export interface Dependency {
  name: string;
  /** "=", ">=", "<<", ... and the version, when the dependency has a constraint. */
  relation?: string;
  version?: string;
}

/** "a (>= 1), b | c:any" -> [[a>=1], [b, c]]: all of the groups, any one in a group. */
export function parseDepends(text: string): Dependency[][] {
  return text
    .split(',')
    .map((group) =>
      group
        .split('|')
        .map((alt): Dependency | null => {
          const m =
            /^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*(<<|<=|=|>=|>>)\s*([^)\s]+)\s*\))?/.exec(
              alt,
            );
          return m ? { name: m[1], relation: m[2], version: m[3] } : null;
        })
        .filter((d): d is Dependency => d !== null),
    )
    .filter((g) => g.length > 0);
}

/** The package named `name`, or an error saying which index lacks it. */
export function requirePackage(index: PackageIndex, name: string, where: string): PackageInfo {
  const p = index.get(name);
  if (!p) throw new Error(`no package '${name}' in ${where}`);
  if (!p.filename || !/^[0-9a-f]{64}$/.test(p.sha256) || !Number.isSafeInteger(p.size)) {
    throw new Error(
      `package '${name}' ${p.version} in ${where} lacks a Filename, SHA256 or Size field`,
    );
  }
  return p;
}

const KERNEL_PREFIX = 'linux-image-';

/**
 * Follow a kernel metapackage (linux-image-686) through its Depends to the package that holds
 * the kernel (linux-image-6.1.0-NN-686). `kernelRelease` is the name's tail: 6.1.0-NN-686,
 * which is also the name of /boot/vmlinuz-RELEASE inside it.
 */
export function resolveKernel(
  index: PackageIndex,
  meta: string,
  where: string,
): { chain: PackageInfo[]; pkg: PackageInfo; kernelRelease: string } {
  const chain = [requirePackage(index, meta, where)];
  for (let depth = 0; depth < 4; depth++) {
    const cur = chain[chain.length - 1];
    const next = parseDepends(cur.depends)
      .flat()
      .find((d) => d.name.startsWith(KERNEL_PREFIX) && index.has(d.name));
    if (!next) break;
    const p = requirePackage(index, next.name, where);
    if (next.relation === '=' && next.version !== p.version) {
      throw new Error(
        `${cur.name} ${cur.version} depends on ${next.name} (= ${next.version}), but ${where} ` +
          `has ${next.name} ${p.version}`,
      );
    }
    chain.push(p);
  }
  if (chain.length === 1) {
    throw new Error(
      `${meta} ${chain[0].version} in ${where} depends on no linux-image-* package ` +
        `(Depends: ${chain[0].depends || 'none'})`,
    );
  }
  const pkg = chain[chain.length - 1];
  return { chain, pkg, kernelRelease: pkg.name.slice(KERNEL_PREFIX.length) };
}

/** dpkg's version order: epoch, then upstream version, then Debian revision. */
export function compareVersions(a: string, b: string): number {
  const va = splitVersion(a);
  const vb = splitVersion(b);
  return (
    Math.sign(va.epoch - vb.epoch) ||
    verrevcmp(va.upstream, vb.upstream) ||
    verrevcmp(va.revision, vb.revision)
  );
}

function splitVersion(v: string): { epoch: number; upstream: string; revision: string } {
  const colon = v.indexOf(':');
  const epoch = colon >= 0 ? Number(v.slice(0, colon)) || 0 : 0;
  const rest = colon >= 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf('-');
  return dash >= 0
    ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) }
    : { epoch, upstream: rest, revision: '' };
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';

// dpkg's character order for the non-digit parts: '~' sorts before everything, even the end.
function order(c: string | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

// A port of dpkg's verrevcmp().
function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const d = order(a[i]) - order(b[j]);
      if (d !== 0) return Math.sign(d);
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    let first = 0;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (first === 0) first = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (first !== 0) return Math.sign(first);
  }
  return 0;
}
