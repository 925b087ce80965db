// LeaseWatcher (pkg/lease LeaseWatcher): turns snapshots and change events from the subnet manager
// into the event batches a backend consumes, keeping the set of known peer leases.
//   - events for our own subnet are dropped;
//   - `added` adds or replaces by subnet;
//   - `removed` removes by subnet and returns the lease as it was stored (attrs included), so the
//     backend can undo exactly what it programmed;
//   - reset(snapshot) emits `added` for new leases and `removed` for vanished ones.
// Two fixes over Go: reset() also emits `added` for a known lease whose attrs changed while we were
// not watching (Go keeps the stale VtepMAC), and reset() is only ever called with a real snapshot,
// never with "no events" (the mass-removal hazard of flannel's watchSubnets).
import { formatNet } from '../../shared/net/ip.js';
import type { Lease, LeaseEvent } from '../lease.js';
import type { Logger } from '../../shared/log.js';
import { marshalLeaseAttrs } from './lease-json.js';

export interface StackFlags {
  enableIPv4: boolean;
  enableIPv6: boolean;
}

/** Identity of a lease for the enabled stacks (Go's sameSubnet). */
export function leaseIdentity(flags: StackFlags, l: Lease): string {
  const parts: string[] = [];
  if (flags.enableIPv4) parts.push(formatNet(l.subnet));
  if (flags.enableIPv6) parts.push(l.ipv6Subnet ? formatNet(l.ipv6Subnet) : '-');
  return parts.join('&');
}

function sameAttrs(a: Lease, b: Lease): boolean {
  return marshalLeaseAttrs(a.attrs) === marshalLeaseAttrs(b.attrs);
}

export class LeaseWatcher {
  private readonly known = new Map<string, Lease>();

  constructor(
    private readonly flags: StackFlags,
    private ownLease: Lease | undefined,
    private readonly log?: Logger,
  ) {}

  setOwnLease(l: Lease | undefined): void {
    this.ownLease = l;
    if (l) this.known.delete(leaseIdentity(this.flags, l));
  }

  private isOwn(l: Lease): boolean {
    return this.ownLease !== undefined && leaseIdentity(this.flags, this.ownLease) === leaseIdentity(this.flags, l);
  }

  leases(): Lease[] {
    return [...this.known.values()];
  }

  update(events: readonly LeaseEvent[]): LeaseEvent[] {
    const out: LeaseEvent[] = [];
    for (const e of events) {
      if (this.isOwn(e.lease)) continue;
      const id = leaseIdentity(this.flags, e.lease);
      if (e.type === 'added') {
        this.known.set(id, e.lease);
        out.push(e);
      } else {
        const old = this.known.get(id);
        if (!old) {
          this.log?.info(`Removed subnet (${id}) was not found`);
          continue;
        }
        this.known.delete(id);
        out.push({ type: 'removed', lease: old });
      }
    }
    return out;
  }

  reset(snapshot: readonly Lease[]): LeaseEvent[] {
    const out: LeaseEvent[] = [];
    const next = new Map<string, Lease>();
    for (const l of snapshot) {
      if (this.isOwn(l)) continue;
      const id = leaseIdentity(this.flags, l);
      const old = this.known.get(id);
      if (!old || !sameAttrs(old, l)) out.push({ type: 'added', lease: l });
      next.set(id, l);
    }
    for (const [id, old] of this.known) {
      if (!next.has(id)) out.push({ type: 'removed', lease: old });
    }
    this.known.clear();
    for (const [id, l] of next) this.known.set(id, l);
    return out;
  }
}
