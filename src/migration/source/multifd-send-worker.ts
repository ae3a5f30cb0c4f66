// The multifdsend_N thread (send-channel.ts does the work). Pooled (src/util/worker-pool.ts):
// warmed up while idle (send-warm-up.ts; after 'warm-accel', again on an accelerator), bound to
// a migration by a 'bind' message; then 'connect' (the destination's port for this channel,
// from HelloReply) and 'finish' (SendWorkerCommand). Any other message, or these out of order,
// is reported as the channel's error.

import { parentPort } from 'node:worker_threads';
import type { SendWorkerCommand, SourceWorkerMessage } from './worker-data.js';
import { resetThreadCpu } from '../../util/cpu-slots.js';
import { nameThread, setThreadNice } from '../../util/thread-priority.js';
import { SendChannel } from './send-channel.js';
import { warmUpSendChannel } from './send-warm-up.js';
import { WarmUpCount } from './warm-up-count.js';
import type { AccelHandle } from '../../accel/driver.js';

const post = (m: SourceWorkerMessage): void => parentPort!.postMessage(m);
let channel: SendChannel | null = null;
let connecting = false;

// Until it is bound: a 'bind' stops it at its next packet.
let warmingUp: Promise<unknown> = warmUpSendChannel(() => channel !== null);

/** Then, if told, on an accelerator (src/machine/channel-warm-up.ts); always says done. */
async function warmUpOnAccelerator(accel: AccelHandle, count: WarmUpCount): Promise<void> {
  if (!channel && !count.stopAsked) {
    await warmUpSendChannel(() => channel !== null || count.stopAsked, accel);
  }
  count.done();
}

parentPort!.on('message', (m: SendWorkerCommand) => {
  if (m?.type === 'warm-accel' && !channel) {
    const count = new WarmUpCount(m.count);
    warmingUp = warmingUp.then(() => warmUpOnAccelerator(m.accel, count));
    return;
  }
  if (m?.type === 'bind' && !channel && typeof m.data === 'object' && m.data !== null) {
    resetThreadCpu();
    nameThread(`multifdsend_${m.data.index}`);
    // x-migration-nice: yield the CPU to the guest's vCPU on a host with no core to spare.
    if (m.data.threadNice > 0) setThreadNice(m.data.threadNice);
    channel = new SendChannel(m.data, post);
    return;
  }
  if (m?.type === 'connect' && channel && !connecting && Number.isInteger(m.port)) {
    connecting = true;
    return channel.connect(m.port);
  }
  if (m?.type === 'finish' && channel) return channel.finish();
  const expected = channel ? "(expected 'connect' once, then 'finish')" : "before 'bind'";
  post({
    type: 'error',
    message: `multifdsend: unexpected message ${JSON.stringify(m)} ${expected}`,
  });
});
