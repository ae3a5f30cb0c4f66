// `npm run fuzz`: feed a destination random and mutated streams, in process (the packet and
// frame parsers) and over real sockets (a `livemig run --incoming` process), then check it
// still migrates. Exits non-zero on any crash, hang or write outside the pages a packet named.
//
//   node dist/src/fuzz/cli.js [--packets 10000] [--frames 2000] [--sockets 200] [--seed N]

import { parseArgs } from 'node:util';
import { runFuzz } from './run.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      packets: { type: 'string', default: '10000' },
      frames: { type: 'string', default: '2000' },
      sockets: { type: 'string', default: '200' },
      seed: { type: 'string', default: String(Date.now() % 100000) },
    },
  });
  const o = {
    packets: Number(values.packets),
    frames: Number(values.frames),
    sockets: Number(values.sockets),
    seed: Number(values.seed),
  };
  const t0 = Date.now();
  const { reports, migrated } = await runFuzz(o);
  let total = 0;
  let failures = 0;
  for (const [name, r] of Object.entries(reports)) {
    total += r.cases;
    failures += r.failures.length;
    process.stdout.write(
      `${name.padEnd(8)} ${String(r.cases).padStart(6)} cases: ${r.rejected} rejected, ${r.accepted} accepted, ${r.failures.length} failures\n`,
    );
    for (const f of r.failures.slice(0, 10)) process.stdout.write(`  ${f}\n`);
  }
  process.stdout.write(
    `${total} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s (seed ${o.seed}); ` +
      `migration afterwards: ${migrated ? 'completed, verified' : 'FAILED'}\n`,
  );
  if (failures > 0 || !migrated) process.exit(1);
}

void main();
