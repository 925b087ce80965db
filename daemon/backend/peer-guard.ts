// PeerGuard: which peer leases a backend may program, shared by vxlan and host-gw so both refuse the
// same leases for the same reasons. It sits between the subnet manager's lease events and a backend's
// event loop and turns them into events for ACCEPTED leases only.
//
// Why: the kernel keys what a backend writes by the peer's subnet base (vxlan neighbour `subnet.0`), its
// subnet (routes) and its VtepMAC (FDB). A second lease that claims any of these (a /21 at a peer's /20
// base, a /24 inside our own /20, the whole Network, another host's VtepMAC) would overwrite a healthy
// peer's entry while present and delete it when removed. Go flannel programs whatever a key says.
//
// Rules (each refusal is logged once per lease and reason; a refused lease is never programmed, and its
// removal removes nothing):
// - a subnet outside the flannel Network, or overlapping our own subnet (a supernet of ours, the whole
//   Network, a piece of ours), is refused;
// - a PublicIP that cannot be a unicast host address (0.0.0.0/8 but 0.0.0.0 itself, which means none
//   and is skipped by the backends per family, loopback, multicast, 240.0.0.0/4 and
//   the broadcast address; ::, ::1, ff00::/8) or that is one of our own addresses is refused;
// - a backend may name more exclusive claims (vxlan: the VtepMAC) or refuse for its own reasons;
// - two live leases whose subnets overlap, or that share a claim, cannot both be accepted. Precedence,
//   deterministic: a lease whose prefix is our SubnetLen beats one with another prefix (leases handed out
//   by flannel all have SubnetLen and are pairwise disjoint, so a hand-made /21 or /16 can never push a
//   real peer out); at equal rank the lease accepted first keeps its place, and within one batch (a
//   snapshot is in etcd key order) the earlier one wins. A refused lease is accepted as soon as what it
//   conflicted with goes away; a lease pushed out is removed first, so the winner is then re-programmed.
// - a removal of a lease we never saw is passed on only if it conflicts with nothing accepted (after a
//   restart the backend removes what such a lease would have had; never what a live peer needs).
import {
  formatIP,
  formatNet,
  ipEqual,
  maskOf,
  netContains,
  netEqual,
  netLast,
  netOverlaps,
  parseNet,
  tryParseCIDR,
  type Family,
  type IP,
  type IPNet,
} from '../../shared/net/ip.js';
import type { Kernel } from '../../shared/kernel/kernel.js';
import { leaseKey, peerSubnetProblem, type Lease, type LeaseEvent } from '../lease.js';

export interface PeerGuardOptions {
  /** our own lease: its subnets are never a peer's, its claims are ours */
  own: Lease;
  enableIPv4: boolean;
  enableIPv6: boolean;
  /** the flannel Network / IPv6Network: a peer subnet must lie inside */
  network?: IPNet;
  ipv6Network?: IPNet;
  /** our own addresses (PublicIP, underlay address): never a peer's PublicIP */
  ownAddrs: readonly (IP | undefined)[];
  /** the IPv4 networks on our external interface: their network and broadcast addresses are no host's */
  underlay?: readonly IPNet[];
  /**
   * The backend's exclusive keys of a lease (e.g. `v4 VtepMAC aa:..`) that no two accepted leases may
   * share, or a string saying why the backend refuses the lease. Called for our own lease too.
   */
  claims?: (lease: Lease) => string[] | string;
  log: (msg: string) => void;
}

/** What every backend network hands its PeerGuard (its own options, mostly). */
export interface GuardSource {
  lease: Lease;
  enableIPv4: boolean;
  enableIPv6: boolean;
  network?: IPNet | undefined;
  ipv6Network?: IPNet | undefined;
  /** our addresses besides the lease's PublicIP/PublicIPv6 (the underlay address) */
  ownAddrs?: readonly (IP | undefined)[] | undefined;
  underlay?: readonly IPNet[] | undefined;
  logger: { warn(msg: string): void };
}

/** A backend network's PeerGuard: the lease's and the host's addresses are never a peer's; refusals are warnings. */
export function guardFor(o: GuardSource, claims?: PeerGuardOptions['claims']): PeerGuard {
  return new PeerGuard({
    own: o.lease,
    enableIPv4: o.enableIPv4,
    enableIPv6: o.enableIPv6,
    ...(o.network ? { network: o.network } : {}),
    ...(o.ipv6Network ? { ipv6Network: o.ipv6Network } : {}),
    ownAddrs: [o.lease.attrs.publicIP, o.lease.attrs.publicIPv6, ...(o.ownAddrs ?? [])],
    ...(o.underlay ? { underlay: o.underlay } : {}),
    ...(claims ? { claims } : {}),
    log: (m) => o.logger.warn(m),
  });
}

