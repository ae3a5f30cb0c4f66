// The guest's initramfs: a gzip'd newc cpio with busybox, livemig's scripts, the directories
// they need and /dev/console (the kernel opens it as init's stdin/stdout/stderr before any
// devtmpfs exists). Deterministic: the same busybox and scripts give the same sha256.

import { gzipSync } from 'node:zlib';
import { writeCpio, type CpioEntry } from './cpio.js';
import { sha256 } from './files.js';
import { guestScripts } from './init-script.js';

export const INITRAMFS_DIRS: Record<string, number> = {
  '/bin': 0o755,
  '/dev': 0o755,
  '/etc': 0o755,
  '/proc': 0o555,
  '/root': 0o700,
  '/sbin': 0o755,
  '/sys': 0o555,
  '/tmp': 0o1777,
  '/usr': 0o755,
  '/usr/bin': 0o755,
  '/usr/sbin': 0o755,
};

export interface Initramfs {
  /** The gzip'd cpio. */
  data: Buffer;
  sha256: string;
  /** sha256 of the /init script inside. */
  initSha256: string;
  /** sha256 over every script livemig puts in (path, mode, text): changes when any does. */
  scriptsSha256: string;
}

/** sha256 of /init and of all of livemig's scripts, as recorded in the manifest. */
export function scriptHashes(scripts = guestScripts()): {
  initSha256: string;
  scriptsSha256: string;
} {
  const paths = Object.keys(scripts).sort();
  const all = paths
    .map((p) => `${p}\0${scripts[p].mode.toString(8)}\0${scripts[p].text}\0`)
    .join('');
  return { initSha256: sha256(scripts['/init']?.text ?? ''), scriptsSha256: sha256(all) };
}

export function buildInitramfs(busybox: Uint8Array, scripts = guestScripts()): Initramfs {
  checkI386Elf(busybox, 'busybox');
  if (!scripts['/init']) throw new Error('the initramfs scripts have no /init');
  const entries: CpioEntry[] = [
    ...Object.entries(INITRAMFS_DIRS).map(([path, mode]): CpioEntry => ({
      type: 'dir',
      path,
      mode,
    })),
    { type: 'char', path: '/dev/console', mode: 0o600, major: 5, minor: 1 },
    { type: 'file', path: '/bin/busybox', mode: 0o755, data: busybox },
    ...Object.entries(scripts).map(([path, s]): CpioEntry => ({
      type: 'file',
      path,
      mode: s.mode,
      data: Buffer.from(s.text),
    })),
  ];
  // gzip's header holds an mtime; Node writes 0 there, so the output depends on the input only.
  const data = gzipSync(writeCpio(entries), { level: 9 });
  return { data, sha256: sha256(data), ...scriptHashes(scripts) };
}

/** Throws unless `bin` is a 32-bit x86 ELF executable (what the i386 guest can run). */
export function checkI386Elf(bin: Uint8Array, what: string): void {
  const b = Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength);
  if (b.length < 20 || b.toString('latin1', 0, 4) !== '\x7fELF') {
    throw new Error(`${what} is not an ELF executable (${b.length} bytes)`);
  }
  const cls = b[4];
  const machine = b.readUInt16LE(18);
  if (cls !== 1 || machine !== 3) {
    throw new Error(
      `${what} is an ELF for machine ${machine} (${cls === 2 ? '64' : '32'}-bit), ` +
        `expected 32-bit x86 (EM_386 = 3) for the i386 guest`,
    );
  }
}

/** Throws unless `kernel` looks like an x86 bzImage (the "HdrS" boot-protocol signature). */
export function checkBzImage(kernel: Uint8Array, what: string): void {
  const b = Buffer.from(kernel.buffer, kernel.byteOffset, kernel.byteLength);
  if (b.length < 0x206 || b.toString('latin1', 0x202, 0x206) !== 'HdrS') {
    throw new Error(`${what} is not an x86 Linux kernel image (no "HdrS" at offset 0x202)`);
  }
}
