// Files out of a .deb without dpkg: the ar container, its data.tar.{xz,gz} decompressed as a
// stream and read with tar-stream. Only the wanted paths are written, and decompression stops
// as soon as all of them are out (the kernel is near the start of a ~190 MB tar).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import xz from 'xz-decompress';
import { readArMembers, type ArMember } from './ar.js';

const { XzReadableStream } = xz;

export interface ExtractedFile {
  /** The path inside the package, like boot/vmlinuz-6.1.0-50-686 */
  path: string;
  dest: string;
  size: number;
  sha256: string;
  mode: number;
}

/** Paths inside a package are compared without "./" or "/" in front. */
export function packagePath(p: string): string {
  return p.replace(/^(\.\/|\/)+/, '');
}

/**
 * Extract `wanted` (path inside the package -> destination file) from the .deb `debPath`.
 * `label` names the package in errors. Throws when a wanted path is missing or not a file.
 */
export async function extractFromDeb(
  debPath: string,
  label: string,
  wanted: Record<string, string>,
): Promise<ExtractedFile[]> {
  const members = await readArMembers(debPath);
  await checkDebianBinary(debPath, label, members);
  const data = members.find((m) => m.name.startsWith('data.tar'));
  if (!data) {
    throw new Error(
      `${label}: ${debPath} has no data.tar member (members: ${members.map((m) => m.name).join(', ')})`,
    );
  }
  const raw = createReadStream(debPath, { start: data.offset, end: data.offset + data.size - 1 });
  let tarStream: Readable;
  try {
    tarStream = decompress(raw, data.name, label);
  } catch (e) {
    raw.destroy();
    throw e;
  }
  const left = new Map(Object.entries(wanted).map(([p, dest]) => [packagePath(p), dest]));
  const out: ExtractedFile[] = [];
  const extract = tar.extract();
  tarStream.on('error', (e) => extract.destroy(e));
  tarStream.pipe(extract);
  try {
    for await (const entry of extract) {
      const path = packagePath(entry.header.name);
      const dest = left.get(path);
      if (dest === undefined) {
        entry.resume();
        continue;
      }
      if (entry.header.type !== 'file') {
        throw new Error(
          `${label}: ./${path} in ${data.name} is a ${entry.header.type ?? 'special entry'}, ` +
            `not a regular file`,
        );
      }
      out.push({
        path,
        dest,
        mode: entry.header.mode ?? 0o644,
        ...(await writeEntry(entry, dest)),
      });
      left.delete(path);
      if (left.size === 0) break; // the rest of the archive is never decompressed
    }
  } catch (e) {
    const why = data.name.endsWith('.xz') ? xzErrorText(e as Error) : (e as Error).message;
    throw new Error(`${label}: cannot read ${data.name} of ${debPath}: ${why}`);
  } finally {
    tarStream.unpipe(extract);
    tarStream.destroy();
    raw.destroy();
  }
  if (left.size > 0) {
    throw new Error(
      `${label}: ${data.name} has no ${[...left.keys()].map((p) => `./${p}`).join(', ')}`,
    );
  }
  return out;
}

async function checkDebianBinary(debPath: string, label: string, members: ArMember[]) {
  const first = members[0];
  if (!first || first.name !== 'debian-binary') {
    throw new Error(
      `${label}: ${debPath} is an ar archive but not a .deb: its first member is ` +
        `'${first?.name ?? 'none'}', expected 'debian-binary'`,
    );
  }
  const fh = await open(debPath, 'r');
  try {
    const buf = Buffer.alloc(Math.min(first.size, 16));
    await fh.read(buf, 0, buf.length, first.offset);
    if (!/^2\.\d+\n/.test(buf.toString('latin1'))) {
      throw new Error(
        `${label}: ${debPath} has .deb format ${JSON.stringify(buf.toString('latin1'))}, ` +
          `expected 2.x`,
      );
    }
  } finally {
    await fh.close();
  }
}

function decompress(raw: Readable, member: string, label: string): Readable {
  if (member === 'data.tar') return raw;
  if (member === 'data.tar.gz') return raw.pipe(createGunzip()).on('close', () => raw.destroy());
  if (member === 'data.tar.xz') {
    const web = Readable.toWeb(raw) as unknown as ReadableStream<Uint8Array>;
    return Readable.fromWeb(new XzReadableStream(web) as unknown as WebReadableStream<Uint8Array>);
  }
  throw new Error(
    `${label}: its files are in ${member}, a compression livemig cannot read; ` +
      `it reads data.tar.xz, data.tar.gz and data.tar`,
  );
}

// xz-decompress reports xz-embedded's return codes by number, and input that ends early as a
// TypeError from inside its pull(); say what they mean.
const XZ_CODES: Record<string, string> = {
  '2': 'unsupported integrity check',
  '3': 'out of memory',
  '4': 'memory limit reached',
  '5': 'not xz data (format error)',
  '6': 'unsupported xz options',
  '7': 'corrupt xz data',
  '8': 'the xz data ends early (truncated)',
};

function xzErrorText(e: Error): string {
  const code = /get_next_output failed with error code (\d+)/.exec(e.message)?.[1];
  if (code) return `${XZ_CODES[code] ?? 'xz error'} (xz-embedded code ${code})`;
  if (e instanceof TypeError && /null/.test(e.message)) return 'the xz data ends early (truncated)';
  return e.message;
}

async function writeEntry(
  entry: AsyncIterable<unknown>,
  dest: string,
): Promise<{ size: number; sha256: string }> {
  const fh = await open(dest, 'w', 0o644);
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const c of entry) {
      const chunk = c as Buffer;
      await fh.write(chunk);
      hash.update(chunk);
      size += chunk.byteLength;
    }
  } finally {
    await fh.close();
  }
  return { size, sha256: hash.digest('hex') };
}