interface Entry {
  lease: Lease;
  accepted: boolean;
  /** first-seen order (kept across updates of the same lease) */
  seq: number;
  /** the refusal last logged, to log each reason once */
  why?: string;
  claims: string[];
}

const SPECIAL_V4 = ['0.0.0.0/8', '127.0.0.0/8', '224.0.0.0/4', '240.0.0.0/4'].map(parseNet);
const SPECIAL_V6 = ['::/128', '::1/128', 'ff00::/8'].map(parseNet);

/** Why `ip` cannot be a peer host's unicast address, or undefined when it can. */
export function unicastProblem(ip: IP): string | undefined {
  for (const n of ip.family === 4 ? SPECIAL_V4 : SPECIAL_V6) {
    if (netContains(n, ip)) return `its PublicIP ${formatIP(ip)} is not a unicast host address (${formatNet(n)})`;
  }
  return undefined;
}

/** The subnets of one family held by accepted leases: pairwise disjoint, found by any overlap. */
class SubnetIndex {
  /** subnet → lease key */
  private readonly held = new Map<string, string>();
  /** every strict supernet of a held subnet → how many held subnets lie below it */
  private readonly below = new Map<string, number>();

  private static id(base: bigint, prefix: number): string {
    return `${base}/${prefix}`;
  }

  /** A key holding a subnet that overlaps `n`, or undefined. */
  overlapping(n: IPNet): string | undefined {
    for (let p = 0; p <= n.prefix; p++) {
      const k = this.held.get(SubnetIndex.id(n.base & maskOf(n.family, p), p));
      if (k !== undefined) return k;
    }
    if ((this.below.get(SubnetIndex.id(n.base, n.prefix)) ?? 0) > 0) {
      // some held subnet lies inside n (rare: only when refusing): find it
      for (const [id, k] of this.held) {
        const [base, prefix] = id.split('/');
        if (netOverlaps(n, { family: n.family, base: BigInt(base!), prefix: Number(prefix) })) return k;
      }
    }
    return undefined;
  }

  add(n: IPNet, key: string): void {
    this.held.set(SubnetIndex.id(n.base, n.prefix), key);
    for (let p = 0; p < n.prefix; p++) {
      const id = SubnetIndex.id(n.base & maskOf(n.family, p), p);
      this.below.set(id, (this.below.get(id) ?? 0) + 1);
    }
  }

  delete(n: IPNet): void {
    this.held.delete(SubnetIndex.id(n.base, n.prefix));
    for (let p = 0; p < n.prefix; p++) {
      const id = SubnetIndex.id(n.base & maskOf(n.family, p), p);
      const c = (this.below.get(id) ?? 0) - 1;
      if (c > 0) this.below.set(id, c);
      else this.below.delete(id);
    }
  }
}

export class PeerGuard {
  private readonly entries = new Map<string, Entry>();
  private readonly subnets = { 4: new SubnetIndex(), 6: new SubnetIndex() };
  /** claim → key of the accepted lease that holds it */
  private readonly claimed = new Map<string, string>();
  private readonly ownClaims: Set<string>;
  private seq = 0;

  constructor(private readonly o: PeerGuardOptions) {
    const c = o.claims?.(o.own);
    this.ownClaims = new Set(Array.isArray(c) ? c : []);
  }

  /** Accepted peer leases (key → lease), for tests and diagnostics. */
  accepted(): Map<string, Lease> {
    return new Map([...this.entries].filter(([, e]) => e.accepted).map(([k, e]) => [k, e.lease]));
  }

  /** Refused live leases (key → reason), for tests and diagnostics. */
  refused(): Map<string, string> {
    return new Map([...this.entries].filter(([, e]) => !e.accepted).map(([k, e]) => [k, e.why ?? '']));
  }

  /**
   * Turns a batch of lease events into the events of accepted leases, in an order a backend can apply
   * as is: a lease that leaves (removed, pushed out, or refused after an update) comes before the one
   * that takes its place. At most one event per lease key, except a key removed and re-added.
   */
  update(events: readonly LeaseEvent[]): LeaseEvent[] {
    // the last event of each lease; removals first, then additions best rank first (stable)
    const last = new Map<string, LeaseEvent>();
    for (const ev of events) {
      if (this.isOwn(ev.lease)) continue;
      const key = leaseKey(ev.lease);
      last.delete(key);
      last.set(key, ev);
    }
    const evs = [...last.values()];
    const removals = evs.filter((e) => e.type === 'removed');
    const adds = evs.filter((e) => e.type === 'added').map((e, i) => ({ e, i, r: this.rank(e.lease) }));
    adds.sort((a, b) => a.r - b.r || a.i - b.i);

    const out: LeaseEvent[] = [];
    // a lease waiting for a slot freed by a removal comes before a new one of the same batch
    let freed = false;
    for (const ev of removals) freed = this.remove(ev.lease, out) || freed;
    if (freed) this.promote(out);
    freed = false;
    for (const { e } of adds) freed = this.add(e.lease, out) || freed;
    if (freed) this.promote(out);
    return out;
  }

