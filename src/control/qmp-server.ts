// The QEMU Machine Protocol server: QEMU's greeting, capabilities negotiation, command
// dispatch, error classes and events, over a UNIX socket or TCP, driving a MigrationHost.

import { createServer, type Socket } from 'node:net';
import { unlink } from 'node:fs/promises';
import type { MigrationHost, HostEvent } from './host.js';
import type { MigrationParameters } from '../migration/parameters.js';
import { QmpError, genericError } from '../util/errors.js';
import { JsonStream, type JsonItem } from './json-stream.js';
import { checkArguments, isPlainObject, type ArgSchema, type ArgType } from './qmp-args.js';
import { parseSocketAddress, formatSocketAddress, type SocketAddress } from './socket-address.js';
import { listenOn } from './socket-listen.js';
import { LIVEMIG_PACKAGE, QEMU_COMPAT_VERSION } from './version.js';
import { OBJECT_ADD_ARGS } from '../tls/objects.js';

/** What a command handler may touch: the host, and its own connection's negotiation state. */
export interface CommandContext {
  readonly host: MigrationHost;
  readonly session: { negotiated: boolean; oob: boolean };
  /** Run `fn` once the reply to this command has been written (quit needs its reply out first). */
  afterReply(fn: () => void): void;
}

export interface QmpCommand {
  readonly args: ArgSchema;
  run(ctx: CommandContext, args: Record<string, unknown>): unknown;
}

/**
 * JSON types of migrate-set-parameters' members. Keyed by MigrationParameters, so adding a
 * parameter there fails to compile until it is added here.
 */
const PARAMETER_TYPES: Readonly<Record<keyof MigrationParameters, ArgType>> = {
  'multifd-channels': 'int',
  'zero-page-detection': 'str',
  'downtime-limit': 'int',
  'max-bandwidth': 'int',
  'avail-switchover-bandwidth': 'int',
  'multifd-packet-size': 'int',
  // the DSA patch series' `dsa:/dev/dsa/wq0.0` strings, or structured {"type": ...} objects
  'accel-path': { list: { alternate: ['str', 'dict'] } },
  'cpu-throttle-initial': 'int',
  'cpu-throttle-increment': 'int',
  'max-cpu-throttle': 'int',
  'cpu-throttle-tailslow': 'bool',
  'throttle-trigger-threshold': 'int',
  'x-stall-timeout': 'int',
  'x-migration-nice': 'int',
  // QEMU's StrOrNull (null = ""); parameters.ts checks the type
  'tls-creds': 'any',
  'tls-hostname': 'any',
  'tls-authz': 'any',
};

// Values (allowed modes, ranges) are checked by the host through parameters.ts; the schema
// only checks names and JSON types, as QAPI does before a command runs.
const PARAMETER_ARGS: ArgSchema = Object.fromEntries(
  Object.entries(PARAMETER_TYPES).map(([name, type]) => [name, { type, optional: true }]),
);

const NO_ARGS: ArgSchema = {};

