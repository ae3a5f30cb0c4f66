// Error paths of the hardware path, each mapped to a message a user can act on: a missing
// node, permissions, mmap refused (EPERM: CAP_SYS_RAWIO), a disabled WQ, wrong WQ settings, a
// node that is not the WQ's character device, write() failures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { parseAccelPath, type DsaTarget } from '../../src/accel/accel-path.js';
import { openAccelerator } from '../../src/accel/driver.js';
import {
  chooseSubmission,
  explainWriteError,
  type SubmissionInputs,
} from '../../src/accel/hw/wq.js';
import { explainOpenError } from '../../src/accel/sysfs.js';
import { addonSkip, fakeIdxd } from './hw-helpers.js';

const skip = addonSkip();
const EPERM = -osConstants.errno.EPERM;
const ENODEV = -osConstants.errno.ENODEV;
const target = parseAccelPath(['dsa:/dev/dsa/wq0.0'])[0] as DsaTarget;

async function openError(o: Parameters<typeof fakeIdxd>[0], hw = {}): Promise<string> {
  const idxd = fakeIdxd(o);
  try {
    await openAccelerator(['dsa:/dev/dsa/wq0.0'], { sysfs: idxd.sysfs, hw });
    return 'opened';
  } catch (e) {
    return (e as Error).message;
  } finally {
    idxd.cleanup();
  }
}

test('a missing device node says how it appears', { skip }, async () => {
  assert.match(
    await openError({ node: 'none' }),
    /device node .*wq0.0 does not exist: the work queue is not enabled with driver 'user' \(accel-config enable-wq dsa0\/wq0.0\)/,
  );
  assert.match(
    explainOpenError('ENOENT', '/dev/dsa/wq0.0', target),
    /does not exist: the work queue is not enabled with driver 'user' \(accel-config enable-wq dsa0\/wq0.0\)/,
  );
});

test('permission denied (EACCES) suggests chown', { skip }, async () => {
  assert.match(
    explainOpenError('EACCES', '/dev/dsa/wq0.0', target),
    /permission denied opening \/dev\/dsa\/wq0.0 read-write: run as root or give this user the node: sudo chown \$\(id -un\) \/dev\/dsa\/wq0.0/,
  );
  // Through openAccelerator, with the node's open refused as it is for a user without access.
  const denied = fakeIdxd();
  try {
    await assert.rejects(
      openAccelerator(['dsa:/dev/dsa/wq0.0'], {
        sysfs: {
          ...denied.sysfs,
          openNode: async () => {
            throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
          },
        },
        hw: { allowFifo: true },
      }),
      /permission denied opening (\S+)\/wq0.0 read-write: run as root .* sudo chown -R \$\(id -un\) \1\)/,
    );
  } finally {
    denied.cleanup();
  }
  if (process.getuid?.() === 0) {
    console.log('EACCES on a real node not tried: running as root, file permissions do not apply');
    return;
  }
  const idxd = fakeIdxd();
  try {
    chmodSync(idxd.node, 0o000);
    await assert.rejects(
      openAccelerator(['dsa:/dev/dsa/wq0.0'], { sysfs: idxd.sysfs, hw: { allowFifo: true } }),
      /permission denied opening .*wq0.0 read-write: .*chown/,
    );
  } finally {
    idxd.cleanup();
  }
});

test('a busy dedicated WQ and a disabled device are explained', () => {
  assert.match(explainOpenError('EBUSY', '/dev/dsa/wq0.1', target), /one opener at a time/);
  assert.match(
    explainOpenError('ENXIO', '/dev/dsa/wq0.0', target),
    /the work queue dsa0\/wq0.0 is disabled or its device is gone/,
  );
});

const cpuAll = { movdir64b: true, enqcmd: true, waitpkg: true };
const base: SubmissionInputs = {
  mode: 'shared',
  choice: 'auto',
  cpu: cpuAll,
  map: 3,
  writeError: undefined,
};

