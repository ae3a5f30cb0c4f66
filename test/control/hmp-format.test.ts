import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatInfoMigrate,
  formatInfoMigrateParameters,
  formatInfoMigrationThreads,
  formatInfoStatus,
} from '../../src/control/hmp-format.js';

const ACTIVE = {
  status: 'active',
  'total-time': 4029,
  'setup-time': 36,
  'expected-downtime': 300,
  ram: {
    transferred: 436_868_096,
    remaining: 6_268_809_216,
    total: 17_201_438_720,
    duplicate: 466_489,
    normal: 105_457,
    'normal-bytes': 431_951_872,
    'dirty-pages-rate': 0,
    mbps: 938.034,
    'dirty-sync-count': 1,
    'postcopy-requests': 0,
    'page-size': 4096,
    'multifd-bytes': 0,
    'pages-per-second': 28_728,
    'precopy-bytes': 436_994_048,
    'downtime-bytes': 0,
    'postcopy-bytes': 0,
  },
  livemig: {
    'thread-cpu-ms': { live_migration: 812.5, multifdsend_0: 301, multifdsend_1: 298.25 },
    channels: 2,
    'downtime-precise': undefined,
    accel: { 'pages-accel': 1000, 'pages-cpu-fallback': 12 },
  },
};

test('info migrate: QEMU 10 layout, then the livemig block with CPU last', () => {
  assert.equal(
    formatInfoMigrate(ACTIVE),
    [
      'Status: active',
      'Time (ms): total=4029, setup=36, exp_down=300',
      'RAM info:',
      '  Throughput (Mbps): 938.03',
      '  Sizes (KiB): pagesize=4, total=16798280,',
      '    transferred=426629, remain=6121884,',
      '    precopy=426752, multifd=0, postcopy=0',
      '  Pages: normal=105457, zero=466489, rate_per_sec=28728',
      '  Others: dirty_syncs=1',
      'livemig:',
      '  channels: 2',
      '  Accelerator: pages-accel=1000, pages-cpu-fallback=12',
      '  CPU (ms): live_migration=812.5, multifdsend_0=301, multifdsend_1=298.25',
      '',
    ].join('\n'),
  );
});

test('info migrate: failed shows the error; optional counters appear only when non-zero', () => {
  const text = formatInfoMigrate({
    status: 'failed',
    'error-desc': 'Connection reset by peer',
    'total-time': 10,
    downtime: 5,
    ram: { 'dirty-pages-rate': 7, 'downtime-bytes': 8192, 'page-size': 4096 },
  });
  assert.match(text, /^Status: failed \(Connection reset by peer\)\n/);
  assert.match(text, /\nTime \(ms\): total=10, down=5\n/);
  assert.match(text, /\n {2}Others: dirty_syncs=0, dirty_pages_rate=7, downtime_ram=8192\n/);
  assert.equal(text.includes('livemig:'), false);
});

test('info migrate before any migration prints only the status', () => {
  assert.equal(formatInfoMigrate({ status: 'none' }), 'Status: none\n');
  assert.equal(formatInfoMigrate({}), '');
});

test('info migrate_parameters prints units and lists space-separated', () => {
  assert.equal(
    formatInfoMigrateParameters({
      'downtime-limit': 300,
      'zero-page-detection': 'dsa-accel',
      'accel-path': ['dsa:/dev/dsa/wq0.0', { type: 'dsa-emu', device: 'dsa0' }],
    }),
    'downtime-limit: 300 ms\nzero-page-detection: dsa-accel\n' +
      'accel-path: dsa:/dev/dsa/wq0.0 {"type":"dsa-emu","device":"dsa0"}\n',
  );
});

test('info status names the run state when paused for a reason', () => {
  assert.equal(
    formatInfoStatus({ status: 'inmigrate', running: false, singlestep: false }),
    'VM status: paused (inmigrate)\n',
  );
});

test('info migrationthreads: NAME (tid=ID) per thread, CPU when known', () => {
  assert.equal(formatInfoMigrationThreads([]), 'No migration threads found\n');
  assert.equal(
    formatInfoMigrationThreads([
      { name: 'live_migration', 'thread-id': 1, 'cpu-ms': 812.5 },
      { name: 'multifdsend_0', 'thread-id': 2, 'cpu-ms': 301.126 },
      { name: 'multifdrecv_0', 'thread-id': 3 },
    ]),
    'live_migration (tid=1), cpu=812.5 ms\n' +
      'multifdsend_0 (tid=2), cpu=301.13 ms\n' +
      'multifdrecv_0 (tid=3)\n',
  );
});
