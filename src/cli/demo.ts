// `livemig demo`: the main job on a built-in default. Two local processes, a 1 GiB guest with
// half its pages normal and the stress workload running, migrated over multifd with
// verification on; a progress bar on a TTY, then a summary. Exits 0 only if the migration
// completed and the destination's RAM verified identical.

import type { SingleBar } from 'cli-progress';
import { LocalPair } from '../harness/local-migration.js';
import { parseMachine, parseRatio } from './run.js';
import { migrationBar, summary, updateBar, type Info } from './migration-view.js';
import { pcDemo } from './demo-pc.js';
import { checked, integer } from './options.js';
import { MAX_MULTIFD_CHANNELS } from '../migration/parameters.js';

export interface DemoOptions {
  machine: string;
  /** default: 1G for the synthetic guest, 256M for the PC */
  ram?: string;
  channels: string;
  zeroPageDetection: string;
  normalPageRatio: string;
  workload: string;
  json?: boolean;
}

export function parseChannels(text: string): number {
  return checked('--channels', integer(1, MAX_MULTIFD_CHANNELS), text);
}

export async function demoCommand(o: DemoOptions): Promise<number> {
  if (parseMachine(o.machine) === 'pc') return pcDemo({ ...o, ram: o.ram ?? '256M' });
  const ram = o.ram ?? '1G';
  const channels = parseChannels(o.channels);
  const tty = process.stderr.isTTY === true && !o.json;
  const say = (m: string): void => {
    if (!o.json) process.stderr.write(m + '\n');
  };
  say(`Starting source and destination guests (${ram}, workload ${o.workload}) ...`);
  const pair = await LocalPair.start({
    ram,
    normalPageRatio: parseRatio(o.normalPageRatio),
    workload: o.workload,
  });
  let bar: SingleBar | null = null;
  try {
    say(
      `Migrating over ${channels} multifd channels, zero-page-detection=${o.zeroPageDetection} ...`,
    );
    bar = migrationBar(tty);
    const { source, dest } = await pair.migrate(
      { multifd: true, events: true, 'x-verify-ram': true },
      { 'multifd-channels': channels, 'zero-page-detection': o.zeroPageDetection },
      (info) => updateBar(bar, info as Info),
    );
    bar?.stop();
    const src = source as Info;
    if (o.json) {
      process.stdout.write(JSON.stringify(src) + '\n');
    } else {
      process.stdout.write(summary(src, dest as Info) + '\n');
    }
    const ok = src.status === 'completed' && src.livemig?.verify === 'ok';
    if (!ok) {
      say(`Migration ${src.status}${src['error-desc'] ? `: ${String(src['error-desc'])}` : ''}`);
    }
    return ok ? 0 : 1;
  } finally {
    bar?.stop();
    await pair.close();
  }
}
