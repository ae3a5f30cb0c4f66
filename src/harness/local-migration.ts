// The local-migration harness: two `livemig run` processes on loopback, driven over QMP
// exactly as a QEMU user would drive two QEMUs. Used by `livemig demo`, the benchmarks, the
// fuzzer and the tests.

import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QmpClient } from '../control/qmp-client.js';
import { processCpuMs, procStatusKiB } from '../util/proc.js';
import { LIVEMIG_NODE_FLAGS } from '../cli/node-flags.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface GuestProcess {
  proc: ChildProcess;
  qmp: QmpClient;
  stderr: string[];
  /** --machine pc: where its serial console listens (unix:PATH) */
  console?: string;
  /** peak RSS in KiB, read from /proc/PID/status (VmHWM) */
  peakRssKiB(): number;
  /** CPU ms of the whole process (user+system), from /proc/PID/stat */
  cpuMs(): number;
}

/** A PC pair's boot files (each defaults as `livemig run --machine pc` does). */
export interface LocalPcOptions {
  kernel?: string;
  initrd?: string;
  append?: string;
  bios?: string;
}

export interface LocalPairOptions {
  /** 'pc': both sides are PCs, each with its serial console on a unix socket (`console`) */
  machine?: 'synthetic' | 'pc';
  pc?: LocalPcOptions;
  ram: string;
  ramBlockSize?: string;
  normalPageRatio?: number;
  workload?: string;
  sourcePaused?: boolean;
  memPrealloc?: boolean;
  destMemPrealloc?: boolean;
  /** false: the source runs with --no-warm-up */
  sourceWarmUp?: boolean;
  /** extra environment for both processes */
  env?: NodeJS.ProcessEnv;
  /** a command to run both processes under, e.g. ['ip', 'netns', 'exec', 'NS'] */
  launcher?: string[];
  /**
   * Node flags for the source process, e.g. ['--trace-opt', '--trace-deopt'] (default: the
   * environment's LIVEMIG_SOURCE_NODE_FLAGS, split on spaces). For profiling a bench.
   */
  sourceNodeFlags?: string[];
  /** a file for the source's stdout, where V8's traces go (default: LIVEMIG_SOURCE_STDOUT) */
  sourceStdout?: string;
  /** the same for the destination (defaults: LIVEMIG_DEST_NODE_FLAGS, LIVEMIG_DEST_STDOUT) */
  destNodeFlags?: string[];
  destStdout?: string;
  /** how long a process may take to open its QMP socket (default 30 s; preallocating is slow) */
  qmpTimeoutMs?: number;
}

export class LocalPair {
  /** processes started so far, for unique socket names */
  private started = 0;

  private constructor(
    readonly dir: string,
    public source: GuestProcess,
    public dest: GuestProcess,
    private readonly opts: LocalPairOptions,
  ) {}

  static async start(o: LocalPairOptions): Promise<LocalPair> {
    const dir = mkdtempSync(join(tmpdir(), 'livemig-'));
    const pc = o.machine === 'pc';
    const srcArgs = ['--ram', o.ram];
    if (pc) {
      srcArgs.push('--machine', 'pc', ...pcArgs(o.pc ?? {}));
    } else {
      srcArgs.push('--normal-page-ratio', String(o.normalPageRatio ?? 0));
      srcArgs.push('--workload', o.workload ?? 'none');
    }
    if (o.sourcePaused) srcArgs.push('-S');
    if (o.memPrealloc) srcArgs.push('--mem-prealloc');
    if (o.sourceWarmUp === false) srcArgs.push('--no-warm-up');
    const dstArgs = LocalPair.destArgs(o);
    if (o.destMemPrealloc) dstArgs.push('--mem-prealloc');
    if (o.ramBlockSize) {
      srcArgs.push('--ram-block-size', o.ramBlockSize);
      dstArgs.push('--ram-block-size', o.ramBlockSize);
    }
    const flags = (given: string[] | undefined, env: string | undefined): string[] =>
      given ?? (env ?? '').split(' ').filter(Boolean);
    const [source, dest] = await Promise.all([
      startGuest(
        dir,
        'src',
        srcArgs,
        o,
        flags(o.sourceNodeFlags, process.env.LIVEMIG_SOURCE_NODE_FLAGS),
        o.sourceStdout ?? process.env.LIVEMIG_SOURCE_STDOUT,
      ),
      startGuest(
        dir,
        'dst',
        dstArgs,
        o,
        flags(o.destNodeFlags, process.env.LIVEMIG_DEST_NODE_FLAGS),
        o.destStdout ?? process.env.LIVEMIG_DEST_STDOUT,
      ),
    ]);
    const pair = new LocalPair(dir, source, dest, o);
    pair.started = 2;
    return pair;
  }

