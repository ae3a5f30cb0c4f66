// What a fetch reports while it runs, shaped to be easy to render: a kind of step, one line of
// text for a person, and byte counts for the steps that move bytes.

export type FetchStep = 'index' | 'download' | 'extract' | 'initrd' | 'note';

export interface FetchProgress {
  step: FetchStep;
  /** For a person: "linux-image-6.1.0-50-686 6.1.176-1 (the kernel)", "signature verified ..." */
  text: string;
  /** 'start' once, 'bytes' while bytes move (downloads), 'end' once. A note is only an 'end'. */
  phase: 'start' | 'bytes' | 'end';
  /** Bytes done so far; 0 for steps that move none. */
  done: number;
  /** Bytes expected, when known. */
  total: number | null;
}

export type ProgressFn = (p: FetchProgress) => void;

export function note(progress: ProgressFn | undefined, text: string): void {
  progress?.({ step: 'note', text, phase: 'end', done: 0, total: null });
}
