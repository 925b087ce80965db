// The peer lease watch of LocalManager (Go's WatchLeases over etcd): batches for the backend from a
// snapshot, then the watch from the snapshot revision + 1, read ahead so that everything that arrived
// while the backend handled one batch is its next batch (read-ahead.ts); compaction → re-list
// (LeaseWatcher.reset), broken stream → reconnect with back-off 100 ms → 5 s, and the grace that keeps
// peers missing after an etcd reset until their owners re-create them.
import { formatNet } from '../../../shared/net/ip.js';
import { type Logger, errorMessage } from '../../../shared/log.js';
import type { Lease, LeaseEvent } from '../../lease.js';
import { Backoff, sleep } from '../../sleep.js';
import { LeaseWatcher, type StackFlags, leaseIdentity } from '../lease-watcher.js';
import { readAhead } from './read-ahead.js';
import { recordWatchResync } from '../../metrics/metrics.js';
import type { ReadHeader, Registry, WatchBatch } from './registry.js';

/** `ip: 10.5.1.0/24 ipv6: <nil>`, as Go's lease log lines name a lease. */
export function leaseLabel(l: Lease): string {
  return `ip: ${formatNet(l.subnet)} ipv6: ${l.ipv6Subnet ? formatNet(l.ipv6Subnet) : '<nil>'}`;
}

/** What the peer watch needs of its LocalManager. */
export interface PeerWatchDeps {
  registry: Registry;
  log: Logger;
  now: () => number;
  /** how long peers missing after a reset keep their routes */
  resetGraceMs: number;
  flags: StackFlags;
  /** ours, left out of the batches (kept current through onOwnLeaseChange) */
  ownLease: Lease | undefined;
  onOwnLeaseChange(f: (l: Lease) => void): () => void;
  /** a linearizable read's header, checked for a store reset (which is then announced) */
  checkStore(h: ReadHeader): void;
  /** a revision a watch delivered */
  sawRevision(revision: number): void;
  /** subscribes to re-list requests (a store reset, our key missing); returns the unsubscribe */
  onPeerResync(f: (reason: string) => void): () => void;
}

/**
 * Peer lease batches: the first batch is the snapshot (every peer `added`, possibly empty), then
 * changes. Never throws for etcd trouble: it retries until `signal` aborts, then ends.
 *
 * Re-lists (LeaseWatcher.reset semantics) after a compacted watch, a watch that starts behind, and
 * a store reset. After a reset or a compaction (a snapshot restored with --mark-compacted looks
 * like one) an emptied store must not tear down healthy peers at once: their owners need a few
 * seconds to notice and re-create their keys. So peers missing from such a listing are kept
 * (no `removed`) for `resetGraceMs`; one that comes back is simply `added` again (the same
 * routes), and those still missing from a fresh listing at the end of the grace are removed. A
 * host that joins meanwhile with a kept peer's subnet replaces it like any `added`.
 */