/** Every command livemig's QMP accepts: its argument schema and what it does. */
export const QMP_COMMANDS: Readonly<Record<string, QmpCommand>> = {
  qmp_capabilities: {
    args: { enable: { type: { list: { enum: ['oob'] } }, optional: true } },
    run(ctx, args) {
      if (ctx.session.negotiated) {
        throw new QmpError(
          'CommandNotFound',
          'Capabilities negotiation is already complete, command ignored',
        );
      }
      ctx.session.negotiated = true;
      ctx.session.oob = ((args.enable as string[] | undefined) ?? []).includes('oob');
    },
  },
  'query-commands': {
    args: NO_ARGS,
    run: () => Object.keys(QMP_COMMANDS).map((name) => ({ name })),
  },
  'query-version': {
    args: NO_ARGS,
    run: () => ({ qemu: { ...QEMU_COMPAT_VERSION }, package: LIVEMIG_PACKAGE }),
  },
  'migrate-set-capabilities': {
    args: {
      capabilities: {
        type: {
          list: { struct: { capability: { type: 'str' }, state: { type: 'bool' } } },
        },
      },
    },
    run: (ctx, args) => ctx.host.setCapabilities(args.capabilities),
  },
  'query-migrate-capabilities': {
    args: NO_ARGS,
    run: (ctx) => ctx.host.queryCapabilities(),
  },
  'migrate-set-parameters': {
    args: PARAMETER_ARGS,
    run: (ctx, args) => ctx.host.setParameters(args),
  },
  'query-migrate-parameters': {
    args: NO_ARGS,
    run: (ctx) => ctx.host.queryParameters(),
  },
  migrate: {
    // detach is accepted and ignored: QMP's migrate never waits (QEMU ignores it as well)
    args: {
      uri: { type: 'str' },
      detach: { type: 'bool', optional: true },
      resume: { type: 'bool', optional: true },
    },
    run(ctx, args) {
      if (args.resume === true) {
        throw genericError(
          "Parameter 'resume' is not supported: livemig has no postcopy, so there is no " +
            'paused migration to resume; start a new migration instead',
        );
      }
      return ctx.host.migrate(args.uri as string);
    },
  },
  'migrate-incoming': {
    args: { uri: { type: 'str' } },
    run: (ctx, args) => ctx.host.migrateIncoming(args.uri as string),
  },
  'query-migrate': {
    args: NO_ARGS,
    run: (ctx) => ctx.host.queryMigrate(),
  },
  migrate_cancel: {
    args: NO_ARGS,
    run: (ctx) => ctx.host.migrateCancel(),
  },
  stop: {
    args: NO_ARGS,
    run: (ctx) => ctx.host.stop(),
  },
  cont: {
    args: NO_ARGS,
    run: (ctx) => ctx.host.cont(),
  },
  'query-status': {
    args: NO_ARGS,
    run: (ctx) => ctx.host.queryStatus(),
  },
  quit: {
    args: NO_ARGS,
    run(ctx) {
      ctx.afterReply(() => ctx.host.quit());
    },
  },
  // QEMU's (deprecated since 9.2, still present in 10.x): [{name, thread-id}]. livemig adds
  // each thread's own CPU time as `cpu-ms`.
  'query-migrationthreads': {
    args: NO_ARGS,
    run: (ctx) => ctx.host.queryMigrationThreads(),
  },
  'migrate-continue': {
    args: { state: { type: 'str' } },
    run(ctx, args) {
      ctx.host.migrateContinue(args.state as string);
      return {};
    },
  },
  // QEMU's yank: close every socket of a migration hung on a dead peer, at once.
  yank: {
    args: { instances: { type: { list: 'dict' } } },
    run(ctx, args) {
      const instances = args.instances as { type?: unknown }[];
      for (const i of instances) {
        if (i.type !== 'migration') {
          throw genericError(
            `yank instance type ${JSON.stringify(i.type)} not found: livemig has only 'migration'`,
          );
        }
      }
      if (instances.length > 0) ctx.host.yank();
      return {};
    },
  },
  'query-yank': {
    args: NO_ARGS,
    run: (ctx) => (ctx.host.yankable() ? [{ type: 'migration' }] : []),
  },
  // QEMU's user-creatable objects: tls-creds-x509, tls-creds-psk, authz-simple (src/tls).
  'object-add': {
    args: OBJECT_ADD_ARGS,
    run: (ctx, args) => ctx.host.objectAdd(args),
  },
  'object-del': {
    args: { id: { type: 'str' } },
    run: (ctx, args) => ctx.host.objectDel(args.id as string),
  },
  // livemig's own, x- prefixed as QEMU names unstable commands: the digest x-verify-ram compares.
  'x-query-ram-digest': {
    args: NO_ARGS,
    run: async (ctx) => ({ digest: await ctx.host.ramDigest() }),
  },
};

export interface QmpServerOptions {
  /** Largest unfinished request a client may send before it is disconnected (default 1 MiB). */
  maxRequestBytes?: number;
}

export interface QmpServer {
  /** The address actually bound (for `tcp:HOST:0`, with the port the kernel chose). */
  readonly address: string;
  close(): Promise<void>;
}

const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;
/** A client that stops reading is dropped rather than letting its replies and events pile up. */
const MAX_UNREAD_OUTPUT_BYTES = 16 * 1024 * 1024;
/** Requests queued behind a running command before reading pauses (QEMU: QMP_REQ_QUEUE_LEN_MAX). */
const MAX_QUEUED_REQUESTS = 8;

export async function startQmpServer(
  host: MigrationHost,
  address: string,
  options: QmpServerOptions = {},
): Promise<QmpServer> {
  const where = parseSocketAddress(address);
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const connections = new Set<QmpConnection>();

  const server = createServer((socket) => {
    const conn = new QmpConnection(host, socket, maxRequestBytes);
    connections.add(conn);
    socket.on('close', () => connections.delete(conn));
  });

  const onEvent = (event: HostEvent): void => {
    const message = eventMessage(event);
    for (const conn of connections) conn.sendEvent(message);
  };

  await listenOn(server, where, 'QMP socket');
  host.on('event', onEvent);

  let bound: SocketAddress = where;
  const info = server.address();
  if (where.kind === 'tcp' && info !== null && typeof info === 'object') {
    bound = { kind: 'tcp', host: info.address, port: info.port };
  }

  let closing: Promise<void> | undefined;
  return {
    address: formatSocketAddress(bound),
    close() {
      closing ??= (async () => {
        host.off('event', onEvent);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const conn of connections) conn.destroy();
        await closed;
        if (where.kind === 'unix') await unlink(where.path).catch(() => undefined);
      })();
      return closing;
    },
  };
}

function eventMessage(event: HostEvent): Record<string, unknown> {
  const us = Math.round((performance.timeOrigin + performance.now()) * 1000);
  const message: Record<string, unknown> = {
    timestamp: { seconds: Math.floor(us / 1e6), microseconds: us % 1e6 },
    event: event.event,
  };
  if (event.data !== undefined) message.data = event.data;
  return message;
}

