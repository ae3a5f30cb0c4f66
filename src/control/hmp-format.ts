// How HMP's `info` commands print QMP results. Pure functions of the QMP data, laid out like
// QEMU 10's HMP (migration/migration-hmp-cmds.c), so they can be tested without a host.

import type { CapabilityState, MigrationThreadInfo, RunStatus } from './host.js';
import { isPlainObject } from './qmp-args.js';

type Info = Record<string, unknown>;

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** QEMU prints byte counts `>> 10`. */
function kib(v: unknown): number {
  return Math.floor(num(v) / 1024);
}

function plain(v: unknown): string {
  if (typeof v === 'number')
    return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return JSON.stringify(v);
}

/** `Status:` and `Time (ms):` lines; also what a non-detached `migrate` prints when it ends. */
export function formatStatusLines(info: Info): string[] {
  if (typeof info.status !== 'string') return [];
  const lines: string[] = [];
  const failed = info.status === 'failed' && typeof info['error-desc'] === 'string';
  lines.push(`Status: ${info.status}${failed ? ` (${String(info['error-desc'])})` : ''}`);
  if (num(info['total-time'])) {
    let time = `Time (ms): total=${num(info['total-time'])}`;
    if (info['setup-time'] !== undefined) time += `, setup=${num(info['setup-time'])}`;
    if (info['expected-downtime'] !== undefined) {
      time += `, exp_down=${num(info['expected-downtime'])}`;
    }
    if (info.downtime !== undefined) time += `, down=${num(info.downtime)}`;
    lines.push(time);
  }
  return lines;
}

function socketUri(addr: unknown): string {
  if (!isPlainObject(addr)) return plain(addr);
  if (addr.type === 'unix') return `unix:${String(addr.path)}`;
  if (addr.type === 'inet') return `tcp:${String(addr.host)}:${String(addr.port)}`;
  return JSON.stringify(addr);
}

function formatRam(ram: Info): string[] {
  const lines = [
    'RAM info:',
    `  Throughput (Mbps): ${num(ram.mbps).toFixed(2)}`,
    `  Sizes (KiB): pagesize=${kib(ram['page-size'])}, total=${kib(ram.total)},`,
    `    transferred=${kib(ram.transferred)}, remain=${kib(ram.remaining)},`,
    `    precopy=${kib(ram['precopy-bytes'])}, multifd=${kib(ram['multifd-bytes'])}, ` +
      `postcopy=${kib(ram['postcopy-bytes'])}`,
    `  Pages: normal=${num(ram.normal)}, zero=${num(ram.duplicate)}, ` +
      `rate_per_sec=${num(ram['pages-per-second'])}`,
  ];
  let others = `  Others: dirty_syncs=${num(ram['dirty-sync-count'])}`;
  if (num(ram['dirty-pages-rate'])) others += `, dirty_pages_rate=${num(ram['dirty-pages-rate'])}`;
  if (num(ram['postcopy-requests'])) others += `, postcopy_req=${num(ram['postcopy-requests'])}`;
  if (num(ram['downtime-bytes'])) others += `, downtime_ram=${num(ram['downtime-bytes'])}`;
  if (num(ram['dirty-sync-missed-zero-copy'])) {
    others += `, zerocopy_fallbacks=${num(ram['dirty-sync-missed-zero-copy'])}`;
  }
  lines.push(others);
  return lines;
}

// Labels for the members of query-migrate's `livemig` block that livemig defines; any other
// member is printed under its own name, so new counters show up without touching this file.
const CPU_KEY = 'thread-cpu-ms';
const LIVEMIG_LABELS: Readonly<Record<string, string>> = {
  accel: 'Accelerator',
  accelerator: 'Accelerator',
  [CPU_KEY]: 'CPU (ms)',
};

function formatLivemig(block: Info): string[] {
  const entries = Object.entries(block).filter(([, v]) => v !== undefined && v !== null);
  // Per-thread CPU goes last: it is the line the benchmark reads.
  entries.sort(([a], [b]) => Number(a === CPU_KEY) - Number(b === CPU_KEY));
  const lines = ['livemig:'];
  for (const [key, value] of entries) {
    const label = LIVEMIG_LABELS[key] ?? key;
    if (isPlainObject(value)) {
      const pairs = Object.entries(value).map(([k, v]) => `${k}=${plain(v)}`);
      lines.push(`  ${label}: ${pairs.join(', ')}`);
    } else if (Array.isArray(value)) {
      lines.push(`  ${label}: ${value.map(plain).join(', ')}`);
    } else {
      lines.push(`  ${label}: ${plain(value)}`);
    }
  }
  return lines.length > 1 ? lines : [];
}

/** `info migrate`: QEMU's layout, then livemig's block (accelerator counters, CPU per thread). */
export function formatInfoMigrate(info: Info): string {
  const lines: string[] = [];
  const blocked = info['blocked-reasons'];
  if (Array.isArray(blocked) && blocked.length > 0) {
    lines.push('Outgoing migration blocked:', ...blocked.map((r) => `  ${plain(r)}`));
  }
  lines.push(...formatStatusLines(info));
  const sockets = info['socket-address'];
  if (Array.isArray(sockets)) {
    lines.push('Sockets: [', ...sockets.map((a) => `\t${socketUri(a)}`), ']');
  }
  if (isPlainObject(info.ram)) lines.push(...formatRam(info.ram));
  if (isPlainObject(info.livemig)) lines.push(...formatLivemig(info.livemig));
  return lines.map((l) => l + '\n').join('');
}

// Units QEMU's `info migrate_parameters` prints after these parameters' values.
const PARAMETER_UNITS: Readonly<Record<string, string>> = {
  'downtime-limit': ' ms',
  'max-bandwidth': ' bytes/second',
  'avail-switchover-bandwidth': ' bytes/second',
  'multifd-packet-size': ' bytes',
};

/** `info migrate_parameters`; lists print space-separated, the form migrate_set_parameter takes. */
export function formatInfoMigrateParameters(params: Info): string {
  return Object.entries(params)
    .map(([name, value]) => {
      const text = Array.isArray(value) ? value.map(plain).join(' ') : plain(value);
      return `${name}: ${text}${PARAMETER_UNITS[name] ?? ''}\n`;
    })
    .join('');
}

export function formatInfoMigrateCapabilities(caps: readonly CapabilityState[]): string {
  return caps.map((c) => `${c.capability}: ${c.state ? 'on' : 'off'}\n`).join('');
}

/** `info status`, as QEMU: the RunState is shown when paused for a reason other than `stop`. */
export function formatInfoStatus(status: RunStatus): string {
  const reason = !status.running && status.status !== 'paused' ? ` (${status.status})` : '';
  return `VM status: ${status.running ? 'running' : 'paused'}${reason}\n`;
}

/**
 * `info migrationthreads`: one `NAME (tid=ID)` line per thread, as the QMP command lists them,
 * with livemig's CPU time appended when known.
 */
export function formatInfoMigrationThreads(threads: readonly MigrationThreadInfo[]): string {
  if (threads.length === 0) return 'No migration threads found\n';
  return threads
    .map((t) => {
      const cpu = typeof t['cpu-ms'] === 'number' ? `, cpu=${plain(t['cpu-ms'])} ms` : '';
      return `${t.name} (tid=${t['thread-id']})${cpu}\n`;
    })
    .join('');
}
