// x-migration-nice rests on one Linux fact: setpriority() on a thread's id renices that thread
// alone; thread names on another: a thread may rename itself through /proc/thread-self/comm. Checked here with real threads, reading the kernel's view back from /proc.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { kernelThreadId } from '../../src/util/thread-priority.js';

const linux = process.platform === 'linux';

/** Field 19 of /proc/.../stat: the nice value (after the parenthesised command name). */
function niceOf(statPath: string): number {
  const stat = readFileSync(statPath, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

test(
  'a worker renices and names itself and no other thread',
  { skip: !linux && 'Linux only' },
  async () => {
    const before = niceOf('/proc/thread-self/stat');
    const w = new Worker(new URL('./thread-priority-worker.js', import.meta.url), {
      workerData: 7,
    });
    const [ok, tid, niceInWorker] = await new Promise<[boolean, number, number]>(
      (resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      },
    );
    assert.equal(ok, true);
    assert.notEqual(tid, kernelThreadId(), 'the worker is a thread of its own');
    assert.equal(niceInWorker, 7, 'the kernel reports the new nice value for the worker');
    assert.equal(niceOf(`/proc/${process.pid}/task/${tid}/stat`), 7, 'seen from outside too');
    assert.equal(niceOf('/proc/thread-self/stat'), before, 'the main thread keeps its own');
    const comm = (path: string): string => readFileSync(path, 'utf8').trim();
    assert.equal(
      comm(`/proc/${process.pid}/task/${tid}/comm`),
      'multifdsend_123',
      'ps and top show the name the worker gave itself, cut to the 15 bytes the kernel keeps',
    );
    assert.notEqual(
      comm('/proc/thread-self/comm'),
      'multifdsend_123',
      'the main thread keeps its name',
    );
    await w.terminate();
  },
);

test(
  'kernelThreadId of the main thread is the process id',
  { skip: !linux && 'Linux only' },
  () => {
    assert.equal(kernelThreadId(), process.pid);
  },
);
