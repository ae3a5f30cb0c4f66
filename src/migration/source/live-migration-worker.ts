// The live_migration thread (live-migration.ts does the work). Pooled (src/util/worker-pool.ts):
// spawned idle; 'bind' gives it a migration while the channels connect, 'start' (once every
// channel is connected) makes it walk RAM. Any other message, or these out of order, is a bug
// in the main thread: it is reported as the migration's error, never taken for 'start'.

import { parentPort } from 'node:worker_threads';
import { Aborted, LiveMigration } from './live-migration.js';
import type {
  LiveMigrationCommand,
  LiveMigrationWorkerData,
  SourceWorkerMessage,
} from './worker-data.js';
import { publishThreadCpu, resetThreadCpu } from '../../util/cpu-slots.js';
import { nameThread, setThreadNice } from '../../util/thread-priority.js';

const post = (m: SourceWorkerMessage): void => parentPort!.postMessage(m);
let bound: LiveMigrationWorkerData | null = null;

parentPort!.on('message', (m: LiveMigrationCommand) => {
  if (m?.type === 'bind' && !bound && typeof m.data === 'object' && m.data !== null) {
    resetThreadCpu();
    nameThread('live_migration');
    // x-migration-nice: yield the CPU to the guest's vCPU on a host with no core to spare.
    if (m.data.threadNice > 0) setThreadNice(m.data.threadNice);
    bound = m.data;
    return;
  }
  if (m?.type === 'start' && bound) return start(bound);
  const what = typeof m?.type === 'string' ? `'${m.type}'` : JSON.stringify(m);
  post({
    type: 'error',
    message: `live_migration: unexpected message ${what} ${bound ? "after 'bind'" : "before 'bind'"} (expected 'bind', then 'start')`,
  });
});

function start(d: LiveMigrationWorkerData): void {
  try {
    new LiveMigration(d, post).run();
  } catch (e) {
    if (!(e instanceof Aborted)) post({ type: 'error', message: (e as Error).message });
  }
  publishThreadCpu(d.cpuSlots, d.cpuSlot);
  process.exit(0);
}
