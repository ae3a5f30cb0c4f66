// The CPU instructions real DSA submission and completion need, as CPUID (through the addon)
// and the kernel (/proc/cpuinfo flags) report them. livemig uses an instruction only when both
// say yes: the kernel hides a flag it does not support (ENQCMD without PASID support, say).

import { readFileSync } from 'node:fs';
import { loadAddon, type CpuidFeatures } from './addon.js';

export const CPU_FEATURES = ['movdir64b', 'enqcmd', 'waitpkg'] as const;
export type CpuFeature = (typeof CPU_FEATURES)[number];
export type FeatureSet = Record<CpuFeature, boolean>;

export interface CpuSupport {
  /** CPUID leaf 7 (undefined without the addon). */
  cpuid: CpuidFeatures | undefined;
  /** The flags of /proc/cpuinfo (undefined where it cannot be read). */
  kernel: FeatureSet | undefined;
  /** What livemig will use. */
  usable: FeatureSet;
}

/** The feature flags of the first processor in /proc/cpuinfo. */
export function cpuinfoFlags(text?: string): FeatureSet | undefined {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/cpuinfo', 'latin1');
    } catch {
      return undefined;
    }
  }
  const line = /^flags\s*:(.*)$/m.exec(t);
  if (!line) return undefined;
  const flags = new Set(line[1].trim().split(/\s+/));
  return {
    movdir64b: flags.has('movdir64b'),
    enqcmd: flags.has('enqcmd'),
    waitpkg: flags.has('waitpkg'),
  };
}

export function cpuSupport(): CpuSupport {
  const cpuid = loadAddon()?.cpu();
  const kernel = cpuinfoFlags();
  const usable = Object.fromEntries(
    CPU_FEATURES.map((f) => [f, !!cpuid?.[f] && (kernel ? kernel[f] : true)]),
  ) as FeatureSet;
  return { cpuid, kernel, usable };
}

/** "MOVDIR64B yes, ENQCMD no (CPUID yes, hidden by the kernel), WAITPKG no" */
export function describeCpu(s: CpuSupport): string {
  const names: Record<CpuFeature, string> = {
    movdir64b: 'MOVDIR64B',
    enqcmd: 'ENQCMD',
    waitpkg: 'WAITPKG (UMONITOR/UMWAIT)',
  };
  return CPU_FEATURES.map((f) => {
    const id = s.cpuid?.[f];
    const k = s.kernel?.[f];
    let v = s.usable[f] ? 'yes' : 'no';
    if (id === undefined) v += ' (CPUID not read: no addon)';
    else if (id && k === false) v += ' (CPUID has it, the kernel does not offer it)';
    return `${names[f]} ${v}`;
  }).join(', ');
}
