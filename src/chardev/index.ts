// The serial console's backends: parse a `--serial` spec, open the chardev it names.

import type { Chardev } from './chardev.js';
import { NullChardev } from './chardev.js';
import type { ChardevSpec } from './chardev-spec.js';
import { ChardevLogFile } from './logfile.js';
import { SocketClientChardev, SocketServerChardev } from './socket-chardev.js';
import { StdioChardev, type StdioStreams } from './stdio-chardev.js';

export type { Chardev, ChardevEvent, ChardevStats } from './chardev.js';
export type { ChardevLog, ChardevSpec, SocketChardevSpec } from './chardev-spec.js';
export type { StdioStreams } from './stdio-chardev.js';
export { parseChardevSpec } from './chardev-spec.js';
export { ConsoleClient } from './console-client.js';
export type { ConsoleConnectOptions, ConsoleMatch } from './console-client.js';

/**
 * Opens the backend `spec` names. Sockets are listening (or connected) when this resolves;
 * `ready()` says when the guest may start. `io` replaces process.stdin/stdout for `stdio`.
 */
export async function openChardev(spec: ChardevSpec, io?: StdioStreams): Promise<Chardev> {
  // QEMU opens the log first, and closes it again if the backend fails.
  const log =
    spec.backend !== 'none' && spec.logfile ? ChardevLogFile.open(spec.logfile) : undefined;
  try {
    switch (spec.backend) {
      case 'none':
      case 'null':
        return new NullChardev(spec.backend, log);
      case 'stdio':
        return new StdioChardev(io, spec.signal, log);
      case 'socket':
        return spec.server
          ? await SocketServerChardev.open(spec, log)
          : await SocketClientChardev.open(spec, log);
    }
  } catch (err) {
    log?.close();
    throw err;
  }
}
