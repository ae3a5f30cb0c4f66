// The archive's signature: InRelease is a clear-signed Release file, checked with gpgv against
// Debian's archive keyring when both are installed. Without them the fetch goes on, saying so:
// the SHA256 sums from Release still protect every download against corruption, not against a
// hostile mirror.

import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface SignatureOptions {
  /** gpgv's path; default: found on PATH. null: do not check. */
  gpgv?: string | null;
  /** default: Debian's archive keyring */
  keyring?: string;
}

export interface SignatureCheck {
  verified: boolean;
  /** One line for the user: who signed, or why nothing was checked. */
  text: string;
}

/** Where gpgv and the keyring are, or why the signature cannot be checked here. */
export function signatureTools(
  opts: SignatureOptions = {},
): { gpgv: string; keyring: string } | { missing: string } {
  const gpgv = opts.gpgv === undefined ? findOnPath('gpgv') : opts.gpgv;
  if (!gpgv) return { missing: 'gpgv is not installed (Debian package gpgv)' };
  const keyring = opts.keyring ?? DEBIAN_KEYRING;
  if (!existsSync(keyring)) {
    return { missing: `no keyring at ${keyring} (Debian package debian-archive-keyring)` };
  }
  return { gpgv, keyring };
}

/**
 * Check `sigFile` with gpgv: an inline-signed file alone (InRelease), or a detached signature
 * of `dataFile` (Release.gpg). Throws when the signature is bad or made by no key in the
 * keyring; `what` names the file for messages (its URL).
 */
export async function gpgvVerify(
  tools: { gpgv: string; keyring: string },
  what: string,
  sigFile: string,
  dataFile?: string,
): Promise<SignatureCheck> {
  const args = ['--status-fd', '1', '--keyring', tools.keyring, sigFile];
  if (dataFile) args.push(dataFile);
  const { stdout, stderr } = await run(tools.gpgv, args);
  const status = stdout.split('\n').filter((l) => l.startsWith('[GNUPG:] '));
  const bad = status.find((l) => / (BADSIG|REVKEYSIG|EXPKEYSIG|EXPSIG) /.test(l));
  const good = status
    .filter((l) => l.startsWith('[GNUPG:] GOODSIG '))
    .map((l) => l.split(' ').slice(3).join(' '));
  if (bad || good.length === 0) {
    const why = bad
      ? bad.slice(9)
      : (status.find((l) => / (NO_PUBKEY|ERRSIG|NODATA) /.test(l)) ?? '').slice(9);
    throw new Error(
      `the signature of ${what} does not verify against ${tools.keyring}: ` +
        `${why || 'no good signature'}; gpgv said: ${stderr.trim().split('\n').slice(-3).join(' / ')}`,
    );
  }
  return { verified: true, text: `signature verified by gpgv: ${good.join('; ')}` };
}

/** The signed text of a clear-signed message; throws unless `text` is exactly one such. */
export function clearsignedBody(text: string): string {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let i = 0;
  while (i < lines.length && lines[i].trim() === '') i++;
  if (lines[i] !== '-----BEGIN PGP SIGNED MESSAGE-----') {
    throw new Error('not a clear-signed message: it does not start with BEGIN PGP SIGNED MESSAGE');
  }
  i++;
  while (i < lines.length && lines[i] !== '') {
    if (!/^Hash: /.test(lines[i])) throw new Error(`unexpected armour header '${lines[i]}'`);
    i++;
  }
  i++;
  const body: string[] = [];
  for (; i < lines.length && lines[i] !== '-----BEGIN PGP SIGNATURE-----'; i++) {
    if (lines[i].startsWith('-----')) {
      throw new Error(`unexpected armour line '${lines[i]}' inside the signed text`);
    }
    body.push(lines[i].startsWith('- ') ? lines[i].slice(2) : lines[i]);
  }
  const end = lines.indexOf('-----END PGP SIGNATURE-----', i);
  if (i >= lines.length || end < 0) throw new Error('the clear-signed message has no signature');
  if (lines.slice(end + 1).some((l) => l.trim() !== '')) {
    throw new Error('text after the signature of a clear-signed message');
  }
  return body.join('\n') + '\n';
}

function findOnPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // gpgv exits non-zero when any one signature fails (a key missing from the keyring); the
    // status lines say which, so its exit code alone decides nothing.
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number')
        reject(new Error(`cannot run ${cmd}: ${err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}
