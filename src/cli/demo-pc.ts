// `livemig demo --machine pc`: a real Linux guest migrated while it runs. It fetches the guest
// image on first use, boots Linux in a source process (showing the kernel's progress), starts a
// workload that writes memory and prints a counter, writes a file, and migrates to a
// destination process; then it shows the destination's console: the counter goes on, and the
// file has the same sha256. Exits 0 only if all of that holds and RAM verified identical.

import type { SingleBar } from 'cli-progress';
import { LocalPair } from '../harness/local-migration.js';
import { ConsoleClient } from '../chardev/index.js';
import { fetchGuestImage, findGuestImage, type GuestImage } from '../image/guest-image.js';
import { fetchProgressPrinter } from './image.js';
import { DEFAULT_APPEND } from '../machine/pc/pc-config.js';
import { guestSha256, guestShell, lastCounter } from '../machine/pc/guest-shell.js';
import { migrationBar, summary, updateBar, type Info } from './migration-view.js';
import { parseChannels, type DemoOptions } from './demo.js';
import { progressBar } from './progress-bar.js';

/** The guest's workload: memory written in a loop, and a counter on the console each second. */
const WORKLOAD = 'cp:8M,counter';
const BOOT_TIMEOUT_MS = 180_000;

export async function pcDemo(o: DemoOptions & { ram: string }): Promise<number> {
  const channels = parseChannels(o.channels);
  const tty = process.stderr.isTTY === true && !o.json;
  const say = (m: string): void => {
    if (!o.json) process.stderr.write(m + '\n');
  };
  const image = await guestImageWithProgress(say);
  say(`Booting Linux (Debian ${image.manifest.kernelRelease}) in an emulated PC with ${o.ram} ...`);
  const pair = await LocalPair.start({
    machine: 'pc',
    ram: o.ram,
    pc: { append: `${DEFAULT_APPEND} livemig.workload=${WORKLOAD}` },
  });
  const source = await ConsoleClient.connect(pair.source.console!);
  let dest: ConsoleClient | null = null;
  let bar: SingleBar | null = null;
  try {
    await showBoot(source, tty, say);
    await source.waitFor(/livemig-guest: workload 'cp:8M' running/, 60_000);
    await source.waitFor(/livemig-counter 3\b/, 30_000);
    const path = '/tmp/before-migration';
    await guestShell(source, `dd if=/dev/urandom of=${path} bs=1k count=4096 2>/dev/null`);
    const sha = await guestSha256(source, path);
    const counterBefore = lastCounter(source);
    say(`\nThe source's console (the guest copies an 8 MiB file in a loop and counts):`);
    showConsole(
      say,
      'source',
      source
        .lines()
        .filter((l) => /livemig-counter/.test(l))
        .slice(-3),
    );
    say(`  wrote ${path}: sha256 ${sha}`);

    say(`\nMigrating over ${channels} multifd channels while the guest runs ...`);
    bar = migrationBar(tty);
    const { source: srcInfo, dest: dstInfo } = await pair.migrate(
      { multifd: true, events: true, 'x-verify-ram': true },
      { 'multifd-channels': channels, 'zero-page-detection': o.zeroPageDetection },
      (info) => updateBar(bar, info as Info),
      50,
    );
    bar?.stop();
    const src = srcInfo as Info;
    let after = { sha: '', counter: 0, answered: false };
    if (src.status === 'completed') {
      dest = await ConsoleClient.connect(pair.dest.console!);
      const from = dest.mark();
      await dest.waitFor(/livemig-counter \d+/, 10_000, from).catch(() => null);
      const shaAfter = await guestSha256(dest, path);
      const answered = /up \d/.test(await guestShell(dest, 'uptime'));
      await dest.waitFor(new RegExp(`livemig-counter ${lastCounter(dest) + 1}\\s`), 10_000, from);
      after = { sha: shaAfter, counter: lastCounter(dest, from), answered };
      say(`\nThe destination's console, after switchover:`);
      showConsole(
        say,
        'destination',
        dest
          .lines(from)
          .filter((l) => /counter|up /.test(l))
          .slice(-4),
      );
      say(`  ${path}: sha256 ${shaAfter}`);
    }
    const counterOk = after.counter > counterBefore;
    const fileOk = after.sha === sha;
    if (o.json) {
      process.stdout.write(JSON.stringify(src) + '\n');
    } else {
      process.stdout.write(
        summary(src, dstInfo as Info, [
          ['guest console', after.answered ? 'answers at the destination' : 'no answer'],
          [
            'counter',
            `${counterBefore} before, ${after.counter} after: ${counterOk ? 'goes on' : 'did not go on'}`,
          ],
          ['file sha256', fileOk ? 'identical' : `differs (${after.sha || 'unreadable'})`],
        ]) + '\n',
      );
    }
    const ok =
      src.status === 'completed' &&
      src.livemig?.verify === 'ok' &&
      counterOk &&
      fileOk &&
      after.answered;
    if (!ok) {
      say(`Migration ${src.status}${src['error-desc'] ? `: ${String(src['error-desc'])}` : ''}`);
    }
    return ok ? 0 : 1;
  } finally {
    bar?.stop();
    await source.close();
    await dest?.close();
    await pair.close();
  }
}

/** The fetched guest image, fetching it (with progress) on first use. */
async function guestImageWithProgress(say: (m: string) => void): Promise<GuestImage> {
  const found = findGuestImage();
  if (found) return found;
  say('First use: fetching the guest image (a Debian i386 kernel, busybox, SeaBIOS) ...');
  const view = fetchProgressPrinter();
  try {
    const image = await fetchGuestImage({ onProgress: view.update });
    say(`Guest image cached in ${image.dir}`);
    return image;
  } finally {
    view.stop();
  }
}

/** Boot progress: the kernel's latest message, until the guest's init says it is ready. */
async function showBoot(c: ConsoleClient, tty: boolean, say: (m: string) => void): Promise<void> {
  const t0 = performance.now();
  let shown = 0;
  let lastSaid = 0;
  // A status line without a bar: the same display as every other progress.
  const status = tty ? progressBar('  {secs} s  {latest}', { clear: true }) : null;
  status?.start(1, 0, { secs: '0.0', latest: '' });
  const timer = setInterval(() => {
    const lines = c.lines().filter((l) => l.trim() !== '');
    if (lines.length === shown) return;
    shown = lines.length;
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    const latest = lines[lines.length - 1].replace(/\s+/g, ' ').slice(0, 90);
    if (status) {
      status.update(0, { secs, latest });
    } else if (performance.now() - lastSaid > 2000) {
      lastSaid = performance.now();
      say(`  ${secs} s  ${latest}`);
    }
  }, 100);
  try {
    await c.waitFor(/livemig-guest: ready/, BOOT_TIMEOUT_MS);
  } finally {
    clearInterval(timer);
    status?.stop();
  }
  say(`  Linux booted to a shell in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** Console lines as text: the shell's terminal queries (ESC [ 6 n) are not for us. */
function showConsole(say: (m: string) => void, side: string, lines: string[]): void {
  // eslint-disable-next-line no-control-regex
  for (const l of lines) say(`  ${side.padEnd(11)} | ${l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')}`);
}