test('mmap vs write(): the portal when it maps, write() when mmap says EPERM (CAP_SYS_RAWIO)', () => {
  const mapped = chooseSubmission(base);
  assert.deepEqual(mapped, {
    ok: true,
    method: 'enqcmd',
    why: 'portal mapped; ENQCMD on the shared WQ',
    unmap: false,
  });
  const dwq = chooseSubmission({ ...base, mode: 'dedicated' });
  assert.equal(dwq.ok && dwq.method, 'movdir64b');
  assert.match(dwq.why, /MOVDIR64B on the dedicated WQ with the driver holding credits/);

  const eperm = chooseSubmission({ ...base, map: EPERM });
  assert.equal(eperm.ok && eperm.method, 'write');
  assert.match(
    eperm.why,
    /write\(\) on the node \(mapping the portal was refused \(EPERM\): kernels from 6.10 .* mark every DSA and IAA device user_submission_safe = false, .* CAP_SYS_RAWIO .*\); BATCH is refused there/,
  );

  const insist = chooseSubmission({ ...base, choice: 'mmap', map: EPERM });
  assert.equal(insist.ok, false);
  assert.match(insist.why, /CAP_SYS_RAWIO .*sudo setcap cap_sys_rawio\+ep/);

  const neither = chooseSubmission({ ...base, map: EPERM, writeError: 'EINVAL' });
  assert.equal(neither.ok, false);
  assert.match(
    neither.why,
    /cannot submit: mapping the portal was refused \(EPERM\).* and write\(\) submission is not available \(EINVAL: kernels before 6.10 without the backport have none\); run as root or grant CAP_SYS_RAWIO/,
  );
  assert.equal(neither.unmap, false);

  const noEnqcmd = chooseSubmission({ ...base, cpu: { ...cpuAll, enqcmd: false }, map: undefined });
  assert.equal(noEnqcmd.ok && noEnqcmd.method, 'write');
  assert.match(noEnqcmd.why, /this CPU does not offer ENQCMD/);

  const notAPortal = chooseSubmission({ ...base, map: ENODEV });
  assert.match(notAPortal.why, /cannot be mapped \(ENODEV\)/);

  const asked = chooseSubmission({ ...base, choice: 'write' });
  assert.equal(asked.ok && asked.method, 'write');
  assert.equal(asked.unmap, true, 'a mapped portal is given back');
});

test(
  'a disabled WQ, a disabled device, wrong type, mode, driver, and no PASID',
  { skip },
  async () => {
    assert.match(
      await openError({ wq: { state: 'disabled' } }),
      /work queue dsa0\/wq0.0 is disabled, not enabled: accel-config enable-wq dsa0\/wq0.0/,
    );
    assert.match(
      await openError({ device: { state: 'halted' } }),
      /device dsa0 is halted, not enabled: accel-config enable-device dsa0/,
    );
    assert.match(
      await openError({ wq: { type: 'kernel' } }),
      /has type 'kernel'; .* -y user -d user/,
    );
    assert.match(
      await openError({ wq: { mode: 'weird' } }),
      /is in mode 'weird'; livemig needs a shared WQ/,
    );
    assert.match(
      await openError({ wq: { driver_name: 'dmaengine' } }),
      /bound to driver 'dmaengine'; a user work queue .* needs driver 'user'/,
    );
    assert.match(
      await openError({ device: { pasid_enabled: 0 } }),
      /PASID \(shared virtual memory\) disabled, and a shared work queue needs it: .* intel_iommu=on,sm_on/,
    );
  },
);

test("only the WQ's own character device is mapped", { skip }, async () => {
  assert.match(
    await openError({ node: 'file' }),
    /is not a character device, so it is not an idxd work queue node/,
  );
  assert.match(
    await openError({ node: { symlink: '/dev/null' } }),
    /cannot verify that .*wq0.0 is the node of dsa0\/wq0.0: .*cdev_major or .*cdev_minor is missing/,
  );
  assert.match(
    await openError({
      node: { symlink: '/dev/null' },
      device: { cdev_major: 500 },
      wq: { cdev_minor: 0 },
    }),
    /is character device 1:3, but dsa0\/wq0.0 is 500:0 .*: not this work queue's node/,
  );
  assert.match(await openError({}), /is a FIFO, not the character device of a work queue/);
});

test(
  'asking for the portal on a node that has none is refused with the reason',
  { skip },
  async () => {
    assert.match(
      await openError({}, { allowFifo: true, submit: 'mmap' }),
      /submission through the portal was asked for, but (this CPU does not offer ENQCMD|the node cannot be mapped \(ENODEV\))/,
    );
  },
);

test('write() failures for good are explained (disabled WQ, halted device, EINVAL)', () => {
  assert.match(
    explainWriteError('ENXIO', target),
    /the work queue dsa0\/wq0.0 stopped taking descriptors \(ENXIO\): it was disabled or its device halted \(cat \/sys\/bus\/dsa\/devices\/wq0.0\/state/,
  );
  assert.match(
    explainWriteError('EINVAL', target),
    /BATCH descriptor or a misaligned completion record/,
  );
});
