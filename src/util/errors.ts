// Errors that cross the control plane carry a QMP error class, as QEMU's do.

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

/** Shorthand for the common case: a GenericError with a message naming the bad value. */
export function genericError(message: string): QmpError {
  return new QmpError('GenericError', message);
}