  /** Whether a lease is our own (same subnet in a family we run): never a peer. */
  isOwn(l: Lease): boolean {
    const own = this.o.own;
    return (
      (this.o.enableIPv4 && l.enableIPv4 && own.enableIPv4 && netEqual(l.subnet, own.subnet)) ||
      (this.o.enableIPv6 && !!l.ipv6Subnet && !!own.ipv6Subnet && netEqual(l.ipv6Subnet, own.ipv6Subnet))
    );
  }

  /** The subnets of a lease that this node uses. */
  private subnetsOf(l: Lease): IPNet[] {
    const out: IPNet[] = [];
    if (this.o.enableIPv4 && l.enableIPv4 && l.subnet) out.push(l.subnet);
    if (this.o.enableIPv6 && l.ipv6Subnet) out.push(l.ipv6Subnet);
    return out;
  }

  /** 0 when every subnet has our SubnetLen, else how many do not (lower wins). */
  private rank(l: Lease): number {
    let r = 0;
    for (const n of this.subnetsOf(l)) {
      const own = n.family === 4 ? this.o.own.subnet : this.o.own.ipv6Subnet;
      if (!own || own.prefix !== n.prefix) r++;
    }
    return r;
  }

  /** Why a lease can never be accepted, whatever else is live; or its claims. */
  private fixedProblem(l: Lease): { why: string } | { claims: string[] } {
    for (const n of this.subnetsOf(l)) {
      const fam: Family = n.family;
      const network = fam === 4 ? this.o.network : this.o.ipv6Network;
      const outside = peerSubnetProblem(n, network);
      if (outside) return { why: outside };
      const own = fam === 4 ? this.o.own.subnet : this.o.own.ipv6Subnet;
      if (own && netOverlaps(n, own)) {
        const what = network && netEqual(n, network) ? 'it is the whole network and ' : '';
        return { why: `${what}its subnet ${formatNet(n)} overlaps our own subnet ${formatNet(own)}` };
      }
      const ip = fam === 4 ? l.attrs.publicIP : l.attrs.publicIPv6;
      // an absent (or 0.0.0.0) PublicIP is the backend's business: it skips that family with a log line
      if (!ip || ip.value === 0n) continue;
      if (ip.family !== fam) return { why: `its PublicIP${fam === 6 ? 'v6' : ''} ${formatIP(ip)} is not IPv${fam}` };
      const bad = unicastProblem(ip) ?? this.directedBroadcast(ip);
      if (bad) return { why: bad };
      if (this.o.ownAddrs.some((a) => a && ipEqual(a, ip))) return { why: `its PublicIP ${formatIP(ip)} is our own address` };
    }
    const c = this.o.claims?.(l) ?? [];
    if (typeof c === 'string') return { why: c };
    const mine = c.find((x) => this.ownClaims.has(x));
    if (mine) return { why: `it claims our own ${mine}` };
    return { claims: c };
  }

  private directedBroadcast(ip: IP): string | undefined {
    for (const n of this.o.underlay ?? []) {
      if (n.family !== 4 || n.prefix >= 31 || !netContains(n, ip)) continue;
      if (ip.value === n.base || ipEqual(ip, netLast(n))) {
        return `its PublicIP ${formatIP(ip)} is the ${ip.value === n.base ? 'network' : 'broadcast'} address of ${formatNet(n)}`;
      }
    }
    return undefined;
  }

