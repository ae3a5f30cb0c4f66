// A small reader for newc cpio archives, to check what src/image/cpio.ts writes (independent of
// it: parses the format from its description, checking magic, padding and the trailer).

export interface NewcEntry {
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  rdevmajor: number;
  rdevminor: number;
  data: Buffer;
}

export function readNewc(buf: Buffer): { entries: NewcEntry[]; trailerEnd: number } {
  const entries: NewcEntry[] = [];
  let pos = 0;
  const align = (n: number) => (n + 3) & ~3;
  while (true) {
    if (pos % 4 !== 0) throw new Error(`entry at ${pos} is not 4-byte aligned`);
    const magic = buf.toString('latin1', pos, pos + 6);
    if (magic !== '070701') throw new Error(`bad magic ${JSON.stringify(magic)} at ${pos}`);
    const f: number[] = [];
    for (let i = 0; i < 13; i++) {
      const hex = buf.toString('latin1', pos + 6 + i * 8, pos + 14 + i * 8);
      if (!/^[0-9a-f]{8}$/.test(hex)) throw new Error(`field ${i} '${hex}' is not 8 hex digits`);
      f.push(parseInt(hex, 16));
    }
    const [ino, mode, uid, gid, nlink, mtime, size, , , rdevmajor, rdevminor, namesize] = f;
    const nameStart = pos + 110;
    const name = buf.toString('utf8', nameStart, nameStart + namesize - 1);
    if (buf[nameStart + namesize - 1] !== 0)
      throw new Error(`name of '${name}' not NUL-terminated`);
    const dataStart = align(nameStart + namesize);
    for (let i = nameStart + namesize; i < dataStart; i++) {
      if (buf[i] !== 0) throw new Error(`non-zero name padding after '${name}'`);
    }
    if (name === 'TRAILER!!!') return { entries, trailerEnd: dataStart };
    const data = buf.subarray(dataStart, dataStart + size);
    if (data.length !== size) throw new Error(`'${name}' truncated`);
    entries.push({ name, ino, mode, uid, gid, nlink, mtime, rdevmajor, rdevminor, data });
    pos = align(dataStart + size);
  }
}
