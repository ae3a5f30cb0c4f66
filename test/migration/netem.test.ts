// A migration over an impaired link: source and destination run in a network namespace the
// test makes itself, whose loopback gets tc netem delay, loss and a rate limit. Skipped, with
// the reason, where the machine cannot create namespaces or lacks netem (sch_netem).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { LocalPair } from '../../src/harness/local-migration.js';

const NS = `livemig-netem-${process.pid}`;

function sh(cmd: string[]): void {
  execFileSync(cmd[0], cmd.slice(1), { stdio: 'pipe' });
}

/** Make the namespace with an impaired loopback; returns why not, if it cannot. */
function setup(): string | null {
  try {
    sh(['ip', 'netns', 'add', NS]);
  } catch (e) {
    return `cannot create a network namespace (${(e as Error).message.split('\n')[0]})`;
  }
  try {
    sh(['ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
    sh([
      'ip',
      'netns',
      'exec',
      NS,
      'tc',
      'qdisc',
      'add',
      'dev',
      'lo',
      'root',
      'netem',
      'delay',
      '2ms',
      'loss',
      '0.2%',
      'rate',
      '400mbit',
    ]);
    return null;
  } catch (e) {
    teardown();
    const msg = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim();
    return `tc netem unavailable in this kernel (${msg.split('\n')[0]})`;
  }
}

function teardown(): void {
  try {
    sh(['ip', 'netns', 'del', NS]);
  } catch {
    // already gone
  }
}

const reason = setup();

test(
  'migration across a link with netem delay, loss and rate completes byte-exact',
  { skip: reason ?? false },
  async () => {
    const pair = await LocalPair.start({
      ram: '32M',
      workload: 'stress:8',
      normalPageRatio: 0.5,
      launcher: ['ip', 'netns', 'exec', NS],
    });
    try {
      const { source } = await pair.migrate(
        { multifd: true, 'x-verify-ram': true },
        { 'multifd-channels': 2, 'downtime-limit': 1000 },
      );
      assert.equal(source.status, 'completed', String(source['error-desc']));
      assert.equal((source.livemig as { verify?: string }).verify, 'ok');
    } finally {
      await pair.close();
      teardown();
    }
  },
);
