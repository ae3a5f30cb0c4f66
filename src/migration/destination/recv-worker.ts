// The multifdrecv_N thread (recv-channel.ts does the work). Pre-spawned idle by the destination
// (worker start-up costs tens of ms, which would otherwise be spent inside the migration's
// setup), with workerData { host }: it listens at once and says on which port
// (channel-listener.ts). 'bind' gives it a channel of a migration, 'finish' says the final pass
// is in. Any other message, or these out of order, is reported as the channel's error.

import { parentPort, workerData } from 'node:worker_threads';
import { RecvChannel } from './recv-channel.js';
import { ChannelListener } from './channel-listener.js';
import type { RecvWorkerCommand, RecvWorkerMessage } from './worker-data.js';
import { resetThreadCpu } from '../../util/cpu-slots.js';
import { nameThread, setThreadNice } from '../../util/thread-priority.js';

const post = (m: RecvWorkerMessage): void => parentPort!.postMessage(m);
let channel: RecvChannel | null = null;
let index = -1;
const host = (workerData as { host?: unknown } | null)?.host;
let listener =
  typeof host === 'string'
    ? new ChannelListener(host, (port) => post({ type: 'listening', index, port, host }))
    : null;

parentPort!.on('message', (m: RecvWorkerCommand) => {
  if (m?.type === 'bind' && !channel && typeof m.data === 'object' && m.data !== null) {
    resetThreadCpu();
    // x-migration-nice: yield the CPU to the guest's vCPU on a host with no core to spare.
    if (m.data.threadNice > 0) setThreadNice(m.data.threadNice);
    index = m.data.index;
    nameThread(`multifdrecv_${index}`);
    channel = new RecvChannel(m.data, post, listener);
    listener = null;
    return;
  }
  if (m?.type === 'finish' && channel) return channel.finish();
  const what = typeof m?.type === 'string' ? `'${m.type}'` : JSON.stringify(m);
  post({
    type: 'error',
    index,
    message: `multifdrecv: unexpected message ${what} ${channel ? "after 'bind'" : "before 'bind'"} (expected 'bind', then 'finish')`,
  });
});
