// Monitor socket addresses in QEMU's notation: `unix:PATH` and `tcp:HOST:PORT`.

export type SocketAddress =
  | { kind: 'unix'; path: string }
  /** host undefined = every interface (QEMU's `tcp::PORT`) */
  | { kind: 'tcp'; host: string | undefined; port: number };

// QEMU's chardev options that only restate what a listening monitor does anyway.
const IGNORED_OPTIONS = new Set(['server', 'server=on', 'nowait', 'wait=off']);

export function parseSocketAddress(address: string): SocketAddress {
  const [main, ...options] = address.split(',');
  for (const option of options) {
    if (!IGNORED_OPTIONS.has(option)) {
      throw new Error(`socket address '${address}': unsupported option '${option}'`);
    }
  }
  if (main.startsWith('unix:')) {
    const path = main.slice('unix:'.length);
    if (path === '') throw new Error(`socket address '${address}': empty path`);
    return { kind: 'unix', path };
  }
  if (main.startsWith('tcp:')) {
    const rest = main.slice('tcp:'.length);
    const colon = rest.lastIndexOf(':');
    if (colon < 0) {
      throw new Error(`socket address '${address}': expected tcp:HOST:PORT`);
    }
    let host = rest.slice(0, colon);
    const portText = rest.slice(colon + 1);
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    const port = Number(portText);
    if (!/^\d+$/.test(portText) || port > 65535) {
      throw new Error(`socket address '${address}': port must be 0..65535, got '${portText}'`);
    }
    return { kind: 'tcp', host: host === '' ? undefined : host, port };
  }
  throw new Error(`socket address '${address}': expected unix:PATH or tcp:HOST:PORT`);
}

export function formatSocketAddress(addr: SocketAddress): string {
  if (addr.kind === 'unix') return `unix:${addr.path}`;
  const host = addr.host ?? '';
  return `tcp:${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
}
