// Listening on a `unix:` or `tcp:` address the way livemig's servers do (QMP, the serial
// console): a UNIX socket file only its owner can reach, a stale one replaced, a live one kept.

import { connect, type Server } from 'node:net';
import { chmod, lstat, unlink } from 'node:fs/promises';
import type { SocketAddress } from './socket-address.js';

/**
 * Resolves once `server` listens at `where`. `what` names the socket in errors
 * ('QMP socket', 'serial socket').
 */
export async function listenOn(server: Server, where: SocketAddress, what: string): Promise<void> {
  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (where.kind === 'tcp') {
    server.listen(where.port, where.host);
    return listening;
  }
  await removeStaleSocket(where.path, what);
  // The socket file must never be reachable by other users, not even between bind and chmod:
  // bind under a umask that leaves 0600. (umask is unavailable in worker threads; chmod below
  // still applies.)
  let oldMask: number | undefined;
  try {
    oldMask = process.umask(0o177);
  } catch {
    oldMask = undefined;
  }
  try {
    server.listen(where.path); // binds synchronously, so the umask is in force for it
  } finally {
    if (oldMask !== undefined) process.umask(oldMask);
  }
  await listening;
  await chmod(where.path, 0o600);
}

/** QEMU unlinks whatever is at the path; livemig only replaces a socket nobody listens on. */
async function removeStaleSocket(path: string, what: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) {
    throw new Error(`${what} path ${path} exists and is not a socket; refusing to replace it`);
  }
  if (await socketAnswers(path)) {
    throw new Error(`${what} ${path} is in use by another process`);
  }
  await unlink(path);
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
