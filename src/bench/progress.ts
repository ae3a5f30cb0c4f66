// Progress of a benchmark. On a terminal the migration's progress bar (the one `livemig demo`
// shows), named after the run ("[3/12] A baseline run 2/3"); permanent lines (each run's result,
// warnings) go above it. Elsewhere only those lines are printed, so logs stay readable.

import type { SingleBar } from 'cli-progress';
import { migrationBar, updateBar, type Info } from '../cli/migration-view.js';

export class Progress {
  private total = 0;
  private index = 0;
  private label = '';
  private bar: SingleBar | null = null;
  /** A task is running, so a bar taken down for a line comes back at its next update. */
  private running = false;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  begin(total: number): void {
    this.total = total;
    this.index = 0;
  }

  /** A new migration starts. */
  task(label: string): void {
    this.index++;
    this.label = `[${this.index}/${this.total}] ${label}`;
    this.stopBar();
    this.running = true;
    this.bar = this.newBar();
  }

  /** From the source's query-migrate while the migration runs. */
  update(info: Record<string, unknown>): void {
    if (this.running && !this.bar) this.bar = this.newBar();
    updateBar(this.bar, info as Info);
  }

  /** A permanent line (a run's result, a warning). */
  line(s: string): void {
    this.stopBar();
    this.out.write(s + '\n');
  }

  end(): void {
    this.stopBar();
    this.running = false;
  }

  private newBar(): SingleBar | null {
    return migrationBar(this.out.isTTY === true, this.label, { out: this.out, clear: true });
  }

  private stopBar(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
