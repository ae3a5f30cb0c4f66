// The `livemig` command line (main.ts loads it). One file per subcommand; this one only wires
// them up.

import { Command, Option } from 'commander';
import { LIVEMIG_VERSION } from '../control/version.js';
import { DEFAULT_MIRROR, DEFAULT_SUITE } from '../image/archive.js';
import type { ImageCliOptions } from './image.js';
import { DEFAULT_ACCEL_PATH } from '../accel/accel-path.js';

// A subcommand's modules load when it runs: main.ts compiles every function of every module
// it loads (--no-lazy), and `livemig run` has no use for the bench's or the image's.

const program = new Command();
program
  .name('livemig')
  .description('Live migration of a running guest over multifd TCP channels, QEMU-style')
  .version(LIVEMIG_VERSION);

program
  .command('run')
  .description('host a guest (source), or wait for one (destination with --incoming)')
  .option(
    '-M, --machine <type>',
    'machine type: synthetic (RAM and a workload) or pc (an x86 PC booting Linux, in v86)',
    'synthetic',
  )
  .requiredOption(
    '-m, --ram <size>',
    'guest RAM, with K/M/G suffix like QEMU -m (bare number = MiB)',
  )
  .option('--kernel <file>', 'pc: the Linux kernel (bzImage) to boot (default: the fetched image)')
  .option('--initrd <file>', 'pc: the initramfs (default: the fetched image)')
  .option('--append <cmdline>', 'pc: the kernel command line (default: the console on ttyS0)')
  .option('--bios <file>', "pc: SeaBIOS's bios.bin (default: the system's, else the image's)")
  .option(
    '--serial <spec>',
    'pc: the console on ttyS0: stdio, none, unix:PATH,server=on,wait=off or tcp:HOST:PORT,server=on,wait=off',
  )
  .option(
    '--normal-page-ratio <r>',
    'synthetic: fraction of pages filled with random bytes (0..1)',
    '0',
  )
  .option('--workload <w>', 'synthetic: vCPU workload: none, stress or stress:MBPS', 'none')
  .option('-S', 'start with the vCPU stopped')
  .option('--mem-prealloc', 'touch every page at start so RAM is really allocated')
  .option(
    '--no-warm-up',
    "do not run the migration threads' hot code ahead (saves ~1-3 s of CPU at start; the first migration compiles it instead)",
  )
  .option('--incoming <uri>', 'wait for an incoming migration: tcp:HOST:PORT or defer')
  .option('--qmp <addr...>', 'QMP server: unix:PATH or tcp:HOST:PORT')
  .option('--monitor <kind>', 'HMP monitor: stdio or none')
  .addOption(
    new Option('--ram-block-size <size>', 'largest RAM block (default 4G, at most 16G)').hideHelp(),
  )
  .action(async (o) => (await import('./run.js')).runCommand(o));

program
  .command('demo')
  .description(
    'live-migrate a running guest between two local processes: a 1 GiB synthetic guest, or ' +
      'with --machine pc a PC booting Linux',
  )
  .option('-M, --machine <type>', 'synthetic, or pc (an x86 PC booting Linux, in v86)', 'synthetic')
  .option('-m, --ram <size>', 'guest RAM (default: 1G, 256M for a pc)')
  .option('--channels <n>', 'multifd channels', '2')
  .option('--zero-page-detection <mode>', 'none, legacy or multifd', 'multifd')
  .option('--normal-page-ratio <r>', 'fraction of normal pages', '0.5')
  .option('--workload <w>', 'source workload', 'stress')
  .option('--json', 'print the final query-migrate result as one JSON object')
  .action(async (o) => {
    process.exitCode = await (await import('./demo.js')).demoCommand(o);
  });

const accel = program
  .command('accel')
  .description('DSA work queues: the emulated device and real idxd hardware');
accel
  .command('list')
  .description('devices, groups, engines and work queues with their state, like accel-config list')
  .option('--json', 'machine-readable output')
  .option('--config <file>', 'emulated-device configuration (accel-config JSON) to show')
  .action(async (o: { json?: boolean; config?: string }) => {
    const { accelList } = await import('./accel.js');
    process.stdout.write((await accelList({ json: o.json, emuConfig: o.config })) + '\n');
  });
accel
  .command('check <config>')
  .description('validate an emulated-device configuration (accel-config JSON)')
  .action(async (file: string) => {
    const { accelCheck, formatAccelCheck } = await import('./accel.js');
    const r = await accelCheck(file);
    process.stdout.write(formatAccelCheck(file, r) + '\n');
    process.exitCode = r.ok ? 0 : 1;
  });
accel
  .command('selftest <target>')
  .description(
    'submit test descriptors to a work queue (dsa:/dev/dsa/wqX.Y or dsa-emu:DEVICE/WQ), check every result against the CPU, report latency, throughput and what is misconfigured',
  )
  .option('--config <file>', 'emulated-device configuration (accel-config JSON) for dsa-emu:')
  .option('--json', 'machine-readable output')
  .action(async (target: string, o: { config?: string; json?: boolean }) => {
    const { accelSelftestCommand } = await import('./accel.js');
    const r = await accelSelftestCommand(target, o);
    process.stdout.write(r.text + '\n');
    process.exitCode = r.ok ? 0 : 1;
  });

