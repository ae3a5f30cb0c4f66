// DataView access to caller memory for the descriptor and completion-record codecs (off the
// hot path, which uses word views).

export function asView(target: DataView | Uint8Array): DataView {
  if (target instanceof DataView) return target;
  return new DataView(target.buffer, target.byteOffset, target.byteLength);
}

/** Throws unless `size` bytes of a `what` at byte `offset` fit in `view`. */
export function checkFits(view: DataView, offset: number, size: number, what: string): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + size > view.byteLength) {
    throw new RangeError(
      `${what} at byte ${offset} does not fit in a ${view.byteLength}-byte buffer`,
    );
  }
}