  private static destArgs(o: LocalPairOptions): string[] {
    const args = ['--ram', o.ram, '--incoming', 'defer'];
    if (o.machine === 'pc') {
      args.push('--machine', 'pc');
      if (o.pc?.bios) args.push('--bios', o.pc.bios);
    }
    if (o.destMemPrealloc) args.push('--mem-prealloc');
    if (o.ramBlockSize) args.push('--ram-block-size', o.ramBlockSize);
    return args;
  }

  /**
   * After a completed migration: the destination, now running the guest, becomes the source,
   * and a new destination is started. So one booted guest serves many migrations.
   */
  async next(): Promise<void> {
    const old = this.source;
    this.source = this.dest;
    this.dest = await startGuest(
      this.dir,
      `dst${this.started++}`,
      LocalPair.destArgs(this.opts),
      this.opts,
    );
    await stopGuest(old);
  }

  /** Replace the destination with a new one (e.g. after it was given up on). */
  async newDestination(args?: string[]): Promise<void> {
    const old = this.dest;
    this.dest = await startGuest(
      this.dir,
      `dst${this.started++}`,
      args ?? LocalPair.destArgs(this.opts),
      this.opts,
    );
    await stopGuest(old);
  }

  /** Capabilities on both sides, parameters on the source: what comes before `migrate`. */
  async configure(caps: Record<string, boolean>, params: Record<string, unknown>): Promise<void> {
    const capabilities = Object.entries(caps).map(([capability, state]) => ({ capability, state }));
    await this.source.qmp.execute('migrate-set-capabilities', { capabilities });
    await this.dest.qmp.execute('migrate-set-capabilities', { capabilities });
    if (Object.keys(params).length > 0) {
      await this.source.qmp.execute('migrate-set-parameters', params);
    }
  }

  /** QEMU's sequence: capabilities on both sides, parameters, migrate-incoming, migrate. */
  async startMigration(
    caps: Record<string, boolean>,
    params: Record<string, unknown>,
  ): Promise<string> {
    await this.configure(caps, params);
    const uri = await this.incomingUri();
    await this.source.qmp.execute('migrate', { uri });
    return uri;
  }

  /** Start the destination listening (once) and return the URI to migrate to. */
  async incomingUri(): Promise<string> {
    let din = await this.dest.qmp.execute<{ 'socket-address'?: { port: string }[] }>(
      'query-migrate',
    );
    if (!din['socket-address']) {
      await this.dest.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
      din = await this.dest.qmp.execute('query-migrate');
    }
    const port = din['socket-address']?.[0]?.port;
    if (!port) throw new Error('destination did not report its listening port');
    return `tcp:127.0.0.1:${port}`;
  }

  /** Migrate and wait for the end; returns both sides' final query-migrate. */
  async migrate(
    caps: Record<string, boolean>,
    params: Record<string, unknown>,
    onProgress?: (info: Record<string, unknown>) => void,
    pollMs = 100,
  ): Promise<{ source: MigrationResult; dest: Record<string, unknown> }> {
    await this.startMigration(caps, params);
    const source = await this.waitFinished(onProgress, pollMs);
    return { source, dest: await this.destResult(source) };
  }

