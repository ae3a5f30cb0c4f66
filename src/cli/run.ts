// `livemig run`: host a guest, like a QEMU process with -m, -S, -incoming, -qmp and -monitor.

import { Vm } from '../machine/vm.js';
import { parseSize } from '../util/size.js';
import { parseWorkload } from '../ram/vcpu-control.js';
import { startQmpServer, type QmpServer } from '../control/qmp-server.js';
import { startHmp } from '../control/hmp.js';

export interface RunOptions {
  ram: string;
  ramBlockSize?: string;
  normalPageRatio: string;
  workload: string;
  S?: boolean;
  memPrealloc?: boolean;
  incoming?: string;
  qmp?: string[];
  monitor?: string;
}

export function parseRatio(text: string): number {
  const r = Number(text);
  if (!/^\d*\.?\d+$/.test(text.trim()) || !(r >= 0 && r <= 1)) {
    throw new Error(`invalid --normal-page-ratio '${text}': expected a number from 0 to 1`);
  }
  return r;
}

export async function runCommand(o: RunOptions): Promise<void> {
  const ramBytes = parseSize(o.ram, 'M');
  if (ramBytes % 4096 !== 0)
    throw new Error(`invalid --ram '${o.ram}': must be a multiple of 4 KiB`);
  if (o.incoming !== undefined && o.incoming !== 'defer' && !o.incoming.startsWith('tcp:')) {
    throw new Error(`invalid --incoming '${o.incoming}': expected tcp:HOST:PORT or defer`);
  }
  if (o.monitor !== undefined && o.monitor !== 'stdio' && o.monitor !== 'none') {
    throw new Error(`invalid --monitor '${o.monitor}': expected stdio or none`);
  }
  const log = (m: string): void => void process.stderr.write(`livemig: ${m}\n`);
  const machine = new Vm({
    ramBytes,
    blockSize: o.ramBlockSize ? parseSize(o.ramBlockSize) : undefined,
    workload: parseWorkload(o.workload, ramBytes),
    normalPageRatio: parseRatio(o.normalPageRatio),
    memPrealloc: o.memPrealloc === true,
    startPaused: o.S === true,
    incoming: o.incoming,
    log,
  });
  const port = await machine.init();
  if (port !== undefined) log(`waiting for an incoming migration on port ${port}`);

  const servers: QmpServer[] = [];
  for (const addr of o.qmp ?? []) servers.push(await startQmpServer(machine, addr));
  const keepAlive = setInterval(() => {}, 1 << 30);
  let quitting = false;
  const quit = async (code = 0): Promise<void> => {
    if (quitting) return;
    quitting = true;
    clearInterval(keepAlive);
    await Promise.all(servers.map((s) => s.close()));
    await machine.shutdown();
    process.exit(code);
  };
  machine.on('quit', () => void quit());
  process.on('SIGINT', () => void quit(130));
  process.on('SIGTERM', () => void quit(143));
  if (o.monitor === 'stdio') {
    const session = startHmp(machine, process.stdin, process.stdout);
    void session.finished.then(() => quit());
  }
}
