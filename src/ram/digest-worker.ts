// ramDigest on a thread of its own: hashing a large guest's RAM takes seconds, and the main
// thread must keep answering heartbeats and QMP meanwhile. One digest per worker.

import { parentPort, workerData } from 'node:worker_threads';
import { ramDigest } from './digest.js';
import { segmentViews, type RamBytes } from './layout.js';

const blocks = (workerData as { blocks: (RamBytes & { id: number })[] }).blocks;
parentPort!.postMessage(ramDigest(blocks.map((b) => ({ id: b.id, segments: segmentViews(b) }))));
