// The shared words through which the main thread starts, stops and inspects the vCPU worker.

export const VCPU = {
  /** requested state: RUN or STOP or QUIT */
  request: 0,
  /** acknowledged state: 1 while the vCPU runs, 0 once it has stopped writing */
  ack: 1,
  /** workload position (index into its page range); written when the vCPU stops */
  position: 2,
  /** completed loops over the range (informational) */
  loops: 3,
  /** pages written since start (informational; wraps) */
  written: 4,
  /** auto-converge: % of the vCPU's time taken away (0 = not throttled) */
  throttle: 5,
  size: 8,
} as const;

export const REQ_STOP = 0;
export const REQ_RUN = 1;
export const REQ_QUIT = 2;

export interface WorkloadSpec {
  kind: 'none' | 'stress';
  /** dirty rate cap in MB/s (10^6 bytes of dirtied pages per second); 0 = uncapped */
  mbps: number;
  /** first page of the range, counted over all blocks */
  startPage: number;
  pages: number;
}

/** Device state moved at switchover, so the destination's vCPU resumes where the source stopped. */
export interface VcpuState {
  workload: WorkloadSpec;
  position: number;
  loops: number;
}

/** Parse `none`, `stress` or `stress:MBPS`; the range follows QEMU's migration-test guest. */
export function parseWorkload(text: string, ramBytes: number): WorkloadSpec {
  const m = /^(none|stress)(?::(\d+(?:\.\d+)?))?$/.exec(text);
  if (!m || (m[1] === 'none' && m[2] !== undefined)) {
    throw new Error(`invalid workload '${text}': expected none, stress or stress:MBPS`);
  }
  const totalPages = Math.floor(ramBytes / 4096);
  // QEMU's migration-test guest increments a byte in each page of 100 MB starting at 1 MB.
  const start = totalPages > 512 ? 256 : 0;
  const pages = Math.max(1, Math.min(25600, totalPages - start));
  return {
    kind: m[1] as 'none' | 'stress',
    mbps: m[2] ? Number(m[2]) : 0,
    startPage: start,
    pages,
  };
}
