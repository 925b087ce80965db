// The daemon's Prometheus metrics: one home, one registry, served on /metrics by the health server.
// Names follow the Prometheus naming guide: one `flannel_` prefix, base units (seconds), `_total`
// counters, low cardinality (no per-peer labels).
//
// Modules record through the small functions below and never touch prom-client themselves, so a
// unit test can read a value back (`metricValue`) and a module stays free of metric plumbing.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();

/** Kernel object kinds the reconcile loop repairs. */
export type RepairKind = 'route' | 'neigh' | 'fdb' | 'device';

const repairs = new Counter({
  name: 'flannel_repairs_total',
  help: 'Kernel objects of live leases restored (or stale ones removed) by the reconcile loop, by kind and action.',
  labelNames: ['kind', 'action'] as const,
  registers: [registry],
});

const kernelOpSeconds = new Histogram({
  name: 'flannel_kernel_programming_duration_seconds',
  help: 'Time to apply one batch of kernel operations, by the kind of its first operation.',
  labelNames: ['op'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers: [registry],
});

const kernelErrors = new Counter({
  name: 'flannel_kernel_errors_total',
  help: 'Kernel operations that failed, by operation.',
  labelNames: ['op'] as const,
  registers: [registry],
});

const leaseProgrammedSeconds = new Histogram({
  name: 'flannel_lease_event_to_programmed_seconds',
  help: 'Time from a peer lease event reaching flanneld to its kernel state being programmed (the convergence SLI).',
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

export function recordRepair(kind: RepairKind, action: 'restored' | 'removed'): void {
  repairs.inc({ kind, action });
}

export function recordKernelBatch(op: string, seconds: number, failed?: string): void {
  kernelOpSeconds.observe({ op }, seconds);
  if (failed !== undefined) kernelErrors.inc({ op: failed });
}

export function recordLeaseProgrammed(seconds: number): void {
  leaseProgrammedSeconds.observe(seconds);
}

let processMetrics = false;
/** process_* and nodejs_* metrics (CPU, RSS, fds, heap); once, only in the daemon (not in unit tests). */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: registry });
}

/** Text exposition format for /metrics. */
export function renderMetrics(): Promise<string> {
  return registry.metrics();
}

/** A metric's current value for the given labels (tests; counters and gauges; histograms give their count). */
export async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getSingleMetric(name)?.get()) as { values: Array<{ value: number; labels: Record<string, unknown>; metricName?: string }> } | undefined;
  if (!m) return 0;
  const match = (l: Record<string, unknown>) => Object.entries(labels).every(([k, v]) => String(l[k]) === v);
  const vals = m.values.filter((v) => match(v.labels) && (v.metricName === undefined || v.metricName === name || v.metricName === `${name}_count`));
  return vals.reduce((s, v) => s + v.value, 0);
}

export { Counter, Gauge, Histogram };
