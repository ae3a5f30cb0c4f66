// The state of one BatchTask.zeroPages call, pooled per task (no allocation per request).

import { DESCRIPTOR_WORDS } from './dsa/descriptor.js';

export class PageRequest {
  slot = 0;
  epoch = 0;
  /** Sub-requests (batches or single descriptors) the request is split into. */
  nsubTotal = 0;
  t0 = 0;
  deadline = 0;
  /** Waiting for its records: the deadline watch wakes it once the deadline has passed. */
  waiting = false;
  /** byte offset of the block's page 0 in its buffer */
  offset = 0;
  /** write() to a dedicated WQ: members whose credit went back already. */
  credCursor = 0;
  /** The descriptor being submitted (ENQCMD copies it into the WQ). */
  readonly bd = new Int32Array(DESCRIPTOR_WORDS);
}
