// TLS against plaintext: the same migration with and without TLS on every channel, between two
// local `livemig run` processes driven as src/bench/migrate.ts drives them (source stopped
// with -S and preallocated with --mem-prealloc, no workload). Modes alternate run by run so
// that drift on the machine falls on both. The credentials are a throwaway PKI (src/tls/pki.ts).
//
//   node dist/src/tls/bench.js --ram 4G --normal-page-ratio 0.5 --channels 2 --runs 2
//                              [--tls x509|psk] [--json FILE]

import { Command, Option } from 'commander';
import Table from 'cli-table3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalPair } from '../harness/local-migration.js';
import { median } from '../bench/stats.js';
import { integer, ratio, size } from '../cli/options.js';
import { createTestPki, type TestPki } from './pki.js';
import { parseSize } from '../util/size.js';
import { MAX_MULTIFD_CHANNELS } from '../migration/parameters.js';

interface TlsBenchOptions {
  ram: string;
  normalPageRatio: number;
  channels: number;
  runs: number;
  tls: 'x509' | 'psk';
  json?: string;
}

const values = new Command('node dist/src/tls/bench.js')
  .description('the same migration with and without TLS on every channel, alternated run by run')
  .option('--ram <size>', 'guest RAM (K/M/G; bare number = MiB)', size(4096), '4G')
  .option('--normal-page-ratio <r>', 'share of normal pages (0..1)', ratio, 0.5)
  .option('--channels <n>', 'multifd channels', integer(1, MAX_MULTIFD_CHANNELS), 2)
  .option('--runs <n>', 'runs of each mode', integer(1, 1000), 2)
  .addOption(new Option('--tls <kind>', 'credentials').choices(['x509', 'psk']).default('x509'))
  .option('--json <file>', 'write every run and the medians')
  .parse(process.argv)
  .opts<TlsBenchOptions>();

interface Run {
  mode: 'plain' | 'tls';
  totalMs: number;
  setupMs: number;
  downtimeMs: number;
  transferred: number;
  srcCpuMs: number;
  dstCpuMs: number;
  threads: Record<string, number>;
}

async function configureTls(pair: LocalPair, pki: TestPki): Promise<void> {
  const psk = values.tls === 'psk';
  const type = psk ? 'tls-creds-psk' : 'tls-creds-x509';
  await pair.dest.qmp.execute('object-add', {
    'qom-type': type,
    id: 'tls0',
    dir: psk ? pki.pskServer : pki.server,
    endpoint: 'server',
  });
  await pair.source.qmp.execute('object-add', {
    'qom-type': type,
    id: 'tls0',
    dir: psk ? pki.pskClient : pki.client,
    endpoint: 'client',
    ...(psk ? { username: pki.pskIdentity } : {}),
  });
  await pair.dest.qmp.execute('object-add', {
    'qom-type': 'authz-simple',
    id: 'authz0',
    identity: psk ? pki.pskIdentity : pki.clientDn,
  });
  await pair.dest.qmp.execute('migrate-set-parameters', {
    'tls-creds': 'tls0',
    'tls-authz': 'authz0',
  });
  await pair.source.qmp.execute('migrate-set-parameters', { 'tls-creds': 'tls0' });
}

async function runOnce(mode: Run['mode'], pki: TestPki): Promise<Run> {
  const pair = await LocalPair.start({
    ram: values.ram,
    normalPageRatio: values.normalPageRatio,
    workload: 'none',
    sourcePaused: true,
    memPrealloc: true,
  });
  try {
    if (mode === 'tls') await configureTls(pair, pki);
    const src0 = pair.source.cpuMs();
    const dst0 = pair.dest.cpuMs();
    const { source, dest } = await pair.migrate(
      { multifd: true },
      { 'multifd-channels': values.channels },
      undefined,
      25,
    );
    if (source.status !== 'completed') {
      throw new Error(`${mode} migration ${source.status}: ${String(source['error-desc'])}`);
    }
    const ram = source.ram as Record<string, number>;
    const cpu = (b: unknown): Record<string, number> =>
      ((b as Record<string, unknown> | undefined)?.['thread-cpu-ms'] ?? {}) as Record<
        string,
        number
      >;
    const dstThreads = Object.entries(cpu(dest.livemig)).map(([k, v]) => [`dst:${k}`, v]);
    return {
      mode,
      totalMs: Number(source['total-time']),
      setupMs: Number(source['setup-time']),
      downtimeMs: Number(source.downtime),
      transferred: ram.transferred,
      srcCpuMs: pair.source.cpuMs() - src0,
      dstCpuMs: pair.dest.cpuMs() - dst0,
      threads: { ...cpu(source.livemig), ...Object.fromEntries(dstThreads) },
    };
  } finally {
    await pair.close();
  }
}

async function main(): Promise<void> {
  const runs = values.runs;
  const ramBytes = parseSize(values.ram, 'M');
  const root = mkdtempSync(join(tmpdir(), 'livemig-tls-bench-'));
  const results: Run[] = [];
  try {
    const pki = createTestPki(root);
    for (let i = 0; i < runs; i++) {
      const order: Run['mode'][] = i % 2 === 0 ? ['plain', 'tls'] : ['tls', 'plain'];
      for (const mode of order) {
        const r = await runOnce(mode, pki);
        results.push(r);
        process.stderr.write(
          `${mode} run ${i + 1}/${runs}: total ${r.totalMs} ms (setup ${r.setupMs}), ` +
            `${(((r.transferred / r.totalMs) * 1e3) / 2 ** 20).toFixed(0)} MiB/s, ` +
            `CPU src ${r.srcCpuMs} + dst ${r.dstCpuMs} ms\n`,
        );
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const summary = (mode: Run['mode']) => {
    const rs = results.filter((r) => r.mode === mode);
    const totalMs = median(rs.map((r) => r.totalMs));
    const transferred = median(rs.map((r) => r.transferred));
    return {
      totalMs,
      setupMs: median(rs.map((r) => r.setupMs)),
      mibPerS: ((transferred / totalMs) * 1e3) / 2 ** 20,
      ramGiBPerS: ((ramBytes / totalMs) * 1e3) / 2 ** 30,
      cpuS: median(rs.map((r) => (r.srcCpuMs + r.dstCpuMs) / 1000)),
    };
  };
  const plain = summary('plain');
  const tls = summary('tls');
  const throughputRatio = plain.totalMs / tls.totalMs;
  const t = new Table({
    head: ['mode', 'total ms', 'setup ms', 'wire MiB/s', 'CPU src+dst s'],
    colAligns: ['left', 'right', 'right', 'right', 'right'],
    style: { head: [], border: [] },
  });
  for (const [name, x] of [
    ['plain', plain],
    ['tls', tls],
  ] as const) {
    t.push([
      name,
      x.totalMs.toFixed(0),
      x.setupMs.toFixed(0),
      x.mibPerS.toFixed(0),
      x.cpuS.toFixed(2),
    ]);
  }
  process.stdout.write(
    `RAM ${values.ram}, normal-page-ratio ${values.normalPageRatio}, ` +
      `${values.channels} channels, TLS ${values.tls}, ${runs} run(s) each, medians\n` +
      `${t.toString()}\nTLS/plain throughput ratio: ${throughputRatio.toFixed(3)}\n`,
  );
  if (values.json) {
    writeFileSync(
      values.json,
      JSON.stringify({ values, results, plain, tls, ratio: throughputRatio }, null, 2),
    );
  }
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
