// `livemig run`: host a guest, like a QEMU process with -M, -m, -S, -kernel, -serial, -incoming,
// -qmp and -monitor.

import { Vm, type PcOptions } from '../machine/vm.js';
import { MACHINE_TYPES, type MachineType } from '../machine/guest-machine.js';
import { parseSize } from '../util/size.js';
import { checked, ratio } from './options.js';
import { parseWorkload } from '../ram/vcpu-control.js';
import { startQmpServer, type QmpServer } from '../control/qmp-server.js';
import { startHmp } from '../control/hmp.js';
import { openChardev, parseChardevSpec, type Chardev } from '../chardev/index.js';
import {
  checkPcRam,
  resolveBoot,
  resolveFirmware,
  type PcFlags,
} from '../machine/pc/pc-options.js';
import { pcDefaults } from '../machine/pc/pc-defaults.js';

export interface RunOptions extends PcFlags {
  machine: string;
  ram: string;
  ramBlockSize?: string;
  normalPageRatio: string;
  workload: string;
  S?: boolean;
  memPrealloc?: boolean;
  /** false with --no-warm-up */
  warmUp?: boolean;
  incoming?: string;
  qmp?: string[];
  monitor?: string;
  serial?: string;
}

export function parseRatio(text: string): number {
  return checked('--normal-page-ratio', ratio, text);
}

export function parseMachine(text: string): MachineType {
  if (!(MACHINE_TYPES as readonly string[]).includes(text)) {
    throw new Error(`invalid --machine '${text}': expected ${MACHINE_TYPES.join(' or ')}`);
  }
  return text as MachineType;
}

/** The flags that only one machine type has, refused on the other with a clear message. */
function checkMachineFlags(machine: MachineType, o: RunOptions): void {
  if (machine === 'pc') {
    if (o.workload !== 'none') {
      throw new Error(
        `--workload '${o.workload}' is for --machine synthetic; a PC runs what its kernel ` +
          'command line names (--append livemig.workload=cp:16M)',
      );
    }
    if (o.normalPageRatio !== '0') {
      throw new Error('--normal-page-ratio is for --machine synthetic; a PC fills its own RAM');
    }
    if (o.ramBlockSize) throw new Error('--ram-block-size is for --machine synthetic');
    return;
  }
  for (const [flag, value] of [
    ['--kernel', o.kernel],
    ['--initrd', o.initrd],
    ['--append', o.append],
    ['--bios', o.bios],
    ['--serial', o.serial],
  ] as const) {
    if (value !== undefined) throw new Error(`${flag} is for --machine pc`);
  }
}

/** The PC's console: --serial, else stdio (none when the HMP monitor has stdio). */
async function openSerial(o: RunOptions, log: (m: string) => void): Promise<Chardev> {
  const text = o.serial ?? (o.monitor === 'stdio' ? 'none' : 'stdio');
  const spec = parseChardevSpec(text);
  if (spec.backend === 'stdio' && o.monitor === 'stdio') {
    throw new Error(
      '--serial stdio and --monitor stdio both want the terminal: give the console a socket ' +
        '(--serial unix:PATH,server=on,wait=off) or the monitor none',
    );
  }
  const chardev = await openChardev(spec);
  if (spec.backend === 'socket') {
    if (spec.server && spec.wait) {
      log(`waiting for a client on the serial console ${chardev.address} (wait=on)`);
    } else {
      log(`serial console on ${chardev.address}`);
    }
  }
  await chardev.ready();
  return chardev;
}

export async function runCommand(o: RunOptions): Promise<void> {
  const machine = parseMachine(o.machine);
  const ramBytes = parseSize(o.ram, 'M');
  if (ramBytes % 4096 !== 0)
    throw new Error(`invalid --ram '${o.ram}': must be a multiple of 4 KiB`);
  if (o.incoming !== undefined && o.incoming !== 'defer' && !o.incoming.startsWith('tcp:')) {
    throw new Error(`invalid --incoming '${o.incoming}': expected tcp:HOST:PORT or defer`);
  }
  if (o.monitor !== undefined && o.monitor !== 'stdio' && o.monitor !== 'none') {
    throw new Error(`invalid --monitor '${o.monitor}': expected stdio or none`);
  }
  checkMachineFlags(machine, o);
  const log = (m: string): void => void process.stderr.write(`livemig: ${m}\n`);

  let pc: PcOptions | undefined;
  let serial: Chardev | null = null;
  if (machine === 'pc') {
    checkPcRam(ramBytes);
    const defaults = pcDefaults();
    const firmware = resolveFirmware(o, defaults);
    // A destination's RAM and state arrive by migration: it boots nothing.
    const boot = o.incoming === undefined ? resolveBoot(o, defaults) : null;
    serial = await openSerial(o, log);
    pc = { firmware, boot, serial };
  }

  const vm = new Vm({
    machine,
    pc,
    ramBytes,
    blockSize: o.ramBlockSize ? parseSize(o.ramBlockSize) : undefined,
    workload: parseWorkload(o.workload, ramBytes),
    normalPageRatio: parseRatio(o.normalPageRatio),
    memPrealloc: o.memPrealloc === true,
    warmUp: o.warmUp !== false,
    startPaused: o.S === true,
    incoming: o.incoming,
    log,
  });
  const port = await vm.init();
  if (port !== undefined) log(`waiting for an incoming migration on port ${port}`);

  const servers: QmpServer[] = [];
  for (const addr of o.qmp ?? []) servers.push(await startQmpServer(vm, addr));
  const keepAlive = setInterval(() => {}, 1 << 30);
  let quitting = false;
  const quit = async (code = 0): Promise<void> => {
    if (quitting) return;
    quitting = true;
    clearInterval(keepAlive);
    await Promise.all(servers.map((s) => s.close()));
    await vm.shutdown();
    await serial?.close();
    process.exit(code);
  };
  vm.on('quit', () => void quit());
  process.on('SIGINT', () => void quit(130));
  process.on('SIGTERM', () => void quit(143));
  if (o.monitor === 'stdio') {
    const session = startHmp(vm, process.stdin, process.stdout);
    void session.finished.then(() => quit());
  }
}
