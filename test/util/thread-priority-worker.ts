// For thread-priority.test.ts: renice and name this thread, report what the kernel says, stay
// alive.
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { kernelThreadId, nameThread, setThreadNice } from '../../src/util/thread-priority.js';

const ok = setThreadNice(workerData as number);
nameThread('multifdsend_12345678');
const stat = readFileSync('/proc/thread-self/stat', 'utf8');
const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
parentPort!.postMessage([ok, kernelThreadId(), nice]);
setInterval(() => {}, 1000);
