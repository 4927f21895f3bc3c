// Small helpers for the benchmarks: running a workload at a given
// concurrency and summarising latencies.

/** Percentile `p` (0-100) of sorted samples. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface RunResult {
  ops: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Runs `total` operations with `concurrency` of them in flight; `op(i)`
 * performs operation i. Returns throughput and latency percentiles.
 */
export async function runLoad(total: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<RunResult> {
  const lat: number[] = new Array(total);
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const s = performance.now();
      await op(i);
      lat[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { ops: total, seconds, perSecond: total / seconds, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) };
}

export function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';
}
