// Metrics taken at the daemon's seams, so that the modules behind them stay free of metric plumbing:
//   - timedKernel: every Kernel.batch (and inspect with ops) the backends run is timed into
//     flannel_kernel_programming_duration_seconds by its first op, and a failure counted in
//     flannel_kernel_errors_total by the op that failed (KernelError.op).
//   - instrumentSubnetManager: acquisitions by result, the own lease's expiry, the peer table behind
//     flannel_peers (from the lease batches the backend consumes), and the heartbeat of the lease
//     watch loop: idle while waiting for the next batch, busy from a batch's arrival until the
//     backend asks for the next one (LeaseLoop handles a batch before pulling another).
import type { Kernel, KernelOp } from '../../shared/kernel/kernel.js';
import { formatNet } from '../../shared/net/ip.js';
import type { Lease, LeaseEvent } from '../lease.js';
import type { SubnetManager } from '../subnet/manager.js';
import { heartbeats } from './heartbeat.js';
import { type PeerCount, recordKernelBatch, recordLeaseAcquisition, recordLeaseExpiration } from './metrics.js';

/** The op name a KernelError carries (`err.op.op`), if any. */
function failedOp(err: unknown, ops: readonly KernelOp[]): string {
  const op = (err as { op?: { op?: unknown } } | undefined)?.op?.op;
  if (typeof op === 'string') return op;
  return ops[0]?.op ?? 'unknown';
}

async function timed<T>(ops: readonly KernelOp[], f: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const label = ops[0]?.op ?? 'none';
  try {
    const r = await f();
    recordKernelBatch(label, (performance.now() - start) / 1000);
    return r;
  } catch (err) {
    recordKernelBatch(label, (performance.now() - start) / 1000, failedOp(err, ops));
    throw err;
  }
}

/** `k` with its writes timed and their failures counted (the same verbs otherwise; inNetns handles too). */
export function timedKernel(k: Kernel): Kernel {
  return new Proxy(k, {
    get(target, prop, receiver) {
      if (prop === 'batch') return (ops: readonly KernelOp[]) => timed(ops, () => target.batch(ops));
      if (prop === 'inspect') {
        return (names: readonly string[], ops?: readonly KernelOp[]) =>
          ops && ops.length > 0 ? timed(ops, () => target.inspect(names, ops)) : target.inspect(names, ops);
      }
      if (prop === 'inNetns') return (path: string) => timedKernel(target.inNetns(path));
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

export const LEASE_WATCH_LOOP = 'lease-watch';

function peerKey(l: Lease): string {
  return `${l.subnet ? formatNet(l.subnet) : '-'}&${l.ipv6Subnet ? formatNet(l.ipv6Subnet) : '-'}`;
}

export interface InstrumentedSubnetManager extends SubnetManager {
  /** peers by backend type and family, as the last batches left them (flannel_peers) */
  peerCounts(): PeerCount[];
}

/** `sm` with acquisitions, the own lease's expiry, the peer table and the lease watch heartbeat recorded. */
export function instrumentSubnetManager(sm: SubnetManager): InstrumentedSubnetManager {
  const peers = new Map<string, Lease>();
  const track = (batch: readonly LeaseEvent[]) => {
    for (const ev of batch) {
      if (ev.type === 'added') peers.set(peerKey(ev.lease), ev.lease);
      else peers.delete(peerKey(ev.lease));
    }
  };
  sm.onOwnLeaseChange((l) => recordLeaseExpiration(l.reservation ? 0 : l.expiration));
  const wrapped: InstrumentedSubnetManager = {
    name: () => sm.name(),
    getNetworkConfig: (signal) => sm.getNetworkConfig(signal),
    setPrevious: (p) => sm.setPrevious(p),
    async acquireLease(attrs, signal) {
      try {
        const l = await sm.acquireLease(attrs, signal);
        recordLeaseAcquisition('success');
        recordLeaseExpiration(l.reservation ? 0 : l.expiration);
        return l;
      } catch (err) {
        if (!signal.aborted) recordLeaseAcquisition('failure');
        throw err;
      }
    },
    completeLease: (lease, signal) => sm.completeLease(lease, signal),
    lease: () => sm.lease(),
    onOwnLeaseChange: (f) => sm.onOwnLeaseChange(f),
    listLeases: (signal) => sm.listLeases(signal),
    async *watchLeases(signal) {
      const it = sm.watchLeases(signal)[Symbol.asyncIterator]();
      heartbeats.register(LEASE_WATCH_LOOP);
      peers.clear();
      try {
        for (;;) {
          const r = await heartbeats.idleWhile(LEASE_WATCH_LOOP, it.next());
          if (r.done) return;
          track(r.value);
          yield r.value;
          heartbeats.beat(LEASE_WATCH_LOOP); // the backend handled the batch and asks for the next
        }
      } finally {
        heartbeats.unregister(LEASE_WATCH_LOOP);
        await it.return?.();
      }
    },
    peerCounts() {
      const rows = new Map<string, PeerCount>();
      const add = (backend: string, family: PeerCount['family']) => {
        const k = `${backend}/${family}`;
        const row = rows.get(k) ?? { backend, family, count: 0 };
        row.count++;
        rows.set(k, row);
      };
      for (const l of peers.values()) {
        const backend = l.attrs.backendType || 'unknown';
        if (l.enableIPv4 && l.subnet) add(backend, 'ipv4');
        if (l.enableIPv6 && l.ipv6Subnet) add(backend, 'ipv6');
      }
      return [...rows.values()];
    },
  };
  if (sm.renewLease) wrapped.renewLease = (lease, signal) => sm.renewLease!(lease, signal);
  if (sm.storedMacAddresses) wrapped.storedMacAddresses = () => sm.storedMacAddresses!();
  return wrapped;
}
