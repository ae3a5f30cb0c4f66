// QEMU's `-serial` notation for livemig's `--serial SPEC`: stdio, null, none, and the socket
// forms `unix:PATH[,...]` and `tcp:HOST:PORT[,...]` with QEMU's option names and spellings.

import {
  parseSocketLocation,
  SocketAddressError,
  type SocketAddress,
} from '../control/socket-address.js';

/** QEMU's chardev log: every byte the guest sends also goes to this file. */
export interface ChardevLog {
  path: string;
  /** false: the file is truncated when the chardev opens (QEMU's default) */
  append: boolean;
}

export interface SocketChardevSpec {
  backend: 'socket';
  address: SocketAddress;
  /** true: listen for console clients; false: connect out to a listener (QEMU's default) */
  server: boolean;
  /** server only: the guest may start only once the first client is connected */
  wait: boolean;
  /** tcp only: TCP_NODELAY on the connection (livemig defaults to on; QEMU to off) */
  nodelay: boolean;
  /** client only: milliseconds between connection attempts once the peer is gone; 0 = never */
  reconnectMs: number;
  logfile?: ChardevLog;
}

export type ChardevSpec =
  /** QEMU: no serial port at all */
  | { backend: 'none' }
  /** QEMU: a serial port whose output is discarded and which never receives input */
  | { backend: 'null'; logfile?: ChardevLog }
  /** livemig's own terminal; `signal`: Ctrl-C interrupts livemig rather than reaching the guest */
  | { backend: 'stdio'; signal: boolean; logfile?: ChardevLog }
  | SocketChardevSpec;

type OptionType = 'bool' | 'number' | 'path';

const LOG_OPTIONS = { logfile: 'path', logappend: 'bool' } as const;
const SOCKET_OPTIONS = {
  server: 'bool',
  wait: 'bool',
  reconnect: 'number',
  'reconnect-ms': 'number',
} as const;
const OPTIONS: Record<'null' | 'stdio' | 'unix' | 'tcp', Record<string, OptionType>> = {
  null: LOG_OPTIONS,
  stdio: { signal: 'bool', ...LOG_OPTIONS },
  unix: { ...SOCKET_OPTIONS, ...LOG_OPTIONS },
  // QEMU spells the TCP option both `nodelay=on` and (its older name, inverted) `delay=off`
  tcp: { ...SOCKET_OPTIONS, nodelay: 'bool', delay: 'bool', ...LOG_OPTIONS },
};

const USAGE = {
  unix: 'unix:PATH[,server=on][,wait=off]',
  tcp: 'tcp:HOST:PORT[,server=on][,wait=off]',
};

// QEMU's -serial backends that livemig does not have (prefix, name), refused by name.
const UNSUPPORTED: [string, string][] = [
  ['mon:', "'mon:' (the monitor multiplexed with the serial port)"],
  ['telnet:', "'telnet:' (use tcp:HOST:PORT,server=on: a raw socket, for nc or socat)"],
  ['pty', "'pty'"],
  ['file:', "'file:' (use null,logfile=PATH)"],
  ['pipe:', "'pipe:'"],
  ['tn3270:', "'tn3270:'"],
  ['websocket:', "'websocket:'"],
  ['udp:', "'udp:'"],
  ['vc', "'vc'"],
  ['chardev:', "'chardev:'"],
  ['con:', "'con:'"],
  ['COM', "'COMn'"],
  ['/dev/', 'a host device'],
  ['msmouse', "'msmouse'"],
  ['wctablet', "'wctablet'"],
  ['braille', "'braille'"],
  ['testdev', "'testdev'"],
];

// setTimeout's limit: 2^31 - 1 ms
const MAX_RECONNECT_MS = 2 ** 31 - 1;

