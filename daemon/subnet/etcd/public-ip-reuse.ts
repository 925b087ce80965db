// Which lease carrying our PublicIP is ours to reuse.
//
// Go's acquireLease reuses the first lease whose PublicIP equals ours. Behind one public IP (NAT,
// Vagrant, several nodes given the same --public-ip) that lease may be another live node's, and
// taking it puts two nodes on one subnet: the other node's pods go dark, silently. A lease carrying
// our PublicIP is ours when:
//   - it is a reservation (a key without an etcd lease: the operator pinned the subnet to this IP,
//     and no node renews it), as Go;
//   - it is the subnet this process already holds (a re-acquire in the same process);
//   - we know our previous subnet (subnet.env, or the data dir's history) and it is that subnet.
//     A live lease with our PublicIP and another subnet cannot be ours: had we held it, we would
//     have reused it last time instead of taking the previous subnet;
//   - we know no previous subnet (a rebooted node: /run is gone) and it is the only live lease with
//     our PublicIP, and either its attributes carry node-bound data equal to ours (a VXLAN VtepMAC
//     comes from this node's device) or it was not renewed within `liveWindowMs` (default 10 min):
//     a lease granted moments ago is a live node that just started or renewed, and a node that
//     restarts that quickly still has its subnet.env. This keeps Go's "a restarted node reuses its
//     own lease" where it is safe.
// Everything else is refused (left alone, never deleted): the price of a wrong refusal is one
// subnet unused until its 24 h lease expires; the price of a wrong reuse is an outage.
import { type IPNet, formatIP, netEqual } from '../../../shared/net/ip.js';
import type { Lease, LeaseAttrs } from '../../lease.js';
import { marshalLeaseAttrs } from '../lease-json.js';
import { describeSubnet } from './registry.js';

export const DEFAULT_LIVE_WINDOW_MS = 10 * 60 * 1000;

export interface ReuseInput {
  /** every lease whose PublicIP is ours; live ones with their expiration looked up (0: unknown) */
  candidates: readonly Lease[];
  attrs: LeaseAttrs;
  previous?: IPNet;
  /** the lease this process holds already, if any */
  held?: Lease;
  now: number;
  /** the TTL every create and renewal grants (24 h) */
  ttlSec: number;
  liveWindowMs: number;
}

export interface ReuseDecision {
  reuse?: Lease;
  /** why `reuse` is ours, for the log */
  because?: string;
  refused: { lease: Lease; why: string }[];
}

function hasNodeBoundData(a: LeaseAttrs): boolean {
  return (a.backendData !== undefined && a.backendData !== null) || (a.backendV6Data !== undefined && a.backendV6Data !== null);
}

export function chooseReusableLease(i: ReuseInput): ReuseDecision {
  const live = i.candidates.filter((l) => !l.reservation);
  const verdicts = i.candidates.map((l): { lease: Lease; ours: boolean; rank: number; why: string } => {
    if (l.reservation) return { lease: l, ours: true, rank: 1, why: 'a reservation for our public IP' };
    if (i.held && netEqual(i.held.subnet, l.subnet)) return { lease: l, ours: true, rank: 0, why: 'the lease this process holds' };
    if (i.previous) {
      return netEqual(i.previous, l.subnet)
        ? { lease: l, ours: true, rank: 0, why: 'our previous subnet' }
        : { lease: l, ours: false, rank: 9, why: `our previous subnet was ${describeSubnet(i.previous)}` };
    }
    if (live.length > 1) return { lease: l, ours: false, rank: 9, why: `${live.length} live leases carry this public IP` };
    if (hasNodeBoundData(l.attrs) && marshalLeaseAttrs(l.attrs) === marshalLeaseAttrs(i.attrs)) {
      return { lease: l, ours: true, rank: 2, why: 'its backend data is this node’s' };
    }
    if (l.expiration === 0) return { lease: l, ours: false, rank: 9, why: 'its TTL could not be read' };
    const renewedAgo = i.ttlSec * 1000 - (l.expiration - i.now);
    if (renewedAgo < i.liveWindowMs) {
      return { lease: l, ours: false, rank: 9, why: `it was renewed ${Math.max(0, Math.round(renewedAgo / 1000))}s ago` };
    }
    return { lease: l, ours: true, rank: 3, why: `it was last renewed ${Math.round(renewedAgo / 60_000)} min ago` };
  });
  const ours = verdicts.filter((v) => v.ours).sort((a, b) => a.rank - b.rank);
  const d: ReuseDecision = { refused: verdicts.filter((v) => !v.ours).map((v) => ({ lease: v.lease, why: v.why })) };
  if (ours[0]) {
    d.reuse = ours[0].lease;
    d.because = ours[0].why;
  }
  return d;
}

/** The one line an operator sees when leases with our PublicIP are left alone. */
export function refusalLine(publicIP: LeaseAttrs['publicIP'], refused: ReuseDecision['refused']): string {
  const list = refused.map((r) => `${describeSubnet(r.lease.subnet, r.lease.ipv6Subnet)} (${r.why})`).join(', ');
  return (
    `Not reusing lease${refused.length > 1 ? 's' : ''} ${list} although ${refused.length > 1 ? 'they carry' : 'it carries'} ` +
    `our public IP ${formatIP(publicIP)}: another live node behind the same public IP holds ${refused.length > 1 ? 'them' : 'it'}; ` +
    `leaving ${refused.length > 1 ? 'them' : 'it'} alone and taking another subnet (give each node its own --public-ip unless they share one through NAT)`
  );
}
