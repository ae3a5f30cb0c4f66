// A reader for `ar` archives, the container of a .deb: the magic "!<arch>\n", then members,
// each a 60-byte header (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n") followed by
// its data, padded to an even offset. Every header is checked, and every member must lie
// inside the file, so a truncated or foreign file fails here with a clear message.

import { open } from 'node:fs/promises';

export const AR_MAGIC = '!<arch>\n';
const HEADER = 60;

export interface ArMember {
  name: string;
  /** Where the member's data starts in the file. */
  offset: number;
  size: number;
}

/** The members of the ar archive `path`, in order. */
export async function readArMembers(path: string): Promise<ArMember[]> {
  const fh = await open(path, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    const read = async (pos: number, len: number): Promise<Buffer> => {
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, pos);
      return buf.subarray(0, bytesRead);
    };
    return await parseAr(path, fileSize, read);
  } finally {
    await fh.close();
  }
}

async function parseAr(
  path: string,
  fileSize: number,
  read: (pos: number, len: number) => Promise<Buffer>,
): Promise<ArMember[]> {
  const magic = (await read(0, AR_MAGIC.length)).toString('latin1');
  if (magic !== AR_MAGIC) {
    throw new Error(
      `${path} is not an ar archive (a .deb): it starts with ${JSON.stringify(magic)}, ` +
        `expected ${JSON.stringify(AR_MAGIC)}`,
    );
  }
  const members: ArMember[] = [];
  let pos = AR_MAGIC.length;
  while (pos < fileSize) {
    if (fileSize - pos < HEADER) {
      throw new Error(
        `${path} is truncated: a member header at offset ${pos} needs ${HEADER} bytes, ` +
          `${fileSize - pos} remain`,
      );
    }
    const h = await read(pos, HEADER);
    const at = `${path}: the member header at offset ${pos}`;
    if (h[58] !== 0x60 || h[59] !== 0x0a) {
      throw new Error(`${at} does not end with "\`\\n" (not an ar header, or a corrupt file)`);
    }
    const field = (start: number, len: number) =>
      h.toString('latin1', start, start + len).trimEnd();
    const name = field(0, 16).replace(/\/$/, '');
    if (name === '' || [...name].some((c) => c.charCodeAt(0) < 0x20)) {
      throw new Error(`${at} has an invalid member name ${JSON.stringify(field(0, 16))}`);
    }
    for (const [what, start, len, re] of [
      ['mtime', 16, 12, /^\d*$/],
      ['uid', 28, 6, /^\d*$/],
      ['gid', 34, 6, /^\d*$/],
      ['mode', 40, 8, /^[0-7]*$/],
      ['size', 48, 10, /^\d+$/],
    ] as const) {
      if (!re.test(field(start, len))) {
        throw new Error(
          `${at} (member '${name}') has an invalid ${what} field ` +
            `${JSON.stringify(h.toString('latin1', start, start + len))}`,
        );
      }
    }
    const size = Number(field(48, 10));
    const offset = pos + HEADER;
    if (size > fileSize - offset) {
      throw new Error(
        `${path}: member '${name}' at offset ${pos} says it has ${size} bytes, but only ` +
          `${fileSize - offset} remain in the file (truncated or corrupt)`,
      );
    }
    members.push({ name, offset, size });
    pos = offset + size + (size & 1);
  }
  return members;
}
