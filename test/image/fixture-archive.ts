// A Debian archive built inside the tests: .deb files (ar + data.tar.gz made with tar-stream
// and zlib), a Packages.gz listing them, a Release with its SHA256, all served by a local HTTP
// server on 127.0.0.1 that counts the requests it gets.

import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

export interface TarFile {
  name: string;
  data?: Buffer;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
  mode?: number;
}

export async function makeTar(files: TarFile[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const f of files) {
    const type = f.type ?? 'file';
    if (type === 'file') {
      pack.entry({ name: f.name, mode: f.mode ?? 0o644, size: f.data!.length }, f.data!);
    } else {
      pack.entry({ name: f.name, type, linkname: f.linkname, mode: f.mode ?? 0o755 });
    }
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function makeAr(members: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [Buffer.from('!<arch>\n')];
  for (const m of members) {
    const h =
      m.name.padEnd(16) +
      '0'.padEnd(12) +
      '0'.padEnd(6) +
      '0'.padEnd(6) +
      '100644'.padEnd(8) +
      String(m.data.length).padEnd(10) +
      '`\n';
    parts.push(Buffer.from(h, 'latin1'), m.data);
    if (m.data.length % 2) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** A .deb whose data.tar.gz holds `files` (data member name and bytes can be overridden). */
export async function makeDeb(
  files: TarFile[],
  data?: { name: string; bytes: Buffer },
): Promise<Buffer> {
  const control = gzipSync(
    await makeTar([{ name: './control', data: Buffer.from('Package: x\n') }]),
  );
  return makeAr([
    { name: 'debian-binary', data: Buffer.from('2.0\n') },
    { name: 'control.tar.gz', data: control },
    data
      ? { name: data.name, data: data.bytes }
      : { name: 'data.tar.gz', data: gzipSync(await makeTar(files)) },
  ]);
}

/** Bytes that pass the kernel check: an x86 boot sector with the "HdrS" signature. */
export function fakeKernel(tag = 'kernel'): Buffer {
  const b = Buffer.concat([Buffer.alloc(0x300), Buffer.from(`fake vmlinuz ${tag}\n`)]);
  b.write('HdrS', 0x202, 'latin1');
  return b;
}

/** Bytes that pass the busybox check: an ELF header for 32-bit x86. */
export function fakeBusybox(tag = 'busybox'): Buffer {
  const b = Buffer.concat([Buffer.alloc(52), Buffer.from(`fake busybox ${tag}\n`)]);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 1; // 32-bit
  b.writeUInt16LE(3, 18); // EM_386
  return b;
}

export interface FixturePackage {
  name: string;
  version: string;
  architecture?: string;
  depends?: string;
  deb: Buffer;
  /** Put this SHA256 in the index instead of the .deb's own. */
  indexSha256?: string;
}

export interface Fixture {
  kernel: Buffer;
  busybox: Buffer;
  bios: Buffer;
  vgaBios: Buffer;
  packages: FixturePackage[];
}

export async function standardFixture(): Promise<Fixture> {
  const kernel = fakeKernel('6.1.0-50');
  const busybox = fakeBusybox();
  const bios = Buffer.concat([Buffer.from('fake seabios '), randomBytes(64)]);
  const vgaBios = Buffer.concat([Buffer.from('fake vgabios '), randomBytes(64)]);
  const kdeb = await makeDeb([
    { name: './', type: 'directory' },
    { name: './boot/', type: 'directory' },
    { name: './boot/System.map-6.1.0-50-686', data: Buffer.from('map\n') },
    { name: './boot/vmlinuz-6.1.0-50-686', data: kernel },
    { name: './lib/modules/6.1.0-50-686/modules.order', data: Buffer.from('x\n') },
  ]);
  return {
    kernel,
    busybox,
    bios,
    vgaBios,
    packages: [
      {
        name: 'linux-image-686',
        version: '6.1.176-1',
        depends: 'linux-image-6.1.0-50-686 (= 6.1.176-1)',
        deb: await makeDeb([
          { name: './usr/share/doc/linux-image-686/README', data: Buffer.from('meta') },
        ]),
      },
      // An older kernel: picked only if the resolution went by name instead of Depends.
      {
        name: 'linux-image-6.1.0-49-686',
        version: '6.1.170-1',
        deb: await makeDeb([{ name: './boot/vmlinuz-6.1.0-49-686', data: fakeKernel('49') }]),
      },
      {
        name: 'linux-image-6.1.0-50-686',
        version: '6.1.176-1',
        depends:
          'kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool',
        deb: kdeb,
      },
      {
        name: 'busybox-static',
        version: '1:1.35.0-4+deb12u1',
        depends: '',
        deb: await makeDeb([
          { name: './bin/', type: 'directory' },
          { name: './bin/busybox', data: busybox, mode: 0o755 },
          { name: './usr/share/doc/busybox-static/copyright', data: Buffer.from('GPL') },
        ]),
      },
      {
        name: 'seabios',
        version: '1.16.2-1',
        architecture: 'all',
        deb: await makeDeb([
          { name: './usr/share/seabios/bios-256k.bin', data: Buffer.from('256k') },
          { name: './usr/share/seabios/bios.bin', data: bios },
          { name: './usr/share/seabios/vgabios-stdvga.bin', data: vgaBios },
        ]),
      },
    ],
  };
}

export function poolPath(p: FixturePackage): string {
  const ver = p.version.replace(/^\d+:/, '');
  return `pool/main/${p.name[0]}/${p.name}/${p.name}_${ver}_${p.architecture ?? 'i386'}.deb`;
}

export function packagesText(pkgs: FixturePackage[]): string {
  return pkgs
    .map((p) =>
      [
        `Package: ${p.name}`,
        `Version: ${p.version}`,
        `Architecture: ${p.architecture ?? 'i386'}`,
        ...(p.depends ? [`Depends: ${p.depends}`] : []),
        `Description: ${p.name} for the livemig tests`,
        ' a continuation line of the description',
        `Filename: ${poolPath(p)}`,
        `Size: ${p.deb.length}`,
        `SHA256: ${p.indexSha256 ?? sha256(p.deb)}`,
      ].join('\n'),
    )
    .join('\n\n')
    .concat('\n');
}

export function releaseText(files: Record<string, Buffer>, suite = 'bookworm'): string {
  return [
    'Origin: Debian',
    'Suite: oldstable',
    `Codename: ${suite}`,
    'Architectures: all amd64 i386',
    'Components: main',
    'SHA256:',
    ...Object.entries(files).map(([p, b]) => ` ${sha256(b)} ${String(b.length).padStart(8)} ${p}`),
    '',
  ].join('\n');
}

/** URL path (without the leading /) -> body. */
export function archiveFiles(pkgs: FixturePackage[], suite = 'bookworm'): Map<string, Buffer> {
  const packagesGz = gzipSync(Buffer.from(packagesText(pkgs)));
  const files = new Map<string, Buffer>();
  files.set(`dists/${suite}/main/binary-i386/Packages.gz`, packagesGz);
  files.set(
    `dists/${suite}/Release`,
    Buffer.from(releaseText({ 'main/binary-i386/Packages.gz': packagesGz }, suite)),
  );
  for (const p of pkgs) files.set(poolPath(p), p.deb);
  return files;
}

/** The HTTP server of a fixture archive; `requests` lists every path asked for. */
export class FixtureServer {
  readonly requests: string[] = [];
  /** path -> status to answer instead of the file (500, 404, or 0: never answer) */
  readonly overrides = new Map<string, number>();
  private server: Server;

  constructor(readonly files: Map<string, Buffer>) {
    this.server = createServer((req, res) => {
      const path = decodeURIComponent((req.url ?? '/').replace(/^\/+/, '').split('?')[0]);
      this.requests.push(path);
      const status = this.overrides.get(path);
      if (status === 0) return; // hang: the client's timeout must end it
      const body = this.files.get(path);
      if (status !== undefined || !body) {
        res.writeHead(status ?? 404, { 'content-type': 'text/plain' });
        res.end('no\n');
        return;
      }
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
  }

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }
}

/** A URL of a port nothing listens on (bound, then closed). */
export async function closedPortUrl(): Promise<string> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  s.close();
  await once(s, 'close');
  return `http://127.0.0.1:${port}`;
}

/** HTTP settings for tests: few attempts, short waits. */
export const testHttp = { attempts: 2, retryDelayMs: 10, timeoutMs: 3000 };
