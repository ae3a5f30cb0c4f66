// Versions the control plane reports: livemig's own, and the QEMU release whose QMP it mimics
// (clients such as libvirt gate features on the QEMU version in the greeting).

import { readFileSync } from 'node:fs';

/** QEMU release whose QMP and HMP behaviour livemig follows. */
export const QEMU_COMPAT_VERSION = Object.freeze({ major: 10, minor: 2, micro: 0 });

function readPackageVersion(): string {
  try {
    // Compiled to dist/src/control/, so the package root is three levels up (also when installed).
    const url = new URL('../../../package.json', import.meta.url);
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const LIVEMIG_VERSION = readPackageVersion();

/** The `package` string of QMP's greeting and query-version. */
export const LIVEMIG_PACKAGE = `livemig ${LIVEMIG_VERSION}`;
