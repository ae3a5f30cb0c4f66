// The one progress display of every command (`livemig demo`, `livemig bench`, `livemig image
// fetch`): a cli-progress bar on stderr, drawn only on a terminal, so logs stay readable.

import { Presets, SingleBar } from 'cli-progress';

export interface ProgressBarOptions {
  /** Where it draws (default stderr); nothing is drawn unless it is a terminal. */
  out?: NodeJS.WriteStream;
  /** Erase the bar when it stops (default: leave its last state on screen as a line). */
  clear?: boolean;
}

/** A bar with cli-progress's `format` (its {bar}, {percentage} and payload fields), or null. */
export function progressBar(format: string, o: ProgressBarOptions = {}): SingleBar | null {
  const out = o.out ?? process.stderr;
  if (out.isTTY !== true) return null;
  return new SingleBar(
    { format, hideCursor: true, clearOnComplete: o.clear === true, stream: out },
    Presets.shades_classic,
  );
}
