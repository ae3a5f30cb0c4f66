// Errors that cross the control plane carry a QMP error class, as QEMU's do.

import { constants as osConstants } from 'node:os';

export type QmpErrorClass =
  'GenericError' | 'CommandNotFound' | 'DeviceNotActive' | 'DeviceNotFound' | 'KVMMissingCap';

export class QmpError extends Error {
  constructor(
    readonly errorClass: QmpErrorClass,
    message: string,
  ) {
    super(message);
    this.name = 'QmpError';
  }
}

/** "ENXIO" for an errno number (either sign), "errno N" for one this platform does not name. */
export function errnoName(n: number): string {
  for (const [k, v] of Object.entries(osConstants.errno)) if (v === Math.abs(n)) return k;
  return `errno ${Math.abs(n)}`;
}

/** Shorthand for the common case: a GenericError with a message naming the bad value. */
export function genericError(message: string): QmpError {
  return new QmpError('GenericError', message);
}
