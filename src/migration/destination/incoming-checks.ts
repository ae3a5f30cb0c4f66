// What a destination checks before it takes a source on: the main channel's handshake, then
// the source's Hello against this destination's RAM layout and machine. Each check's text is
// the refusal (a handshake) or the migration's error-desc (a Hello); docs/protocol.md quotes
// them and test/migration/hostile-input.test.ts sends every one.

import {
  MAIN_MAGIC,
  MAX_PACKET_PAGES,
  MAX_STALL_TIMEOUT_MS,
  MIN_STALL_TIMEOUT_MS,
  PAGE_SIZE,
  PROTOCOL_VERSION,
  type Handshake,
} from '../protocol.js';
import type { GuestMachine } from '../../machine/guest-machine.js';
import { MAX_MULTIFD_CHANNELS } from '../parameters.js';

/** x-stall-timeout's default, for a Hello without stallTimeoutMs */
const DEFAULT_STALL_TIMEOUT_MS = 10_000;

/** Why a main channel's handshake is refused; '' accepts it. */
export function refuseMainHandshake(h: Handshake, busy: boolean, guestStarted: boolean): string {
  if (h.magic !== MAIN_MAGIC) return `bad main channel magic ${h.magic}`;
  if (h.version !== PROTOCOL_VERSION) {
    return `unsupported protocol version ${h.version}, this destination speaks ${PROTOCOL_VERSION}`;
  }
  if (busy) return 'destination is busy with another incoming migration';
  if (guestStarted) return 'destination guest has already run; start a new destination';
  if (h.channels < 1 || h.channels > MAX_MULTIFD_CHANNELS) {
    return `invalid channel count ${h.channels}: expected 1..${MAX_MULTIFD_CHANNELS}`;
  }
  return '';
}

/** What a Hello that passed its checks settles for this migration. */
export interface HelloTerms {
  packetPages: number;
  stallTimeoutMs: number;
  /** x-migration-nice, which the source's user sets for both sides */
  threadNice: number;
}

/**
 * Check the source's description against ours before anything is started: the first failed
 * check's text, or the terms of the migration.
 */
export function checkHello(
  p: Record<string, unknown>,
  handshake: { session: Buffer; channels: number },
  guest: GuestMachine,
): HelloTerms | string {
  const packetPages = p.packetPages;
  if (p.version !== PROTOCOL_VERSION) return `Hello version ${String(p.version)} unsupported`;
  if (p.session !== handshake.session.toString('hex'))
    return 'Hello session id does not match the handshake';
  if (p.channels !== handshake.channels)
    return `Hello channels ${String(p.channels)} does not match the handshake`;
  if (p.pageSize !== PAGE_SIZE)
    return `page size ${String(p.pageSize)} unsupported: expected ${PAGE_SIZE}`;
  if (
    typeof packetPages !== 'number' ||
    !Number.isInteger(packetPages) ||
    packetPages < 1 ||
    packetPages > MAX_PACKET_PAGES
  ) {
    return `packet size ${String(packetPages)} pages out of range 1..${MAX_PACKET_PAGES}`;
  }
  const blocks = p.blocks;
  const mine = guest.blocks;
  if (!Array.isArray(blocks) || blocks.length !== mine.length) {
    return `RAM layout mismatch: source has ${Array.isArray(blocks) ? blocks.length : '?'} blocks, destination ${mine.length}`;
  }
  for (let i = 0; i < mine.length; i++) {
    const b = (typeof blocks[i] === 'object' && blocks[i] !== null ? blocks[i] : {}) as {
      id?: unknown;
      name?: unknown;
      size?: unknown;
    };
    if (b.id !== mine[i].id || b.name !== mine[i].name || b.size !== mine[i].size) {
      return (
        `RAM block ${i} mismatch: source ${String(b.name)} of ${String(b.size)} bytes, ` +
        `destination ${mine[i].name} of ${mine[i].size} bytes (start both with the same --ram)`
      );
    }
  }
  const machineMismatch = guest.incompatibility(p.machine);
  if (machineMismatch) return machineMismatch;
  // Optional: a source that does not say uses the default.
  const stall = p.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  if (
    typeof stall !== 'number' ||
    !Number.isInteger(stall) ||
    stall < MIN_STALL_TIMEOUT_MS ||
    stall > MAX_STALL_TIMEOUT_MS
  ) {
    return `Hello stallTimeoutMs ${String(stall)} out of range ${MIN_STALL_TIMEOUT_MS}..${MAX_STALL_TIMEOUT_MS}`;
  }
  // Optional too: x-migration-nice, which the source's user sets for both sides.
  const nice = p.threadNice ?? 0;
  if (typeof nice !== 'number' || !Number.isInteger(nice) || nice < 0 || nice > 19) {
    return `Hello threadNice ${String(nice)} out of range 0..19`;
  }
  return { packetPages, stallTimeoutMs: stall, threadNice: nice };
}