  /** The destination completes a moment after the source has its acknowledgement. */
  async destResult(source: MigrationResult): Promise<Record<string, unknown>> {
    let dest: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) {
      dest = await this.dest.qmp.execute<Record<string, unknown>>('query-migrate');
      if (dest.status === 'completed' || dest.status === 'failed' || source.status !== 'completed')
        break;
      await sleep(20);
    }
    return dest;
  }

  /** Poll the source's query-migrate until `pred` holds (or a deadline passes). */
  async waitSource(
    pred: (info: MigrationResult) => boolean,
    timeoutMs = 30_000,
  ): Promise<MigrationResult> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.source.qmp.execute<MigrationResult>('query-migrate');
      if (pred(info)) return info;
      if (Date.now() > end)
        throw new Error(`timed out waiting; last status ${JSON.stringify(info)}`);
      await sleep(20);
    }
  }

  async waitFinished(
    onProgress?: (info: Record<string, unknown>) => void,
    pollMs = 100,
  ): Promise<MigrationResult> {
    for (;;) {
      const info = await this.source.qmp.execute<MigrationResult>('query-migrate');
      onProgress?.(info);
      if (['completed', 'failed', 'cancelled'].includes(info.status)) return info;
      await sleep(pollMs);
    }
  }

  async close(): Promise<void> {
    await Promise.all([stopGuest(this.source), stopGuest(this.dest)]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface MigrationResult extends Record<string, unknown> {
  status: string;
}

function pcArgs(pc: LocalPcOptions): string[] {
  const args: string[] = [];
  if (pc.kernel) args.push('--kernel', pc.kernel);
  if (pc.initrd) args.push('--initrd', pc.initrd);
  if (pc.append) args.push('--append', pc.append);
  if (pc.bios) args.push('--bios', pc.bios);
  return args;
}

/**
 * One `livemig run` process with its QMP socket (and a PC's console) in `dir`, named `name`
 * there. The pair's halves; also the bench's lone source for a remote destination.
 */
export async function startGuest(
  dir: string,
  name: string,
  args: string[],
  o: Pick<LocalPairOptions, 'env' | 'launcher' | 'qmpTimeoutMs'>,
  nodeFlags: string[] = [],
  stdoutFile?: string,
): Promise<GuestProcess> {
  const qmpPath = join(dir, `${name}.qmp`);
  const pc = args.some((a, i) => a === 'pc' && args[i - 1] === '--machine');
  const console = pc ? `unix:${join(dir, `${name}.console`)}` : undefined;
  const extra = console ? ['--serial', `${console},server=on,wait=off`] : [];
  const argv = [
    process.execPath,
    // what the command's first line gives it; the caller's flags after, so that they win
    ...LIVEMIG_NODE_FLAGS,
    ...nodeFlags,
    MAIN,
    'run',
    ...args,
    ...extra,
    '--qmp',
    `unix:${qmpPath}`,
  ];
  const [cmd, ...rest] = [...(o.launcher ?? []), ...argv];
  const env = o.env;
  // Appended to, so that a bench's runs follow each other in one file.
  const out = stdoutFile ? openSync(stdoutFile, 'a') : 'ignore';
  const proc = spawn(cmd, rest, {
    stdio: ['ignore', out, 'pipe'],
    env: { ...process.env, ...env },
  });
  if (typeof out === 'number') closeSync(out);
  const stderr: string[] = [];
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (s: string) => stderr.push(s));
  const exited = new Promise<never>((_, reject) =>
    proc.once('exit', (code) =>
      reject(new Error(`livemig run exited with code ${code}: ${stderr.join('')}`)),
    ),
  );
  exited.catch(() => {});
  let qmp: QmpClient;
  try {
    qmp = await Promise.race([
      QmpClient.connect(`unix:${qmpPath}`, { timeoutMs: o.qmpTimeoutMs ?? 30_000 }),
      exited,
    ]);
    await qmp.negotiate();
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return {
    proc,
    qmp,
    stderr,
    console,
    peakRssKiB: () => procStatusKiB(proc.pid!, 'VmHWM') ?? 0,
    cpuMs: () => processCpuMs(proc.pid!),
  };
}

/** Quit a process over QMP (killed after 5 s) and wait until it has exited. */
export async function stopGuest(g: GuestProcess): Promise<void> {
  if (g.proc.exitCode !== null || g.proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => g.proc.once('exit', () => r()));
  try {
    await g.qmp.execute('quit');
  } catch {
    // already gone
  }
  const timer = setTimeout(() => g.proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
  await g.qmp.close().catch(() => {});
}
