// A writer for cpio archives in the "newc" format, the one the Linux kernel unpacks as an
// initramfs: per entry a 110-byte ASCII header ("070701" and 13 fields of 8 hex digits), the
// NUL-terminated name padded to 4 bytes, the data padded to 4 bytes; "TRAILER!!!" ends it.
// Output is deterministic: entries sorted by path, inode numbers by position, mtime, uid and
// gid 0, so the same inputs always give the same bytes.

export type CpioEntry =
  | { type: 'dir'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; data: Uint8Array }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; mode: number; major: number; minor: number };

export const NEWC_MAGIC = '070701';
export const CPIO_TRAILER = 'TRAILER!!!';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/** Names are stored without a leading "/" (relative to the root the kernel unpacks into). */
function cpioName(path: string): string {
  const name = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (name === '' || name.split('/').some((c) => c === '' || c === '.' || c === '..')) {
    throw new Error(`invalid cpio path '${path}': expected an absolute path like /bin/busybox`);
  }
  return name;
}

export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const named = entries.map((e) => ({ e, name: cpioName(e.path) }));
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < named.length; i++) {
    if (named[i].name === named[i - 1].name) {
      throw new Error(`cpio path '/${named[i].name}' appears twice`);
    }
  }
  const parts: Buffer[] = [];
  named.forEach(({ e, name }, i) => {
    const perm = e.type === 'symlink' ? 0o777 : e.mode;
    if (!Number.isInteger(perm) || perm < 0 || perm > 0o7777) {
      throw new Error(`invalid mode ${perm} for '/${name}': expected permission bits 0..0o7777`);
    }
    const data =
      e.type === 'file'
        ? Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength)
        : e.type === 'symlink'
          ? Buffer.from(e.target)
          : Buffer.alloc(0);
    const kind = { dir: S_IFDIR, file: S_IFREG, symlink: S_IFLNK, char: S_IFCHR }[e.type];
    const dev = e.type === 'char' ? [e.major, e.minor] : [0, 0];
    parts.push(
      header(name, {
        ino: i + 1,
        mode: kind | perm,
        nlink: e.type === 'dir' ? 2 : 1,
        size: data.length,
        rdev: dev,
      }),
      data,
      pad(data.length),
    );
  });
  parts.push(header(CPIO_TRAILER, { ino: 0, mode: 0, nlink: 1, size: 0, rdev: [0, 0] }));
  return Buffer.concat(parts);
}

function header(
  name: string,
  f: { ino: number; mode: number; nlink: number; size: number; rdev: number[] },
): Buffer {
  const fields = [
    f.ino,
    f.mode,
    0, // uid
    0, // gid
    f.nlink,
    0, // mtime
    f.size,
    0, // devmajor
    0, // devminor
    f.rdev[0],
    f.rdev[1],
    Buffer.byteLength(name) + 1, // namesize, with the NUL
    0, // check (only for the "070702" crc format)
  ];
  for (const v of fields) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new Error(`cpio field value ${v} for '${name}' does not fit 8 hex digits`);
    }
  }
  const text = NEWC_MAGIC + fields.map((v) => v.toString(16).padStart(8, '0')).join('');
  const head = Buffer.from(text + name + '\0');
  // The header (110 bytes) and the name together are padded to a multiple of 4.
  return Buffer.concat([head, pad(head.length)]);
}

function pad(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}
