// The addon is optional: when it is not built (or disabled), livemig still works, dsa: paths
// say "hardware path unavailable" with the reason, and the hardware tests skip saying why. The
// install script never fails the install, even when the compiler does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonStatus } from '../../src/accel/hw/addon.js';
import { cpuSupport } from '../../src/accel/hw/cpu.js';
import { openAccelerator } from '../../src/accel/driver.js';
import { fakeIdxd } from './hw-helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

async function withAddon<T>(setting: string, f: () => Promise<T>): Promise<T> {
  const saved = process.env.LIVEMIG_DSA_ADDON;
  process.env.LIVEMIG_DSA_ADDON = setting;
  try {
    return await f();
  } finally {
    if (saved === undefined) delete process.env.LIVEMIG_DSA_ADDON;
    else process.env.LIVEMIG_DSA_ADDON = saved;
  }
}

test('this build: the addon status is reported either way', () => {
  const s = addonStatus();
  console.log(
    s.available ? `native addon loaded from ${s.path}` : `native addon unavailable: ${s.reason}`,
  );
  assert.equal(typeof s.available, 'boolean');
});

test('without the addon: dsa: says "hardware path unavailable" and why; dsa-emu: works', async () => {
  const idxd = fakeIdxd();
  try {
    await withAddon('off', async () => {
      const s = addonStatus();
      assert.equal(s.available, false);
      assert.equal(cpuSupport().cpuid, undefined);
      await assert.rejects(
        openAccelerator(['dsa:/dev/dsa/wq0.0'], { sysfs: idxd.sysfs, hw: { allowFifo: true } }),
        /dsa0\/wq0.0 is a usable shared work queue, but the hardware path is unavailable: disabled by LIVEMIG_DSA_ADDON=off\. .* use the emulated device instead, e\.g\. accel-path=dsa-emu:dsa0\/wq0\.0/,
      );
      const accel = await openAccelerator(['dsa-emu:dsa0/wq0.0'], { slots: 2, maxPages: 8 });
      const block = new SharedArrayBuffer(8 * 4096);
      new Uint8Array(block)[5 * 4096 + 7] = 1;
      const results = new Uint8Array(8);
      const zeros = await accel.zeroPages(
        block,
        Uint32Array.of(0, 1, 2, 3, 4, 5, 6, 7),
        8,
        results,
      );
      assert.equal(zeros, 7);
      await accel.close();
    });
  } finally {
    idxd.cleanup();
  }
});

test('a missing build explains itself, with the install log reason when there is one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-noaddon-'));
  try {
    const path = join(dir, 'build', 'Release', 'livemig_dsa.node');
    await withAddon(path, async () => {
      const s = addonStatus();
      assert.equal(s.available, false);
      assert.match(
        (s as { reason: string }).reason,
        /was not built \(npm ci builds it; npm run build:addon rebuilds it\)/,
      );
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing compile: the install script still exits 0, says why, and livemig runs without it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-badaddon-'));
  try {
    cpSync(join(ROOT, 'binding.gyp'), join(dir, 'binding.gyp'));
    cpSync(join(ROOT, 'native'), join(dir, 'native'), { recursive: true });
    appendFileSync(join(dir, 'native', 'livemig_dsa.c'), '\n#error deliberately broken\n');
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-addon.mjs'), dir], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `the install never fails:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /livemig: native DSA addon NOT built: /);
    assert.match(
      r.stdout,
      /livemig works without it: dsa-emu: work queues as before; dsa: \(real DSA\) paths report "hardware path unavailable"/,
    );
    const status = JSON.parse(readFileSync(join(dir, 'build', 'addon-status.json'), 'utf8'));
    assert.equal(status.built, false);
    if (/node-gyp was not found/.test(status.reason)) {
      t.diagnostic('node-gyp is not available here: the compile failure itself was not exercised');
      return;
    }
    assert.match(status.reason, /#error deliberately broken/);
    assert.equal(existsSync(join(dir, 'build', 'Release', 'livemig_dsa.node')), false);
    // What a process of that install says about dsa: paths (a child, as the CLI would be).
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { addonStatus } from ${JSON.stringify(new URL('../../src/accel/hw/addon.js', import.meta.url).href)};
         const s = addonStatus(); console.log(s.available ? 'available' : s.reason);`,
      ],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          LIVEMIG_DSA_ADDON: join(dir, 'build', 'Release', 'livemig_dsa.node'),
        },
      },
    );
    assert.match(
      child.stdout,
      /the native addon was not built at install: error: #error deliberately broken \(npm run build:addon shows the full error\)/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the hardware tests skip, saying why, when the addon is unavailable', () => {
  const env: Record<string, string | undefined> = { ...process.env, LIVEMIG_DSA_ADDON: 'off' };
  delete env.NODE_TEST_CONTEXT; // a test run of its own, reporting TAP
  const r = spawnSync(
    process.execPath,
    ['--test', fileURLToPath(new URL('./hw-fifo.test.js', import.meta.url))],
    { encoding: 'utf8', env, timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /# SKIP native addon unavailable: disabled by LIVEMIG_DSA_ADDON=off/);
  assert.match(r.stdout, /# pass 0\n# fail 0\n/);
});
