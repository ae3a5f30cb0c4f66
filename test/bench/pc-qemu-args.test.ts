// The QEMU peer's PC command line: the same kernel, initramfs and command line on both sides,
// RAM in a shared memory-backend-file, the serial console on a unix socket, and a destination
// that waits (-incoming defer, -S) so that its RAM can be compared before it runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { qemuPcArgs, type QemuPcArgs } from '../../src/bench/pc-qemu.js';

const A: QemuPcArgs = {
  name: 'q0',
  ramBytes: 256 * 1024 * 1024,
  ramFile: '/dev/shm/x/q0.ram',
  kernel: '/img/vmlinuz',
  initrd: '/img/initrd.img',
  append: 'console=ttyS0 tsc=reliable',
  serialPath: '/dev/shm/x/q0.serial',
  incoming: false,
};

function after(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

test('source: TCG PC, RAM in a shared file, the boot files, serial on a unix socket', () => {
  const a = qemuPcArgs(A);
  assert.equal(after(a, '-accel'), 'tcg');
  assert.equal(after(a, '-M'), 'pc,memory-backend=ram0');
  assert.equal(after(a, '-m'), '256');
  assert.equal(
    after(a, '-object'),
    'memory-backend-file,id=ram0,size=256M,mem-path=/dev/shm/x/q0.ram,share=on',
  );
  assert.equal(after(a, '-kernel'), '/img/vmlinuz');
  assert.equal(after(a, '-initrd'), '/img/initrd.img');
  assert.equal(after(a, '-append'), 'console=ttyS0 tsc=reliable');
  assert.equal(after(a, '-serial'), 'unix:/dev/shm/x/q0.serial,server=on,wait=off');
  assert.equal(after(a, '-name'), 'q0,debug-threads=on');
  assert.equal(after(a, '-display'), 'none');
  assert.ok(!a.includes('-incoming') && !a.includes('-S'));
});

test('destination: the same machine, -incoming defer and -S', () => {
  const a = qemuPcArgs({ ...A, name: 'q1', ramFile: '/r/q1.ram', incoming: true });
  assert.equal(after(a, '-incoming'), 'defer');
  assert.ok(a.includes('-S'));
  assert.equal(after(a, '-kernel'), '/img/vmlinuz', 'the same option ROMs as the source');
  assert.match(after(a, '-object') ?? '', /mem-path=\/r\/q1\.ram,share=on/);
});

test('RAM that is not whole MiB is refused, naming it', () => {
  assert.throws(
    () => qemuPcArgs({ ...A, ramBytes: 256 * 1024 * 1024 + 131072 }),
    /the QEMU peer needs --ram in whole MiB, got 268566528 bytes/,
  );
});