  /** Keys of accepted leases (other than `self`) that `l` conflicts with, and a reason. */
  private conflicts(l: Lease, claims: string[], self: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const n of this.subnetsOf(l)) {
      const k = this.subnets[n.family].overlapping(n);
      if (k !== undefined && k !== self && !out.has(k)) out.set(k, `its subnet ${formatNet(n)} overlaps`);
    }
    for (const c of claims) {
      const k = this.claimed.get(c);
      if (k !== undefined && k !== self && !out.has(k)) out.set(k, `its ${c} is also claimed by`);
    }
    return out;
  }

  private hold(key: string, e: Entry): void {
    e.accepted = true;
    delete e.why;
    for (const n of this.subnetsOf(e.lease)) this.subnets[n.family].add(n, key);
    for (const c of e.claims) this.claimed.set(c, key);
  }

  private release(key: string, e: Entry): void {
    e.accepted = false;
    for (const n of this.subnetsOf(e.lease)) this.subnets[n.family].delete(n);
    for (const c of e.claims) if (this.claimed.get(c) === key) this.claimed.delete(c);
  }

  private refuse(key: string, e: Entry, why: string): void {
    if (e.why === why) return;
    e.why = why;
    this.o.log(`refusing peer lease ${key} (PublicIP ${describeIPs(e.lease)}): ${why}; nothing is programmed for it while that lasts`);
  }

  /** Handles a removal; true if an accepted lease left (refused ones may fit now). */
  private remove(l: Lease, out: LeaseEvent[]): boolean {
    const key = leaseKey(l);
    const cur = this.entries.get(key);
    if (!cur) {
      // never seen by this run: pass it on (the backend removes what it would have had) unless it
      // names something an accepted lease holds
      const f = this.fixedProblem(l);
      const c = 'claims' in f ? this.conflicts(l, f.claims, key) : new Map<string, string>();
      if ('why' in f || c.size > 0) {
        const why = 'why' in f ? f.why : `${[...c].map(([k, w]) => `${w} ${k}`).join('; ')}`;
        this.o.log(`removed peer lease ${key} was not known and is not removed from the kernel: ${why}`);
        return false;
      }
      out.push({ type: 'removed', lease: l });
      return false;
    }
    this.entries.delete(key);
    if (!cur.accepted) {
      this.o.log(`refused peer lease ${key} was removed`);
      return false;
    }
    this.release(key, cur);
    out.push({ type: 'removed', lease: cur.lease });
    return true;
  }

  /** Handles an addition (new or updated lease); true if an accepted lease left. */
  private add(l: Lease, out: LeaseEvent[]): boolean {
    const key = leaseKey(l);
    const cur = this.entries.get(key);
    const e: Entry = { lease: l, accepted: false, seq: cur?.seq ?? ++this.seq, claims: [], ...(cur?.why !== undefined ? { why: cur.why } : {}) };
    let freed = false;
    if (cur?.accepted) this.release(key, cur);
    this.entries.set(key, e);
    const f = this.fixedProblem(l);
    if ('why' in f) {
      if (cur?.accepted) {
        out.push({ type: 'removed', lease: cur.lease });
        freed = true;
      }
      this.refuse(key, e, f.why);
      return freed;
    }
    e.claims = f.claims;
    const c = this.conflicts(l, f.claims, key);
    const r = this.rank(l);
    const winners = [...c.keys()].filter((k) => this.rank(this.entries.get(k)!.lease) <= r);
    if (winners.length > 0) {
      if (cur?.accepted) {
        out.push({ type: 'removed', lease: cur.lease });
        freed = true;
      }
      const w = winners[0]!;
      this.refuse(key, e, `${c.get(w)} the peer lease ${w} (PublicIP ${describeIPs(this.entries.get(w)!.lease)}), which takes precedence`);
      return freed;
    }
    // every conflicting lease has a worse rank (another prefix than SubnetLen): push it out
    for (const k of c.keys()) {
      const loser = this.entries.get(k)!;
      this.release(k, loser);
      out.push({ type: 'removed', lease: loser.lease });
      this.refuse(k, loser, `${c.get(k)} the peer lease ${key} (PublicIP ${describeIPs(l)}), which has the network's subnet length and takes precedence`);
      freed = true;
    }
    this.hold(key, e);
    out.push({ type: 'added', lease: l });
    return freed;
  }

  /** After leases left: accept refused leases that fit now, best rank and first seen first. */
  private promote(out: LeaseEvent[]): void {
    // one pass is enough: accepting a lease only adds conflicts for the ones after it
    const waiting = [...this.entries]
      .filter(([, e]) => !e.accepted)
      .sort(([, a], [, b]) => this.rank(a.lease) - this.rank(b.lease) || a.seq - b.seq);
    for (const [key, e] of waiting) {
      const f = this.fixedProblem(e.lease);
      if ('why' in f) continue;
      e.claims = f.claims;
      if (this.conflicts(e.lease, f.claims, key).size > 0) continue;
      this.hold(key, e);
      this.o.log(`accepting peer lease ${key} (PublicIP ${describeIPs(e.lease)}): what it conflicted with is gone`);
      out.push({ type: 'added', lease: e.lease });
    }
  }
}

function describeIPs(l: Lease): string {
  const v4 = formatIP(l.attrs.publicIP);
  return l.attrs.publicIPv6 ? `${v4}, ${formatIP(l.attrs.publicIPv6)}` : v4;
}

/** The IPv4 networks on the external interface (for PeerGuardOptions.underlay); none if unreadable. */
export async function underlayNetworks(kernel: Kernel, dev: string, log: (msg: string) => void): Promise<IPNet[]> {
  try {
    const addrs = await kernel.listAddrs({ dev, family: 4 });
    return addrs.flatMap((a) => {
      const c = tryParseCIDR(a.cidr);
      return c ? [c.net] : [];
    });
  } catch (err) {
    log(`could not read the addresses of ${dev} (peers' PublicIPs are not checked against its broadcast address): ${err instanceof Error ? err.message : String(err)}`);
    return [];
  }
}