program
  .command('bench')
  .description(
    "the DSA evaluation's scenarios: A (50% normal pages) and B (all zero), baseline against " +
      'DSA offload, CPU per thread and latency; --peer qemu adds QEMU to QEMU, --peer floor ' +
      "the machine's floor (a C migration); --machine pc migrates a Linux guest (idle, busy, " +
      'lossless) beside QEMU TCG booting the same image',
  )
  .option(
    '-M, --machine <type>',
    'synthetic (RAM and a workload) or pc (Linux in v86)',
    'synthetic',
  )
  .option('-m, --ram <size>', 'guest RAM (default: 4G; pc: 256M)')
  .option('--channels <n>', 'multifd channels', '2')
  .option('--runs <n>', 'runs per scenario and mode (medians, min-max)', '3')
  .option(
    '--warmup-runs <n>',
    'synthetic: unmeasured runs of every peer and mode first (default 1; 0 with --to): ' +
      'the first migration on a machine that sat idle pays for memory its host took back',
  )
  .option(
    '--at-once',
    'synthetic: send `migrate` as soon as both processes of a run answer QMP, as a script that ' +
      'starts them and migrates does (default: once their start-up work has settled, up to 3 s)',
  )
  .option(
    '--scenario <list>',
    'A, B, running, or all (= A,B,running); pc: idle, busy, lossless, or all (= idle,busy). ' +
      'Default: all; pc: idle,busy',
  )
  .option(
    '--modes <list>',
    'baseline (multifd), offload (dsa-accel), legacy, none, or all',
    'baseline,offload',
  )
  .option('--workload <w>', 'source workload in A and B (none: guest stopped, -S)', 'none')
  .addOption(
    new Option('--accel-path <entries...>', 'work queues for offload').default(
      [],
      DEFAULT_ACCEL_PATH,
    ),
  )
  .option('--to <uri>', 'remote destination: tcp:HOST:PORT of a `livemig run --incoming`')
  .option('--to-qmp <addr>', "the remote destination's QMP address (tcp:HOST:PORT), with --to")
  .option(
    '--peer <peers>',
    "also run QEMU to QEMU (qemu), and the machine's floor, bench:floor's C migration (floor); " +
      'a list (qemu,floor) or the flag twice',
    (v: string, prev?: string) => (prev ? `${prev},${v}` : v),
  )
  .option(
    '--qemu <path>',
    'the QEMU binary for --peer qemu (qemu-system-x86_64; pc: qemu-system-i386)',
  )
  .option('--json <file>', 'write every run and the summary (docs/bench-schema.md)')
  .option('--report <file.md>', 'write a Markdown report with tables, charts and the machine')
  .option('--charts <dir>', 'where the SVG charts go (default: beside --report or --json)')
  .option('--no-verify', "skip checking the destination's RAM after each migration")
  .option('--dirty-rates <list>', 'running guest: stress rates in MB/s', '25,400')
  .option('--max-bandwidth <size>', 'running guest: max-bandwidth in bytes/s (K/M/G)', '100M')
  .option('--downtime-limit <ms>', 'running guest, and pc idle and busy: downtime-limit', '300')
  .option('--converge-timeout <s>', 'running guest and pc: cancel after this many seconds', '15')
  .option('--kernel <file>', 'pc: the kernel both peers boot (default: the fetched image)')
  .option('--initrd <file>', 'pc: the initramfs, with --kernel (default: the fetched image)')
  .option('--append <cmdline>', 'pc: the kernel command line of both peers')
  .option('--busy-workload <w>', 'pc busy and lossless: the cp loop, cp:SIZE (default cp:8M)')
  .option(
    '--migration-nice <n>',
    "pc: livemig's x-migration-nice, 0..19: its threads yield the CPU to the guest " +
      "(default: a PC's own, 19 on a host with fewer than 3 cores, else 0)",
  )
  .option(
    '--lossless-downtime-limit <ms>',
    'pc lossless: the downtime-limit that forces many dirty syncs (default 10)',
  )
  .action(async (o) => {
    process.exitCode = await (await import('./bench.js')).benchCommand(o);
  });

const image = program
  .command('image')
  .description('the PC guest image: a Debian i386 kernel, a busybox initramfs and SeaBIOS');
image
  .command('fetch')
  .description(
    "download the guest image's packages from a Debian mirror (no root, no apt) and build " +
      'the initramfs, into ${XDG_CACHE_HOME:-~/.cache}/livemig/images/debian-SUITE-i386',
  )
  .option('--mirror <url>', 'Debian archive', DEFAULT_MIRROR)
  .option('--suite <name>', 'Debian suite with i386 kernels', DEFAULT_SUITE)
  .option('--cache-dir <dir>', 'cache directory instead of $XDG_CACHE_HOME or ~/.cache')
  .option(
    '--update',
    "read the archive's index even when the image is complete; fetch what changed",
  )
  .option('--force', 'fetch and build everything again')
  .option('--json', 'print the paths and the manifest as one JSON object')
  .action(async (o: ImageCliOptions) => {
    process.exitCode = await (await import('./image.js')).imageFetchCommand(o);
  });
image
  .command('info')
  .alias('path')
  .description('where the fetched guest image is, its versions and sha256s (no network)')
  .option('--suite <name>', 'Debian suite', DEFAULT_SUITE)
  .option('--cache-dir <dir>', 'cache directory instead of $XDG_CACHE_HOME or ~/.cache')
  .option('--json', 'print the paths and the manifest as one JSON object')
  .action(async (o: ImageCliOptions) => {
    process.exitCode = (await import('./image.js')).imageInfoCommand(o);
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`livemig: ${e.message}\n`);
  process.exit(1);
});