function errorBody(err: unknown): { class: string; desc: string } {
  if (err instanceof QmpError) return { class: err.errorClass, desc: err.message };
  if (err instanceof Error) return { class: 'GenericError', desc: err.message };
  return { class: 'GenericError', desc: String(err) };
}

/** One client: its negotiation state, its request queue, and its replies. */
class QmpConnection {
  private readonly session = { negotiated: false, oob: false };
  private readonly input: JsonStream;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    private readonly host: MigrationHost,
    private readonly socket: Socket,
    maxRequestBytes: number,
  ) {
    this.input = new JsonStream(maxRequestBytes);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => socket.destroy()); // a client vanishing is not the server's error
    this.send({
      QMP: {
        version: { qemu: { ...QEMU_COMPAT_VERSION }, package: LIVEMIG_PACKAGE },
        capabilities: ['oob'],
      },
    });
  }

  sendEvent(message: Record<string, unknown>): void {
    if (this.session.negotiated) this.send(message);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    const { items, overflow } = this.input.push(chunk);
    for (const item of items) this.enqueue(item);
    if (overflow) {
      this.send({
        error: {
          class: 'GenericError',
          desc: 'QMP input too large: a request exceeds the per-connection limit; closing',
        },
      });
      this.socket.end();
      this.socket.pause();
    }
  }

  // Requests run one at a time and in order, like QEMU's in-band commands.
  private enqueue(item: JsonItem): void {
    this.queued++;
    if (this.queued > MAX_QUEUED_REQUESTS) this.socket.pause();
    this.queue = this.queue.then(async () => {
      await this.handle(item);
      this.queued--;
      if (this.queued <= MAX_QUEUED_REQUESTS / 2 && !this.socket.destroyed) this.socket.resume();
    });
  }

  private async handle(item: JsonItem): Promise<void> {
    if (!item.ok) {
      this.send({ error: { class: 'GenericError', desc: item.error } });
      return;
    }
    const request = item.value;
    if (!isPlainObject(request)) {
      this.send({ error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } });
      return;
    }
    const hasId = Object.hasOwn(request, 'id');
    const reply = (body: Record<string, unknown>, after?: () => void): void =>
      this.send(hasId ? { ...body, id: request.id } : body, after);

    let after: (() => void) | undefined;
    try {
      const { name, args, oob } = this.checkRequest(request);
      if (!this.session.negotiated && name !== 'qmp_capabilities') {
        throw new QmpError(
          'CommandNotFound',
          "Expecting capabilities negotiation with 'qmp_capabilities'",
        );
      }
      const command = Object.hasOwn(QMP_COMMANDS, name) ? QMP_COMMANDS[name] : undefined;
      if (!command) throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
      if (oob) throw genericError(`The command ${name} does not support OOB`);
      checkArguments(command.args, args);
      const ctx: CommandContext = {
        host: this.host,
        session: this.session,
        afterReply: (fn) => (after = fn),
      };
      const result = (await command.run(ctx, args)) ?? {};
      reply({ return: result }, after);
    } catch (err) {
      reply({ error: errorBody(err) });
    }
  }

  /** QEMU's qmp_dispatch_check_obj: the request's own members, before the command's arguments. */
  private checkRequest(request: Record<string, unknown>): {
    name: string;
    args: Record<string, unknown>;
    oob: boolean;
  } {
    let execKey: string | undefined;
    for (const [key, value] of Object.entries(request)) {
      if (key === 'id') continue;
      if (key === 'execute' || (key === 'exec-oob' && this.session.oob)) {
        if (typeof value !== 'string') {
          throw genericError(`QMP input member '${key}' must be a string`);
        }
        if (execKey) throw genericError(`QMP input member '${key}' clashes with '${execKey}'`);
        execKey = key;
      } else if (key === 'arguments') {
        if (!isPlainObject(value)) {
          throw genericError("QMP input member 'arguments' must be an object");
        }
      } else {
        throw genericError(`QMP input member '${key}' is unexpected`);
      }
    }
    if (!execKey) throw genericError("QMP input lacks member 'execute'");
    return {
      name: request[execKey] as string,
      args: (request.arguments as Record<string, unknown> | undefined) ?? {},
      oob: execKey === 'exec-oob',
    };
  }

  private send(message: Record<string, unknown>, onFlushed?: () => void): void {
    let line: string;
    try {
      line = JSON.stringify(message) + '\r\n'; // QEMU's monitor ends lines with CRLF
    } catch (err) {
      const error = {
        class: 'GenericError',
        desc: `cannot encode reply: ${(err as Error).message}`,
      };
      line = JSON.stringify(Object.hasOwn(message, 'id') ? { error, id: message.id } : { error });
      line += '\r\n';
    }
    if (!this.socket.writable) {
      onFlushed?.();
      return;
    }
    this.socket.write(line, () => onFlushed?.());
    if (this.socket.writableLength > MAX_UNREAD_OUTPUT_BYTES) this.socket.destroy();
  }
}
