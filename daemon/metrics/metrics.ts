// The daemon's Prometheus metrics: one home, one registry, served on /metrics by the health server.
// Names follow the Prometheus naming guide: one `flannel_` prefix, base units (seconds), `_total`
// counters, low cardinality (no per-peer labels: a label's values are a handful of fixed words).
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

export type Result = 'success' | 'failure';

const leaseAcquisitions = new Counter({
  name: 'flannel_lease_acquisitions_total',
  help: 'Attempts to acquire (or re-take) the own subnet lease, by result.',
  labelNames: ['result'] as const,
  registers: [registry],
});

const leaseRenewals = new Counter({
  name: 'flannel_lease_renewals_total',
  help: 'Renewals of the own subnet lease, by result.',
  labelNames: ['result'] as const,
  registers: [registry],
});

const leaseExpiry = new Gauge({
  name: 'flannel_lease_expiration_timestamp_seconds',
  help: 'When the own subnet lease expires unless renewed (Unix time; 0: no lease yet or a lease that never expires).',
  registers: [registry],
});

const datastoreUp = new Gauge({
  name: 'flannel_datastore_up',
  help: 'Whether the datastore (etcd or the Kubernetes API) answered flanneld lately (1) or not (0).',
  registers: [registry],
});

const watchResyncs = new Counter({
  name: 'flannel_datastore_watch_resyncs_total',
  help: 'Full re-listings of the peer leases after the datastore watch was broken, compacted or reset.',
  registers: [registry],
});

const trafficResyncs = new Counter({
  name: 'flannel_traffic_rule_resyncs_total',
  help: 'Periodic checks of the masquerade/forward rules and blackhole routes, by rule set and result (repaired: something was missing and was put back).',
  labelNames: ['rules', 'result'] as const,
  registers: [registry],
});

const ready = new Gauge({
  name: 'flannel_ready',
  help: 'What /readyz answers: 1 ready, 0 not ready.',
  registers: [registry],
});

/** One row of the peers gauge: how many peer leases the backend programs for one backend type and family. */
export interface PeerCount {
  backend: string;
  family: 'ipv4' | 'ipv6';
  count: number;
}

let peerSource: () => readonly PeerCount[] = () => [];
new Gauge({
  name: 'flannel_peers',
  help: 'Peer leases this node knows, by backend type and address family.',
  labelNames: ['backend', 'family'] as const,
  registers: [registry],
  collect() {
    this.reset();
    for (const p of peerSource()) this.set({ backend: p.backend, family: p.family }, p.count);
  },
});

export function recordRepair(kind: RepairKind, action: 'restored' | 'removed'): void {
  repairs.inc({ kind, action });
}

/** One Kernel.batch: its duration, labelled by its first op, and the op that failed, if one did. */
export function recordKernelBatch(op: string, seconds: number, failed?: string): void {
  kernelOpSeconds.observe({ op }, seconds);
  if (failed !== undefined) kernelErrors.inc({ op: failed });
}

export function recordLeaseProgrammed(seconds: number): void {
  leaseProgrammedSeconds.observe(seconds);
}

export function recordLeaseAcquisition(result: Result): void {
  leaseAcquisitions.inc({ result });
}

export function recordLeaseRenewal(result: Result): void {
  leaseRenewals.inc({ result });
}

/** The own lease's expiration (epoch ms; 0 or less: none). */
export function recordLeaseExpiration(epochMs: number): void {
  leaseExpiry.set(epochMs > 0 ? epochMs / 1000 : 0);
}

export function recordDatastoreUp(up: boolean): void {
  datastoreUp.set(up ? 1 : 0);
}

export function recordWatchResync(): void {
  watchResyncs.inc();
}

export function recordTrafficResync(rules: 'iptables' | 'ip6tables' | 'blackhole', result: 'in_sync' | 'repaired' | 'error'): void {
  trafficResyncs.inc({ rules, result });
}

export function recordReady(r: boolean): void {
  ready.set(r ? 1 : 0);
}

/** Where the peers gauge reads its rows at scrape time. */
export function setPeerSource(f: () => readonly PeerCount[]): void {
  peerSource = f;
}

let processMetrics = false;
/**
 * process_* and nodejs_* metrics (CPU, RSS, fds, heap); once, only in the daemon (not in unit tests).
 * The event-loop delay is sampled every 100 ms rather than prom-client's 10 ms: an idle daemon should
 * not wake 100 times a second to measure itself. The three `nodejs_active_*_total` gauges go: their
 * `_total` suffix on a gauge is what `promtool check metrics` rejects, and `nodejs_active_handles`,
 * `nodejs_active_requests` (by type) carry the same numbers.
 */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
}

/** Text exposition format for /metrics. */
export function renderMetrics(): Promise<string> {
  return registry.metrics();
}

export const METRICS_CONTENT_TYPE = registry.contentType;

/** A metric's current value for the given labels (tests; counters and gauges; histograms give their count). */
export async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getSingleMetric(name)?.get()) as { values: Array<{ value: number; labels: Record<string, unknown>; metricName?: string }> } | undefined;
  if (!m) return 0;
  const match = (l: Record<string, unknown>) => Object.entries(labels).every(([k, v]) => String(l[k]) === v);
  const vals = m.values.filter((v) => match(v.labels) && (v.metricName === undefined || v.metricName === name || v.metricName === `${name}_count`));
  return vals.reduce((s, v) => s + v.value, 0);
}

export { Counter, Gauge, Histogram };
