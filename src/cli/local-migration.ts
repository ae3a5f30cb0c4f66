// Two `livemig run` processes on loopback, driven over QMP exactly as a QEMU user would drive
// two QEMUs. Used by `livemig demo`, the migration benchmark and the end-to-end tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QmpClient } from '../control/qmp-client.js';
import { processCpuMs, procStatusKiB } from '../util/proc.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export interface GuestProcess {
  proc: ChildProcess;
  qmp: QmpClient;
  stderr: string[];
  /** peak RSS in KiB, read from /proc/PID/status (VmHWM) */
  peakRssKiB(): number;
  /** CPU ms of the whole process (user+system), from /proc/PID/stat */
  cpuMs(): number;
}

export interface LocalPairOptions {
  ram: string;
  ramBlockSize?: string;
  normalPageRatio?: number;
  workload?: string;
  sourcePaused?: boolean;
  memPrealloc?: boolean;
  destMemPrealloc?: boolean;
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
}

export class LocalPair {
  private constructor(
    readonly dir: string,
    readonly source: GuestProcess,
    readonly dest: GuestProcess,
  ) {}

  static async start(o: LocalPairOptions): Promise<LocalPair> {
    const dir = mkdtempSync(join(tmpdir(), 'livemig-'));
    const srcArgs = ['--ram', o.ram, '--normal-page-ratio', String(o.normalPageRatio ?? 0)];
    srcArgs.push('--workload', o.workload ?? 'none');
    if (o.sourcePaused) srcArgs.push('-S');
    if (o.memPrealloc) srcArgs.push('--mem-prealloc');
    const dstArgs = ['--ram', o.ram, '--incoming', 'defer'];
    if (o.destMemPrealloc) dstArgs.push('--mem-prealloc');
    if (o.ramBlockSize) {
      srcArgs.push('--ram-block-size', o.ramBlockSize);
      dstArgs.push('--ram-block-size', o.ramBlockSize);
    }
    const flags =
      o.sourceNodeFlags ?? (process.env.LIVEMIG_SOURCE_NODE_FLAGS ?? '').split(' ').filter(Boolean);
    const stdout = o.sourceStdout ?? process.env.LIVEMIG_SOURCE_STDOUT;
    const [source, dest] = await Promise.all([
      startGuest(join(dir, 'src.qmp'), srcArgs, o.env, o.launcher, flags, stdout),
      startGuest(join(dir, 'dst.qmp'), dstArgs, o.env, o.launcher),
    ]);
    return new LocalPair(dir, source, dest);
  }

  /** QEMU's sequence: capabilities on both sides, parameters, migrate-incoming, migrate. */
  async startMigration(
    caps: Record<string, boolean>,
    params: Record<string, unknown>,
  ): Promise<string> {
    const capabilities = Object.entries(caps).map(([capability, state]) => ({ capability, state }));
    await this.source.qmp.execute('migrate-set-capabilities', { capabilities });
    await this.dest.qmp.execute('migrate-set-capabilities', { capabilities });
    if (Object.keys(params).length > 0) {
      await this.source.qmp.execute('migrate-set-parameters', params);
    }
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function startGuest(
  qmpPath: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
  launcher?: string[],
  nodeFlags: string[] = [],
  stdoutFile?: string,
): Promise<GuestProcess> {
  const argv = [process.execPath, ...nodeFlags, MAIN, 'run', ...args, '--qmp', `unix:${qmpPath}`];
  const [cmd, ...rest] = [...(launcher ?? []), ...argv];
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
  const qmp = await Promise.race([
    QmpClient.connect(`unix:${qmpPath}`, { timeoutMs: 30_000 }),
    exited,
  ]);
  await qmp.negotiate();
  return {
    proc,
    qmp,
    stderr,
    peakRssKiB: () => procStatusKiB(proc.pid!, 'VmHWM') ?? 0,
    cpuMs: () => processCpuMs(proc.pid!),
  };
}

async function stopGuest(g: GuestProcess): Promise<void> {
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