/** Parses a `--serial` value; throws an Error naming the bad part and what is allowed. */
export function parseChardevSpec(text: string, option = '--serial'): ChardevSpec {
  const invalid = (why: string): Error => new Error(`invalid ${option} '${text}': ${why}`);
  const [main, ...rest] = splitOptions(text);
  const expected =
    `expected stdio, null, none, ${USAGE.unix} or ${USAGE.tcp}` + ` (see docs/serial-console.md)`;

  if (main === 'none') {
    if (rest.length > 0) throw invalid("'none' (no serial port) takes no options");
    return { backend: 'none' };
  }
  const form: keyof typeof OPTIONS | undefined =
    main === 'null' || main === 'stdio'
      ? main
      : main.startsWith('unix:')
        ? 'unix'
        : main.startsWith('tcp:')
          ? 'tcp'
          : undefined;
  if (form === undefined) {
    const known = UNSUPPORTED.find(([prefix]) => main.startsWith(prefix));
    if (known !== undefined) {
      throw invalid(`QEMU's ${known[1]} backend is not supported; ${expected}`);
    }
    throw invalid(expected);
  }
  const opts = readOptions(text, option, rest, OPTIONS[form]);
  const flag = (name: string): boolean | undefined => opts.get(name) as boolean | undefined;

  let logfile: ChardevLog | undefined;
  if (opts.has('logfile')) {
    logfile = { path: opts.get('logfile') as string, append: flag('logappend') ?? false };
  } else if (opts.has('logappend')) {
    throw invalid("'logappend' needs 'logfile=PATH'");
  }
  if (form === 'null') return { backend: 'null', ...(logfile && { logfile }) };
  if (form === 'stdio') {
    return { backend: 'stdio', signal: flag('signal') ?? true, ...(logfile && { logfile }) };
  }

  let address: SocketAddress;
  try {
    address = parseSocketLocation(main);
  } catch (err) {
    if (!(err instanceof SocketAddressError)) throw err;
    throw invalid(err.shape === form ? `expected ${USAGE[form]}` : err.reason);
  }
  const server = flag('server') ?? false;
  // QEMU's words for these two (char-socket.c)
  if (opts.has('delay') && opts.has('nodelay')) {
    throw invalid("'delay' and 'nodelay' are mutually exclusive");
  }
  if (opts.has('reconnect') && opts.has('reconnect-ms')) {
    throw invalid("'reconnect' and 'reconnect-ms' are mutually exclusive");
  }
  const reconnectOption = ['reconnect', 'reconnect-ms'].find((name) => opts.has(name));
  if (server && reconnectOption !== undefined) {
    throw invalid(
      `'${reconnectOption}' is for a client (server=off); a server keeps listening for the ` +
        'next client',
    );
  }
  if (!server && opts.has('wait')) {
    throw invalid(
      "'wait' is for a server (server=on): a client (server=off, QEMU's default) connects " +
        'before the guest starts',
    );
  }
  const reconnectMs = opts.has('reconnect')
    ? (opts.get('reconnect') as number) * 1000
    : ((opts.get('reconnect-ms') as number | undefined) ?? 0);
  if (reconnectMs > MAX_RECONNECT_MS) {
    throw invalid(`reconnect interval ${reconnectMs} ms is over the limit (${MAX_RECONNECT_MS})`);
  }
  return {
    backend: 'socket',
    address,
    server,
    wait: server && (flag('wait') ?? true),
    nodelay: form === 'tcp' && (flag('nodelay') ?? !(flag('delay') ?? false)),
    reconnectMs,
    ...(logfile && { logfile }),
  };
}

/** QemuOpts splitting: options are comma-separated, and `,,` is a comma inside a value. */
function splitOptions(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== ',') {
      current += text[i];
    } else if (text[i + 1] === ',') {
      current += ',';
      i++;
    } else {
      parts.push(current);
      current = '';
    }
  }
  parts.push(current);
  return parts;
}

/** name=value pairs, checked against `allowed`; QEMU's bare `name` and `noname` are booleans. */
function readOptions(
  text: string,
  option: string,
  items: string[],
  allowed: Record<string, OptionType>,
): Map<string, boolean | number | string> {
  const names = Object.keys(allowed);
  const values = new Map<string, boolean | number | string>();
  for (const item of items) {
    const eq = item.indexOf('=');
    let name = eq < 0 ? item : item.slice(0, eq);
    let value = eq < 0 ? 'on' : item.slice(eq + 1);
    if (eq < 0 && !Object.hasOwn(allowed, name) && name.startsWith('no')) {
      // QemuOpts' legacy short form: `nowait` is wait=off
      if (allowed[name.slice(2)] === 'bool') [name, value] = [name.slice(2), 'off'];
    }
    if (name === '') {
      throw new Error(`invalid ${option} '${text}': empty option (a stray comma?)`);
    }
    const type = Object.hasOwn(allowed, name) ? allowed[name] : undefined;
    if (type === undefined) {
      throw new Error(
        `unknown ${option} option '${item}' in '${text}': allowed are ${names.join(', ')}`,
      );
    }
    if (eq < 0 && type !== 'bool') {
      throw new Error(`invalid ${option} '${text}': '${name}' needs a value (${name}=...)`);
    }
    const bad = (what: string): Error =>
      new Error(`invalid value '${value}' for '${name}' in ${option} '${text}': expected ${what}`);
    if (type === 'bool') {
      const parsed = parseBool(value);
      if (parsed === undefined) throw bad('on or off');
      values.set(name, parsed);
    } else if (type === 'number') {
      if (!/^\d{1,10}$/.test(value)) {
        throw bad(name === 'reconnect' ? 'a whole number of seconds' : 'a whole number of ms');
      }
      values.set(name, Number(value));
    } else {
      if (value === '') throw bad('a file path');
      values.set(name, value);
    }
  }
  return values;
}

/** QEMU's qapi_bool_parse: on/yes/true/y and off/no/false/n. */
function parseBool(value: string): boolean | undefined {
  if (['on', 'yes', 'true', 'y'].includes(value)) return true;
  if (['off', 'no', 'false', 'n'].includes(value)) return false;
  return undefined;
}
