// The watch of our own lease key under LocalManager.completeLease (Go's WatchLease on our subnet):
// it only reports; completeLease decides (renew, adopt an edit, re-take a vanished key, give up).
import { ipEqual } from '../../../shared/net/ip.js';
import { type Logger, errorMessage } from '../../../shared/log.js';
import type { Lease, LeaseEvent } from '../../lease.js';
import { Backoff, sleep } from '../../sleep.js';
import { type ReadHeader, type Registry, describeSubnet } from './registry.js';

/** Events completeLease takes from its own-key watch: the key's changes, or a store reset. */
export type OwnEvent = LeaseEvent | { type: 'reset'; reason: string };

/** What the own-key watch needs of its LocalManager. */
export interface OwnLeaseWatchDeps {
  registry: Registry;
  log: Logger;
  /** a linearizable read's header, checked for a store reset (which is then announced) */
  checkStore(h: ReadHeader): void;
  /** a revision a watch delivered */
  sawRevision(revision: number): void;
  /** subscribes to store resets; returns the unsubscribe */
  onStoreReset(f: (reason: string) => void): () => void;
  /** asks the peer watch to re-list with the reset grace */
  requestPeerResync(reason: string): void;
}

/**
 * Go's WatchLease on our own key: snapshot, then changes; compaction → re-read the key. Two
 * additions for a store that was reset (store-reset.ts): every read is checked against the
 * revision and cluster ID seen before, and after a broken stream the key's presence is checked
 * before the watch resumes from where it was. A missing key then is reported as `removed` at once
 * (re-taken in place) and the peers are re-listed too: a wiped etcd that is already past our
 * revision gives no other clue (the resumed watch would wait for nothing). On a detected reset,
 * completeLease restores the key itself ('reset') and this loop only re-reads to resume.
 */
export async function watchOwnLease(d: OwnLeaseWatchDeps, lease: Lease, signal: AbortSignal, emit: (ev: OwnEvent) => void): Promise<void> {
  const backoff = new Backoff(100, 5000);
  const what = describeSubnet(lease.subnet, lease.ipv6Subnet);
  let since = 0;
  let checkPresence = false; // after a broken stream
  let afterReset = false; // completeLease handles the key after a reset
  let pendingReset: string | undefined;
  let watchAbort: AbortController | undefined;
  const offReset = d.onStoreReset((reason) => {
    pendingReset = reason;
    watchAbort?.abort();
  });
  try {
    while (!signal.aborted) {
      try {
        if (pendingReset !== undefined) {
          emit({ type: 'reset', reason: pendingReset });
          pendingReset = undefined;
          since = 0;
          afterReset = true;
        }
        if (since === 0) {
          const r = await d.registry.getSubnet(lease.subnet, lease.ipv6Subnet, signal);
          d.checkStore(r);
          if (pendingReset !== undefined) continue;
          since = r.revision + 1;
          if (!r.lease) {
            if (!afterReset) emit({ type: 'removed', lease });
          }
          // changed since acquire: now a reservation (or no longer one), or taken by another node
          else if (r.lease.reservation !== lease.reservation || !ipEqual(r.lease.attrs.publicIP, lease.attrs.publicIP)) {
            emit({ type: 'added', lease: r.lease });
          }
          afterReset = false;
          checkPresence = false;
        } else if (checkPresence) {
          const r = await d.registry.getSubnet(lease.subnet, lease.ipv6Subnet, signal);
          d.checkStore(r);
          if (pendingReset !== undefined) continue;
          checkPresence = false;
          if (!r.lease) {
            d.log.warn(`our lease ${what} is missing after the watch reconnected (deleted meanwhile, or etcd was rebuilt): re-listing peers`);
            d.requestPeerResync(`our lease ${what} was missing after a reconnect`);
            emit({ type: 'removed', lease });
          }
        }
        const ac = new AbortController();
        watchAbort = ac;
        const onAbort = () => ac.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          for await (const b of d.registry.watchSubnets(since, ac.signal, { sn: lease.subnet, sn6: lease.ipv6Subnet })) {
            backoff.reset();
            if (b.kind !== 'events') {
              // compacted: a deletion below the horizon becomes `removed`; behind: the read decides
              since = 0;
              break;
            }
            since = b.revision + 1;
            d.sawRevision(b.revision);
            for (const ev of b.events) emit(ev);
          }
        } finally {
          signal.removeEventListener('abort', onAbort);
          watchAbort = undefined;
        }
        if (pendingReset === undefined && since !== 0 && !signal.aborted) checkPresence = true; // the stream ended
      } catch (err) {
        if (signal.aborted) return;
        if (since !== 0) checkPresence = true;
        const delay = backoff.step();
        d.log.warn(`watch of own lease failed (retrying in ${delay} ms): ${errorMessage(err)}`);
        await sleep(delay, signal);
      }
    }
  } finally {
    offReset();
  }
}