export async function* watchPeerLeases(d: PeerWatchDeps, signal: AbortSignal): AsyncGenerator<LeaseEvent[]> {
  const flags = d.flags;
  const lw = new LeaseWatcher(flags, d.ownLease, d.log);
  const unsubscribe = d.onOwnLeaseChange((l) => lw.setOwnLease(l));
  const backoff = new Backoff(100, 5000);
  const kept = new Map<string, Lease>(); // peers missing after a reset, inside the grace period
  let graceUntil = 0;
  let pendingReset: string | undefined;
  let watchAbort: AbortController | undefined;
  const onResync = (reason: string) => {
    pendingReset = reason;
    watchAbort?.abort();
  };
  const offReset = d.onPeerResync(onResync);
  let first = true;
  try {
    while (!signal.aborted) {
      // snapshot (initial, or a resync)
      let since: number;
      try {
        const snap = await d.registry.getSubnets(signal);
        d.checkStore(snap);
        if (!first) recordWatchResync(); // a re-list after a lost/compacted watch or a store reset
        if (pendingReset !== undefined) {
          pendingReset = undefined;
          graceUntil = d.now() + d.resetGraceMs;
        }
        since = snap.revision + 1;
        const batch = resyncPeers(d, lw, flags, snap.leases, kept, graceUntil);
        if (first || batch.length > 0) yield batch;
        first = false;
        backoff.reset();
      } catch (err) {
        if (signal.aborted) return;
        const delay = backoff.step();
        d.log.warn(`failed to list leases (retrying in ${delay} ms): ${errorMessage(err)}`);
        await sleep(delay, signal);
        continue;
      }
      // watch from the snapshot on; reconnect from the last seen revision
      let resync = false;
      while (!signal.aborted && !resync) {
        if (pendingReset !== undefined) break;
        const ac = new AbortController();
        watchAbort = ac;
        const onAbort = () => ac.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        // the end of a grace period: re-list to drop the peers still missing
        const graceTimer =
          kept.size > 0
            ? setTimeout(() => {
                resync = true;
                ac.abort();
              }, Math.max(0, graceUntil - d.now()))
            : undefined;
        try {
          for await (const b of readAhead(d.registry.watchSubnets(since, ac.signal), foldEvents)) {
            if (b.kind === 'compacted') {
              d.log.info(`watch revision ${since} was compacted (at ${b.revision}): re-listing leases`);
              graceUntil = d.now() + d.resetGraceMs;
              resync = true;
              break;
            }
            if (b.kind === 'behind') {
              d.log.warn(`etcd answered the lease watch at revision ${b.revision}, below our ${since - 1}: re-listing leases`);
              resync = true;
              break;
            }
            backoff.reset();
            since = Math.max(since, b.revision + 1);
            d.sawRevision(b.revision);
            for (const ev of b.events) if (ev.type === 'added') kept.delete(leaseIdentity(flags, ev.lease));
            const batch = lw.update(b.events);
            if (batch.length > 0) yield batch;
          }
        } catch (err) {
          if (signal.aborted) return;
          if (pendingReset !== undefined || resync) break;
          const delay = backoff.step();
          d.log.warn(`watch of leases failed (reconnecting in ${delay} ms): ${errorMessage(err)}`);
          await sleep(delay, signal);
        } finally {
          ac.abort(); // ends the stream read ahead of us (a re-list or a re-watch opens a new one)
          clearTimeout(graceTimer);
          signal.removeEventListener('abort', onAbort);
          watchAbort = undefined;
        }
      }
    }
  } finally {
    offReset();
    unsubscribe();
  }
}

/**
 * Consecutive event batches read ahead of the backend become one (in order, the latest revision);
 * a compaction or a store behind stays apart (it ends the watch).
 */
function foldEvents(queued: WatchBatch, next: WatchBatch): WatchBatch | undefined {
  if (queued.kind !== 'events' || next.kind !== 'events') return undefined;
  for (const ev of next.events) queued.events.push(ev);
  queued.revision = Math.max(queued.revision, next.revision);
  return queued;
}

/**
 * LeaseWatcher.reset with the grace of watchLeases: before `graceUntil`, peers missing from
 * `leases` are kept (and remembered in `kept`); after it, the kept ones still missing go.
 */
function resyncPeers(d: PeerWatchDeps, lw: LeaseWatcher, flags: StackFlags, leases: Lease[], kept: Map<string, Lease>, graceUntil: number): LeaseEvent[] {
  const present = new Set(leases.map((l) => leaseIdentity(flags, l)));
  for (const id of [...kept.keys()]) if (present.has(id)) kept.delete(id);
  const missing = lw.leases().filter((l) => !present.has(leaseIdentity(flags, l)));
  const left = Math.max(0, graceUntil - d.now());
  if (left > 0 && missing.length > 0) {
    const fresh = missing.filter((l) => !kept.has(leaseIdentity(flags, l)));
    for (const l of missing) kept.set(leaseIdentity(flags, l), l);
    if (fresh.length > 0) {
      d.log.warn(
        `${fresh.length} peer lease(s) missing from etcd after the reset, keeping their routes for up to ${Math.round(left / 1000)}s until their owners re-create them: ${fresh.map((l) => leaseLabel(l)).join('; ')}`,
      );
    }
    return lw.reset([...leases, ...missing]);
  }
  if (kept.size > 0) {
    const gone = [...kept.values()].filter((l) => !present.has(leaseIdentity(flags, l)));
    if (gone.length > 0) {
      d.log.warn(`${gone.length} peer lease(s) not re-created within ${Math.round(d.resetGraceMs / 1000)}s of the reset, removing them: ${gone.map((l) => leaseLabel(l)).join('; ')}`);
    }
    kept.clear();
  }
  return lw.reset(leases);
}
