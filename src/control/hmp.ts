// The Human Monitor: QEMU's `(qemu)` prompt over any readable/writable pair (the CLI passes
// stdin/stdout for `--monitor stdio`), driving the same MigrationHost as QMP.

import { StringDecoder } from 'node:string_decoder';
import type { HostEvent, MigrationHost } from './host.js';
import { parameterFromString } from '../migration/parameters.js';
import { genericError } from '../util/errors.js';
import { parseObjectKeyval } from '../tls/objects.js';
import {
  formatInfoMigrate,
  formatInfoMigrateCapabilities,
  formatInfoMigrateParameters,
  formatInfoMigrationThreads,
  formatInfoStatus,
  formatStatusLines,
} from './hmp-format.js';
import { LIVEMIG_PACKAGE, LIVEMIG_VERSION, QEMU_COMPAT_VERSION } from './version.js';

export { formatInfoMigrate } from './hmp-format.js';

export const HMP_PROMPT = '(qemu) ';

export interface HmpOptions {
  /** How often a non-detached `migrate` re-reads the status, besides on MIGRATION events (ms). */
  pollIntervalMs?: number;
}

/** A mistake in the command line itself, printed as QEMU's monitor parser prints it. */
class HmpUsageError extends Error {}

interface HmpContext {
  readonly host: MigrationHost;
  readonly pollIntervalMs: number;
  print(text: string): void;
  /** The command asked the process to end: no prompt follows. */
  quit(): void;
}

interface HmpCommand {
  readonly params: string;
  readonly help: string;
  run(ctx: HmpContext, args: string): void | Promise<void>;
}

// Statuses in which a migration is still under way (QEMU's migration_is_running()).
const RUNNING_STATUSES = new Set([
  'setup',
  'active',
  'pre-switchover',
  'device',
  'wait-unplug',
  'cancelling',
]);

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w.length > 0);
}

/** Exactly `names.length` whitespace-separated arguments. */
function takeArgs(command: string, args: string, names: readonly string[]): string[] {
  const w = words(args);
  if (w.length < names.length) {
    throw new HmpUsageError(`${command}: parameter '${names[w.length]}' is missing`);
  }
  if (w.length > names.length) {
    throw new HmpUsageError(`${command}: extraneous characters at the end of line`);
  }
  return w;
}

/** Resolves with the final query-migrate once the migration is no longer running. */
function waitForMigrationEnd(
  host: MigrationHost,
  pollMs: number,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      try {
        const info = host.queryMigrate();
        if (!RUNNING_STATUSES.has(String(info.status))) {
          stop();
          resolve(info);
        }
      } catch (err) {
        stop();
        reject(err as Error);
      }
    };
    const onEvent = (e: HostEvent): void => {
      if (e.event === 'MIGRATION') check();
    };
    const timer = setInterval(check, pollMs);
    const stop = (): void => {
      clearInterval(timer);
      host.off('event', onEvent);
    };
    host.on('event', onEvent);
    check();
  });
}

const INFO_COMMANDS: Readonly<Record<string, HmpCommand>> = {
  migrate: {
    params: '',
    help: 'show migration status',
    run: (ctx) => ctx.print(formatInfoMigrate(ctx.host.queryMigrate())),
  },
  migrate_parameters: {
    params: '',
    help: 'show current migration parameters',
    run: (ctx) => ctx.print(formatInfoMigrateParameters(ctx.host.queryParameters())),
  },
  migrate_capabilities: {
    params: '',
    help: 'show current migration capabilities',
    run: (ctx) => ctx.print(formatInfoMigrateCapabilities(ctx.host.queryCapabilities())),
  },
  migrationthreads: {
    params: '',
    help: 'show migration thread info',
    run: (ctx) => ctx.print(formatInfoMigrationThreads(ctx.host.queryMigrationThreads())),
  },
  status: {
    params: '',
    help: 'show the current VM status (running|paused)',
    run: (ctx) => ctx.print(formatInfoStatus(ctx.host.queryStatus())),
  },
  version: {
    params: '',
    help: 'show the version of QEMU this monitor follows, and livemig',
    run: (ctx) => {
      const v = QEMU_COMPAT_VERSION;
      ctx.print(`${v.major}.${v.minor}.${v.micro} (${LIVEMIG_PACKAGE})\n`);
    },
  },
};

function helpLines(table: Readonly<Record<string, HmpCommand>>, prefix = ''): string {
  return Object.entries(table)
    .map(([name, c]) => `${prefix}${name}${c.params ? ' ' + c.params : ''} -- ${c.help}\n`)
    .join('');
}

