// The allocation policy (backend/allocator/allocator.go): one IPAllocator per range set, identified by
// its index (`rangeId`) for last_reserved_ip bookkeeping. Iteration order is Go's exactly, so a Go and a
// TypeScript host-local sharing one store hand out the same sequence:
// - start right after last_reserved_ip.<rangeId> when that IP lies in the set, else at ranges[0].rangeStart;
// - walk each range to its rangeEnd (inclusive), then wrap to the next range's rangeStart;
// - skip each range's gateway; stop when back at the first candidate (the last reserved IP is tried last).
import type { IPConfig } from '../../shared/cni/types.js';
import { type IP, formatCIDR, formatIP, ipEqual, nextIP } from '../../shared/net/ip.js';
import { type Range, rangeContains } from './range.js';
import { type RangeSet, formatRangeSet, rangeFor, rangeSetContains } from './range-set.js';
import type { Store } from './store.js';

export interface Allocation {
  ip: IP;
  range: Range;
}

export class IPAllocator {
  readonly rangeId: string;

  constructor(
    readonly rangeSet: RangeSet,
    readonly store: Store,
    id: number,
    private readonly log: (msg: string) => void = () => {},
  ) {
    this.rangeId = String(id);
  }

  /** Get: reserves `requestedIP`, or the next free IP of the set, for (id, ifname). Takes the store lock. */
  get(id: string, ifname: string, requestedIP?: IP): IPConfig {
    this.store.lock();
    try {
      return toIPConfig(this.getLocked(id, ifname, requestedIP));
    } finally {
      this.store.unlock();
    }
  }

  private getLocked(id: string, ifname: string, requestedIP: IP | undefined): Allocation {
    if (requestedIP !== undefined) {
      const r = rangeFor(this.rangeSet, requestedIP);
      if (ipEqual(requestedIP, r.gateway)) throw new Error(`requested ip ${formatIP(requestedIP)} is subnet's gateway`);
      if (!this.store.reserve(id, ifname, requestedIP, this.rangeId)) {
        throw new Error(`requested IP address ${formatIP(requestedIP)} is not available in range set ${formatRangeSet(this.rangeSet)}`);
      }
      return { ip: requestedIP, range: r };
    }
    // The spec forbids a second ADD for the same attachment without a DEL in between.
    for (const ip of this.store.getByID(id, ifname)) {
      if (rangeSetContains(this.rangeSet, ip)) {
        throw new Error(`${formatIP(ip)} has been allocated to ${id}, duplicate allocation is not allowed`);
      }
    }
    const iter = this.getIter();
    for (let a = iter.next(); a !== undefined; a = iter.next()) {
      if (this.store.reserve(id, ifname, a.ip, this.rangeId)) return a;
    }
    throw new Error(`no IP addresses available in range set: ${formatRangeSet(this.rangeSet)}`);
  }

  /** Release: frees every IP of (id, ifname) in the store. Takes the store lock. */
  release(id: string, ifname: string): void {
    this.store.lock();
    try {
      this.store.releaseByID(id, ifname);
    } finally {
      this.store.unlock();
    }
  }

  /** GetIter: round-robin from the last reserved IP of this set. */
  getIter(): RangeIter {
    let last: IP | undefined;
    try {
      last = this.store.lastReservedIP(this.rangeId);
    } catch (err) {
      this.log(`Error retrieving last reserved ip: ${(err as Error).message}`);
    }
    if (last !== undefined) {
      const ip = last;
      const idx = this.rangeSet.findIndex((r) => rangeContains(r, ip));
      if (idx >= 0) return new RangeIter(this.rangeSet, idx, last, undefined);
    }
    return new RangeIter(this.rangeSet, 0, undefined, this.rangeSet[0]!.rangeStart);
  }
}

export function toIPConfig(a: Allocation): IPConfig {
  return { address: formatCIDR(a.ip, a.range.subnet.prefix), gateway: formatIP(a.range.gateway) };
}

/** RangeIter: Go's iterator, state for state. */
export class RangeIter {
  constructor(
    private readonly rangeSet: RangeSet,
    private rangeIdx: number,
    private cur: IP | undefined,
    private startIP: IP | undefined,
  ) {}

  /** The next candidate, or undefined when the whole set has been walked. */
  next(): Allocation | undefined {
    let r = this.rangeSet[this.rangeIdx]!;
    // First call without a last reserved IP: start at rangeStart, inclusive.
    if (this.cur === undefined) {
      this.cur = r.rangeStart;
      this.startIP = this.cur;
      if (ipEqual(this.cur, r.gateway)) return this.next();
      return { ip: this.cur, range: r };
    }
    if (ipEqual(this.cur, r.rangeEnd)) {
      this.rangeIdx = (this.rangeIdx + 1) % this.rangeSet.length;
      r = this.rangeSet[this.rangeIdx]!;
      this.cur = r.rangeStart;
    } else {
      this.cur = nextIP(this.cur);
    }
    if (this.startIP === undefined) {
      this.startIP = this.cur;
    } else if (ipEqual(this.cur, this.startIP)) {
      return undefined;
    }
    if (ipEqual(this.cur, r.gateway)) return this.next();
    return { ip: this.cur, range: r };
  }
}
