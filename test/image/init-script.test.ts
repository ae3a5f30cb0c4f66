// The guest's /init and workload script keep the contract the PC machine relies on (markers,
// mounts, workload syntax). Nothing is booted: these check the text.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  INIT_SCRIPT,
  PROFILE,
  WORKLOAD_SCRIPT,
  guestScripts,
} from '../../src/image/init-script.js';

test('/init installs busybox and mounts proc, sysfs, devtmpfs and a tmpfs', () => {
  assert.ok(INIT_SCRIPT.startsWith('#!/bin/busybox sh\n'));
  for (const s of [
    '/bin/busybox --install -s\n',
    'mount -t proc proc /proc\n',
    'mount -t sysfs sysfs /sys\n',
    'mount -t devtmpfs devtmpfs /dev\n',
    'mount -t tmpfs tmpfs /tmp\n',
  ]) {
    assert.ok(INIT_SCRIPT.includes(s), s);
  }
});

test('/init prints its markers on ttyS0: init after the mounts, ready right before the shell', () => {
  const init = INIT_SCRIPT.indexOf("echo 'livemig-guest: init' > /dev/ttyS0");
  const ready = INIT_SCRIPT.indexOf("echo 'livemig-guest: ready' > /dev/ttyS0");
  const shell = INIT_SCRIPT.indexOf(
    'while true; do setsid cttyhack sh -l </dev/ttyS0 >/dev/ttyS0 2>&1; done',
  );
  assert.ok(init > INIT_SCRIPT.indexOf('mount -t devtmpfs'), 'init marker after /dev exists');
  assert.ok(ready > init && shell > ready, 'ready, then the shell');
  assert.equal(
    INIT_SCRIPT.slice(ready)
      .split('\n')
      .filter((l) => l && !l.startsWith('#')).length,
    2,
  );
});

test('/init reads livemig.workload= from /proc/cmdline and hands it to livemig-workload', () => {
  assert.ok(INIT_SCRIPT.includes('for a in $(cat /proc/cmdline); do'));
  assert.ok(INIT_SCRIPT.includes('livemig.workload=*) W="${a#livemig.workload=}"'));
  assert.ok(INIT_SCRIPT.includes('/bin/livemig-workload "$W"'));
});

test('livemig-workload: cp:SIZE with M and K, counter[:SECONDS], unknown ones reported', () => {
  const w = WORKLOAD_SCRIPT;
  assert.ok(w.includes('IFS=,'), 'a comma-separated list');
  assert.ok(
    w.includes('cp:*[0-9]M) n=${w#cp:} && n=${n%M} && is_count "$n" && start_cp "$n" 1048576'),
  );
  assert.ok(
    w.includes('cp:*[0-9]K) n=${w#cp:} && n=${n%K} && is_count "$n" && start_cp "$n" 1024'),
  );
  assert.ok(w.includes('dd if=/dev/urandom of=/tmp/livemig-src bs="$2" count="$1"'));
  assert.ok(w.includes('while true; do cp /tmp/livemig-src /tmp/livemig-dst; done'));
  assert.ok(w.includes('counter) start_counter 1 "$w"'), 'counter defaults to 1 s');
  assert.ok(w.includes('counter:*) n=${w#counter:} && is_count "$n" && start_counter "$n"'));
  assert.ok(w.includes('say "livemig-counter $n"'));
  assert.ok(w.includes('sleep "$1"'));
  assert.ok(w.includes(`say "livemig-guest: unknown workload '$w'"`));
  assert.ok(w.includes('say() { echo "$*" > /dev/ttyS0; }'));
  // Workloads run in the background so that /init goes on to the shell.
  assert.equal((w.match(/\) <\/dev\/null >\/dev\/null 2>&1 &\n/g) ?? []).length, 2);
});

test('the shell gets the livemig# prompt and HOME=/root through /etc/profile', () => {
  assert.ok(PROFILE.includes("export PS1='livemig# '"));
  assert.ok(PROFILE.includes('export HOME=/root'));
  assert.ok(INIT_SCRIPT.includes('export HOME=/root'));
  const scripts = guestScripts();
  assert.equal(scripts['/etc/profile'].text, PROFILE);
  assert.equal(scripts['/bin/livemig-workload'].mode, 0o755);
  assert.equal(scripts['/init'].mode, 0o755);
});