const COMMANDS: Readonly<Record<string, HmpCommand>> = {
  help: {
    params: '[cmd]',
    help: 'show the help',
    run(ctx, args) {
      const [name] = words(args);
      if (name === undefined) ctx.print(helpLines(COMMANDS) + helpLines(INFO_COMMANDS, 'info '));
      else if (name === 'info') ctx.print(helpLines(INFO_COMMANDS, 'info '));
      else if (Object.hasOwn(COMMANDS, name)) ctx.print(helpLines({ [name]: COMMANDS[name] }));
      else throw new HmpUsageError(`unknown command: '${name}'`);
    },
  },
  info: {
    params: '[subcommand]',
    help: 'show various information about the system state',
    run(ctx, args) {
      const [sub, ...rest] = words(args);
      if (sub === undefined) {
        ctx.print(helpLines(INFO_COMMANDS, 'info '));
        return;
      }
      if (!Object.hasOwn(INFO_COMMANDS, sub)) {
        throw new HmpUsageError(`unknown command: 'info ${sub}'`);
      }
      if (rest.length > 0)
        throw new HmpUsageError(`${sub}: extraneous characters at the end of line`);
      return INFO_COMMANDS[sub].run(ctx, '');
    },
  },
  migrate: {
    params: '[-d] uri',
    help: 'migrate to URI (using -d to not wait for completion)',
    async run(ctx, args) {
      let detach = false;
      const w = words(args);
      while (w.length > 0 && /^-[a-z]+$/i.test(w[0])) {
        for (const flag of w[0].slice(1)) {
          if (flag === 'd') detach = true;
          else if (flag === 'r') {
            throw genericError('resume is not supported: livemig has no postcopy to resume');
          } else throw new HmpUsageError(`migrate: unsupported option -${flag}`);
        }
        w.shift();
      }
      const [uri] = takeArgs('migrate', w.join(' '), ['uri']);
      await ctx.host.migrate(uri);
      if (detach) return;
      // Like QEMU, the monitor stays busy (input queues) until the migration is over.
      const info = await waitForMigrationEnd(ctx.host, ctx.pollIntervalMs);
      if (info.status === 'failed') {
        throw genericError(
          typeof info['error-desc'] === 'string' ? info['error-desc'] : 'migration failed',
        );
      }
      ctx.print(formatStatusLines(info).join('\n') + '\n');
    },
  },
  migrate_incoming: {
    params: 'uri',
    help: 'continue an incoming migration from an -incoming defer',
    async run(ctx, args) {
      const [uri] = takeArgs('migrate_incoming', args, ['uri']);
      await ctx.host.migrateIncoming(uri);
    },
  },
  migrate_cancel: {
    params: '',
    help: 'cancel the current VM migration',
    run(ctx, args) {
      takeArgs('migrate_cancel', args, []);
      ctx.host.migrateCancel();
    },
  },
  migrate_continue: {
    params: 'state',
    help: 'continue migration from the given paused state (pre-switchover)',
    run(ctx, args) {
      const [state] = takeArgs('migrate_continue', args, ['state']);
      ctx.host.migrateContinue(state);
    },
  },
  migrate_set_capability: {
    params: 'capability state',
    help: 'Enable/Disable the usage of a capability for migration',
    run(ctx, args) {
      const [capability, state] = takeArgs('migrate_set_capability', args, ['capability', 'state']);
      if (state !== 'on' && state !== 'off') {
        throw new HmpUsageError(`migrate_set_capability: Expected 'on' or 'off'`);
      }
      if (!ctx.host.queryCapabilities().some((c) => c.capability === capability)) {
        throw genericError(`Invalid parameter '${capability}'`);
      }
      ctx.host.setCapabilities([{ capability, state: state === 'on' }]);
    },
  },
  migrate_set_parameter: {
    params: 'parameter value',
    help: 'Set the parameter for migration (or parameter=value; value = rest of the line)',
    run(ctx, args) {
      const { name, value } = splitParameterArgs(args);
      if (!Object.hasOwn(ctx.host.queryParameters(), name)) {
        throw genericError(`Invalid parameter '${name}'`);
      }
      ctx.host.setParameters({ [name]: parameterFromString(name, value) });
    },
  },
  object_add: {
    params: '[qom-type=]type,id=str[,prop=value][,...]',
    help: 'create QOM object',
    run(ctx, args) {
      if (args.trim() === '') throw new HmpUsageError("object_add: parameter 'object' is missing");
      ctx.host.objectAdd(parseObjectKeyval(args.trim()));
    },
  },
  object_del: {
    params: 'id',
    help: 'destroy QOM object',
    run(ctx, args) {
      const [id] = takeArgs('object_del', args, ['id']);
      ctx.host.objectDel(id);
    },
  },
  stop: {
    params: '',
    help: 'stop emulation',
    run(ctx, args) {
      takeArgs('stop', args, []);
      ctx.host.stop();
    },
  },
  cont: {
    params: '',
    help: 'resume emulation',
    run(ctx, args) {
      takeArgs('cont', args, []);
      ctx.host.cont();
    },
  },
  quit: {
    params: '',
    help: 'quit the emulator',
    run(ctx, args) {
      takeArgs('quit', args, []);
      ctx.quit();
      ctx.host.quit();
    },
  },
};

const ALIASES: Readonly<Record<string, string>> = { c: 'cont', q: 'quit', '?': 'help', h: 'help' };

