// `npm run fuzz`: feed a destination random and mutated streams, in process (the packet and
// frame parsers) and over real sockets (a `livemig run --incoming` process), then check it
// still migrates. Exits non-zero on any crash, hang or write outside the pages a packet named.
//
//   node dist/src/fuzz/cli.js [--packets 10000] [--frames 2000] [--sockets 200] [--seed N]

import { Command } from 'commander';
import Table from 'cli-table3';
import { integer } from '../cli/options.js';
import { runFuzz } from './run.js';

const COUNT = integer(0, 10_000_000);

const program = new Command('npm run fuzz --')
  .description('fuzz a destination: its parsers in process, then a real one over sockets')
  .option('--packets <n>', 'packet-parser cases', COUNT, 10000)
  .option('--frames <n>', 'frame-parser cases', COUNT, 2000)
  .option('--sockets <n>', 'cases over sockets into a `livemig run --incoming`', COUNT, 200)
  .option(
    '--seed <n>',
    "the random generator's seed; a run prints its own, and --seed replays it",
    integer(0, 2 ** 32 - 1),
    Date.now() % 100000,
  )
  .action(async (o: { packets: number; frames: number; sockets: number; seed: number }) => {
    const t0 = Date.now();
    const { reports, migrated } = await runFuzz(o);
    const t = new Table({
      head: ['stream', 'cases', 'rejected', 'accepted', 'failures'],
      colAligns: ['left', 'right', 'right', 'right', 'right'],
      style: { head: [], border: [] },
    });
    let total = 0;
    let failures = 0;
    const shown: string[] = [];
    for (const [name, r] of Object.entries(reports)) {
      total += r.cases;
      failures += r.failures.length;
      t.push([name, r.cases, r.rejected, r.accepted, r.failures.length]);
      shown.push(...r.failures.slice(0, 10).map((f) => `${name}: ${f}`));
    }
    process.stdout.write(`${t.toString()}\n${shown.map((f) => `  ${f}\n`).join('')}`);
    process.stdout.write(
      `${total} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s (seed ${o.seed}); ` +
        `migration afterwards: ${migrated ? 'completed, verified' : 'FAILED'}\n`,
    );
    if (failures > 0 || !migrated) process.exit(1);
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`fuzz: ${e.message}\n`);
  process.exit(1);
});
