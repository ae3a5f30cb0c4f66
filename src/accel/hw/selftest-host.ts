// The selftest's look at the host before it opens a kernel work queue: the native addon, the
// CPU's instructions, the kernel, the IOMMU parameters, CAP_SYS_RAWIO and the WQ's sysfs
// attributes. Each goes into the environment list; what stops the selftest goes into the advice.

import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { DsaTarget } from '../accel-path.js';
import { checkDsaTarget, type SysfsOptions } from '../sysfs.js';
import { formatBytes } from '../../util/size.js';
import { addonStatus } from './addon.js';
import { cpuSupport, describeCpu } from './cpu.js';

function readCapSysRawio(): boolean | undefined {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? (BigInt(`0x${m[1]}`) & (1n << 17n)) !== 0n : undefined;
  } catch {
    return undefined;
  }
}

function iommuParams(): { text: string; ok: boolean | undefined } {
  let cmdline: string;
  try {
    cmdline = readFileSync('/proc/cmdline', 'utf8');
  } catch {
    return { text: 'unknown (/proc/cmdline unreadable)', ok: undefined };
  }
  const vals = [...cmdline.matchAll(/(?:^|\s)intel_iommu=(\S+)/g)].flatMap((m) => m[1].split(','));
  const on = vals.includes('on');
  const sm = vals.includes('sm_on');
  if (on && sm) return { text: 'intel_iommu=on,sm_on on the kernel command line', ok: true };
  return {
    text: `intel_iommu=${vals.join(',') || '(not set)'} — shared WQs need the IOMMU on in scalable mode (intel_iommu=on,sm_on), unless the kernel enables it by default (then the device's pasid_enabled is 1)`,
    ok: false,
  };
}

/**
 * List the host's side of a kernel WQ in `environment`. false: the selftest cannot go on (the
 * WQ is misconfigured or the addon is missing), and `advice` says why.
 */
export async function describeHost(
  t: DsaTarget,
  sysfs: SysfsOptions | undefined,
  environment: [string, string][],
  advice: string[],
): Promise<boolean> {
  const a = addonStatus();
  environment.push([
    'native addon',
    a.available ? `loaded (${a.path})` : `unavailable: ${a.reason}`,
  ]);
  const cpu = cpuSupport();
  environment.push(['CPU', describeCpu(cpu)]);
  environment.push(['kernel', `${release()} (write() submission from 6.10 and backports)`]);
  const iommu = iommuParams();
  environment.push(['IOMMU', iommu.text]);
  const rawio = readCapSysRawio();
  environment.push([
    'CAP_SYS_RAWIO',
    rawio === undefined
      ? 'unknown'
      : rawio
        ? 'yes (the portal may be mapped)'
        : 'no (kernels from 6.10 then refuse to map the portal of any DSA or IAA device: write() is used)',
  ]);
  const check = await checkDsaTarget(t, sysfs);
  if (check.wq) {
    const w = check.wq;
    environment.push([
      'work queue',
      `${t.device}/${t.wq}: ${w.state ?? '?'}, ${w.mode ?? '?'}, type ${w.type ?? '?'}, driver ${w.driver_name ?? '?'}, size ${w.size ?? '?'}${w.mode === 'shared' ? `, threshold ${w.threshold ?? '?'}` : ''}, max_batch_size ${w.max_batch_size ?? '?'}, max_transfer_size ${w.max_transfer_size !== undefined ? formatBytes(w.max_transfer_size) : '?'}, block_on_fault ${w.block_on_fault ?? '?'}`,
    ]);
  }
  for (const wn of check.warnings) advice.push(`note: ${wn}`);
  if (!check.ok) {
    advice.push(...check.errors);
    if (iommu.ok === false && check.errors.some((e) => /PASID|idxd driver/.test(e)))
      advice.push(`the kernel command line has ${iommu.text}`);
    return false;
  }
  if (!a.available) {
    advice.push(
      `the hardware path is unavailable: ${a.reason}. livemig needs its native addon for real DSA: build it with npm run build:addon (x86-64 Linux, g++ and Node's headers)`,
    );
    return false;
  }
  return true;
}
