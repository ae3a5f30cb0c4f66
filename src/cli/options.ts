// Value parsers for commander options, shared by every entry point (`livemig`, the benches, the
// fuzzer). A bad value throws commander's InvalidArgumentError, which prints the option, the
// value and what is allowed, and exits with status 1.

import { InvalidArgumentError } from 'commander';
import { parseSize } from '../util/size.js';

/** An integer from `min` to `max`. */
export function integer(min: number, max: number): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

/** A number from 0 to 1 (a share of pages). */
export function ratio(text: string): number {
  const r = Number(text);
  if (!/^\d*\.?\d+$/.test(text.trim()) || !(r >= 0 && r <= 1)) {
    throw new InvalidArgumentError('expected a number from 0 to 1');
  }
  return r;
}

/**
 * A size in QEMU's `-m` notation (64M, 4G; a bare number is MiB), kept as written for messages
 * and child processes once it parses. `multipleOf` bytes, when given, must divide it.
 */
export function size(multipleOf = 1): (text: string) => string {
  return (text) => {
    let bytes: number;
    try {
      bytes = parseSize(text, 'M');
    } catch {
      throw new InvalidArgumentError('expected a number with an optional K, M, G or T suffix');
    }
    if (bytes % multipleOf !== 0) {
      const unit =
        multipleOf % 1048576 === 0 ? `${multipleOf / 1048576} MiB` : `${multipleOf / 1024} KiB`;
      throw new InvalidArgumentError(`expected a multiple of ${unit}`);
    }
    return text;
  };
}

/**
 * One of the parsers above, for a value checked after commander parsed the command line (the
 * subcommands that read options as text): `invalid --flag 'value': expected ...`.
 */
export function checked<T>(flag: string, parse: (text: string) => T, text: string): T {
  try {
    return parse(text);
  } catch (e) {
    throw new Error(`invalid ${flag} '${text}': ${(e as Error).message}`);
  }
}
