// What one migration's zero-page accelerator (zero-page-detection=dsa-accel) reports in
// query-migrate: the CPU its threads (dsa_completion, the emulated engines) spent for this
// migration, and its counters, read one last time before the migration closes it.

import type { Accelerator } from '../../accel/driver.js';
import { haltedWorkQueues } from '../../accel/hw/wq-state.js';

export class AcceleratorFigures {
  /** CPU ms of dsa_completion and the emulated engines: at start, and the latest reading */
  private cpuBase: Record<string, number> = {};
  cpu: Record<string, number> = {};
  private closed = false;
  private stats: Record<string, unknown> | undefined;
  /** Settles once the accelerator's last figures are read (close). */
  final: Promise<void> | undefined;

  constructor(private readonly accel: Accelerator) {}

  start(): void {
    // Engines are shared by the process; account only what this migration adds.
    void this.accel.threadCpu().then((c) => (this.cpuBase = c));
  }

  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.accel.threadCpu().then((c) => {
      for (const [k, v] of Object.entries(c)) {
        this.cpu[k] = Math.round((v - (this.cpuBase[k] ?? 0)) * 10) / 10;
      }
    });
  }

  /**
   * Read the accelerator's last figures, then close it (after the channels let go of it:
   * `channelsStopped` is read once the figures are in).
   */
  close(channelsStopped: () => Promise<unknown> | undefined): void {
    if (this.closed || this.final) return;
    this.final = this.refresh()
      .catch(() => {})
      .then(() => {
        this.stats = { ...this.accel.counters() };
        this.closed = true;
        // After the channels have ended (each acknowledged that it no longer submits, or was
        // terminated after the grace): none is left to submit, even one ended inside the gate.
        void (channelsStopped() ?? Promise.resolve())
          .then(() => this.accel.close({ usersEnded: true }))
          .catch(() => {});
      });
  }

  /** query-migrate's livemig.accelerator */
  report(): Record<string, unknown> {
    return {
      'accel-path': this.accel.handle.targets.map((t) => t.text),
      ...(this.stats ?? (this.closed ? {} : this.accel.counters())),
      ...haltedWorkQueues(this.accel.handle.hw), // [accel-hw] why a kernel WQ stopped
    };
  }
}