/**
 * `NAME VALUE` (QEMU) or `NAME=VALUE` (the DSA patch series). Everything after the name is the value, so
 * `accel-path=dsa:/dev/dsa/wq0.0 dsa:/dev/dsa/wq1.0` carries both paths (QEMU's `value:S`).
 */
export function splitParameterArgs(args: string): { name: string; value: string } {
  const text = args.trim();
  const space = text.search(/\s/);
  const first = space < 0 ? text : text.slice(0, space);
  const eq = first.indexOf('=');
  if (eq > 0) return { name: text.slice(0, eq), value: text.slice(eq + 1).trim() };
  if (first === '') {
    throw new HmpUsageError(`migrate_set_parameter: parameter 'parameter' is missing`);
  }
  if (space < 0) throw new HmpUsageError(`migrate_set_parameter: parameter 'value' is missing`);
  return { name: first, value: text.slice(space).trim() };
}

/** Runs HMP command lines one at a time, in order, and returns what each printed. */
export class Hmp {
  private chain: Promise<unknown> = Promise.resolve();
  private quitRequested = false;

  constructor(
    private readonly host: MigrationHost,
    private readonly options: HmpOptions = {},
  ) {}

  /** True once `quit` has run. */
  get quitting(): boolean {
    return this.quitRequested;
  }

  execute(line: string): Promise<string> {
    const result = this.chain.then(() => this.run(line));
    this.chain = result.catch(() => undefined);
    return result;
  }

  private async run(line: string): Promise<string> {
    if (this.quitRequested) return ''; // lines read ahead of `quit` do not run
    let out = '';
    const ctx: HmpContext = {
      host: this.host,
      pollIntervalMs: this.options.pollIntervalMs ?? 250,
      print: (text) => (out += text),
      quit: () => (this.quitRequested = true),
    };
    const trimmed = line.trim();
    if (trimmed === '') return '';
    const space = trimmed.search(/\s/);
    const word = space < 0 ? trimmed : trimmed.slice(0, space);
    const args = space < 0 ? '' : trimmed.slice(space + 1);
    const name = ALIASES[word] ?? word;
    if (!Object.hasOwn(COMMANDS, name)) return `unknown command: '${word}'\n`;
    try {
      await COMMANDS[name].run(ctx, args);
    } catch (err) {
      if (err instanceof HmpUsageError) {
        out += `${err.message}\nTry "help ${name}" for more information\n`;
      } else {
        out += `Error: ${err instanceof Error ? err.message : String(err)}\n`;
      }
    }
    return out;
  }
}

export interface HmpSession {
  readonly hmp: Hmp;
  /** Resolves when the input has ended and its commands have run, or after `quit`. */
  readonly finished: Promise<void>;
  /** Stop reading input; commands already read still run. */
  close(): void;
}

/** Longest command line accepted; a longer one is discarded with a message. */
const MAX_LINE_CHARS = 64 * 1024;
/** Lines read ahead of a busy command before input is paused. */
const MAX_QUEUED_LINES = 64;

/** Prints the banner and prompt, then runs every line read from `input`. */
export function startHmp(
  host: MigrationHost,
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  options: HmpOptions = {},
): HmpSession {
  const hmp = new Hmp(host, options);
  const decoder = new StringDecoder('utf8');
  let partial = '';
  let discarding = false; // inside an over-long line
  let queued = 0;
  let closed = false;
  let last: Promise<void> = Promise.resolve();
  let markFinished: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (markFinished = resolve));

  output.write(`livemig ${LIVEMIG_VERSION} monitor - type 'help' for more information\n`);
  output.write(HMP_PROMPT);

  const submit = (line: string): void => {
    if (hmp.quitting) return;
    queued++;
    if (queued > MAX_QUEUED_LINES) input.pause();
    last = hmp.execute(line).then((text) => {
      queued--;
      if (queued <= MAX_QUEUED_LINES / 2 && !closed) input.resume();
      output.write(text);
      if (hmp.quitting) finish();
      else output.write(HMP_PROMPT);
    });
  };

  const onData = (chunk: string | Buffer): void => {
    partial += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl).replace(/\r$/, '');
      partial = partial.slice(nl + 1);
      if (discarding) discarding = false;
      else submit(line);
    }
    if (partial.length > MAX_LINE_CHARS) {
      partial = '';
      discarding = true;
      output.write(`Error: command line longer than ${MAX_LINE_CHARS} characters, discarded\n`);
    }
  };
  const onEnd = (): void => {
    if (partial !== '' && !discarding) submit(partial);
    partial = '';
    void last.then(finish);
  };

  function finish(): void {
    if (closed) return;
    closed = true;
    input.off('data', onData);
    input.off('end', onEnd);
    input.pause(); // a flowing stdin would keep the process alive
    markFinished();
  }

  input.on('data', onData);
  input.on('end', onEnd);

  return {
    hmp,
    finished,
    close: () => {
      input.off('data', onData);
      input.off('end', onEnd);
      void last.then(finish);
    },
  };
}
