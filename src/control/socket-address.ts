// Monitor socket addresses in QEMU's notation: `unix:PATH` and `tcp:HOST:PORT`.

export type SocketAddress =
  | { kind: 'unix'; path: string }
  /** host undefined = every interface (QEMU's `tcp::PORT`) */
  | { kind: 'tcp'; host: string | undefined; port: number };

/** A bad `unix:PATH` / `tcp:HOST:PORT`; callers put the whole text they were given around it. */
export class SocketAddressError extends Error {
  constructor(
    /** what is wrong, without the address: `port must be 0..65535, got 'http'` */
    readonly reason: string,
    /**
     * The text has the wrong shape ('tcp': not tcp:HOST:PORT; 'scheme': neither unix: nor tcp:)
     * rather than a bad value, so a caller may replace `reason` with its own usage line.
     */
    readonly shape?: 'tcp' | 'scheme',
  ) {
    super(reason);
    this.name = 'SocketAddressError';
  }
}

// QEMU's chardev options that only restate what a listening monitor does anyway.
const IGNORED_OPTIONS = new Set(['server', 'server=on', 'nowait', 'wait=off']);

export function parseSocketAddress(address: string): SocketAddress {
  const [main, ...options] = address.split(',');
  for (const option of options) {
    if (!IGNORED_OPTIONS.has(option)) {
      throw new Error(`socket address '${address}': unsupported option '${option}'`);
    }
  }
  try {
    return parseSocketLocation(main);
  } catch (err) {
    if (err instanceof SocketAddressError) {
      throw new Error(`socket address '${address}': ${err.reason}`);
    }
    throw err;
  }
}

/** `unix:PATH` or `tcp:HOST:PORT` alone (no `,options`); throws SocketAddressError. */
export function parseSocketLocation(main: string): SocketAddress {
  if (main.startsWith('unix:')) {
    const path = main.slice('unix:'.length);
    if (path === '') throw new SocketAddressError('empty path');
    return { kind: 'unix', path };
  }
  if (main.startsWith('tcp:')) {
    const rest = main.slice('tcp:'.length);
    const colon = rest.lastIndexOf(':');
    if (colon < 0) throw new SocketAddressError('expected tcp:HOST:PORT', 'tcp');
    let host = rest.slice(0, colon);
    const portText = rest.slice(colon + 1);
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    const port = Number(portText);
    if (!/^\d+$/.test(portText) || port > 65535) {
      throw new SocketAddressError(`port must be 0..65535, got '${portText}'`);
    }
    return { kind: 'tcp', host: host === '' ? undefined : host, port };
  }
  throw new SocketAddressError('expected unix:PATH or tcp:HOST:PORT', 'scheme');
}

export function formatSocketAddress(addr: SocketAddress): string {
  if (addr.kind === 'unix') return `unix:${addr.path}`;
  const host = addr.host ?? '';
  return `tcp:${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
}
