// A fuzzing run: the packet and frame parsers in process, then a real destination process
// over sockets, then a real migration into that same destination.

import { fuzzFrames, fuzzPackets, type FuzzReport } from './fuzz-parser.js';
import { fuzzSockets } from './fuzz-socket.js';
import { LocalPair } from '../harness/local-migration.js';

export async function runFuzz(o: {
  packets: number;
  frames: number;
  sockets: number;
  seed: number;
}): Promise<{ reports: Record<string, FuzzReport>; migrated: boolean }> {
  const reports: Record<string, FuzzReport> = {
    packets: fuzzPackets(o.packets, o.seed),
    frames: fuzzFrames(o.frames, o.seed + 1),
  };
  let migrated = true;
  if (o.sockets > 0) {
    const pair = await LocalPair.start({ ram: '16M', normalPageRatio: 0.5, workload: 'stress:20' });
    try {
      const uri = await pair.incomingUri();
      const port = Number(uri.split(':').pop());
      reports.sockets = await fuzzSockets(
        port,
        pair.dest.qmp,
        16 * 1024 * 1024,
        o.sockets,
        o.seed + 2,
      );
      // After all that, a real source still migrates into the same destination, byte-exact.
      const { source } = await pair.migrate(
        { multifd: true, 'x-verify-ram': true },
        { 'multifd-channels': 2 },
      );
      const lm = source.livemig as { verify?: string };
      migrated = source.status === 'completed' && lm.verify === 'ok';
    } finally {
      await pair.close();
    }
  }
  return { reports, migrated };
}
