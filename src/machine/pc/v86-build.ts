// Which v86 build livemig runs, and where its files are. A PC's saved state is tied to the exact
// emulator build, so both sides of a migration name theirs (version and wasm digest) in Hello.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface V86Build {
  /** v86's package.json version, with its git revision: "0.5.462+g5f9a90f" */
  version: string;
  /** the first 16 hex digits of v86.wasm's SHA-256 */
  wasmDigest: string;
  wasmPath: string;
}

let cached: V86Build | null = null;

export function v86Build(): V86Build {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  let pkgPath: string;
  try {
    pkgPath = require.resolve('v86/package.json');
  } catch {
    throw new Error("the v86 emulator package is not installed (npm ci installs it): 'v86'");
  }
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { version?: string };
  const wasmPath = join(dirname(pkgPath), 'build', 'v86.wasm');
  const wasmDigest = createHash('sha256').update(readFileSync(wasmPath)).digest('hex').slice(0, 16);
  cached = { version: String(pkg.version), wasmPath, wasmDigest };
  return cached;
}

/** "v86 0.5.462+g5f9a90f (wasm 0123456789abcdef)" */
export function describeV86Build(b: V86Build = v86Build()): string {
  return `v86 ${b.version} (wasm ${b.wasmDigest})`;
}
