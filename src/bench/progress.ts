// Progress of a benchmark. On a TTY one status line is rewritten in place (which migration of
// how many, its pass, bytes sent, rate); elsewhere only the one-line result of each run is
// printed, so logs stay readable.

import { formatBytes } from '../util/size.js';

export interface ProgressSink {
  write(s: string): boolean;
  isTTY?: boolean;
}

export class Progress {
  private total = 0;
  private index = 0;
  private label = '';
  private status = false;

  constructor(
    private readonly out: ProgressSink = process.stderr,
    private readonly tty: boolean = out.isTTY === true,
  ) {}

  begin(total: number): void {
    this.total = total;
    this.index = 0;
  }

  /** A new migration starts. */
  task(label: string): void {
    this.index++;
    this.label = `[${this.index}/${this.total}] ${label}`;
    this.show(`${this.label}: starting guests`);
  }

  /** From the source's query-migrate while the migration runs. */
  update(info: Record<string, unknown>): void {
    const ram = info.ram as Record<string, number> | undefined;
    if (!ram) return this.show(`${this.label}: ${String(info.status ?? 'setup')}`);
    const pass = (ram['dirty-sync-count'] ?? 0) + 1;
    const pct = ram.total ? Math.min(100, Math.round(100 * (1 - ram.remaining / ram.total))) : 0;
    const bar = '#'.repeat(Math.round(pct / 5)).padEnd(20, '-');
    this.show(
      `${this.label}: [${bar}] ${pct}% pass ${pass}, ${formatBytes(ram.transferred ?? 0)} sent, ` +
        `${Math.round(ram.mbps ?? 0)} Mbps (${String(info.status)})`,
    );
  }

  /** A permanent line (a run's result, a warning). */
  line(s: string): void {
    this.clear();
    this.out.write(s + '\n');
  }

  end(): void {
    this.clear();
  }

  private show(s: string): void {
    if (!this.tty) return;
    const c = (this.out as { columns?: number }).columns ?? 0;
    const cols = c >= 20 ? c : 120;
    this.out.write(`\r\x1b[K${s.length >= cols ? s.slice(0, cols - 1) : s}`);
    this.status = true;
  }

  private clear(): void {
    if (this.tty && this.status) this.out.write('\r\x1b[K');
    this.status = false;
  }
}
