// Leases as flannel's pkg/lease has them: the subnet a host holds, who holds it (PublicIP) and what the
// backend needs to reach it (BackendType/BackendData). Pure data; parsing and the etcd wire format live
// in daemon/subnet/.
import { formatNet, netContains, netIP, type IP, type IPNet } from '../shared/net/ip.js';

export interface LeaseAttrs {
  publicIP: IP;
  publicIPv6?: IP;
  /** `vxlan`, `host-gw`, ...; absent for `alloc`/`udp` (omitted from the JSON, as Go's omitempty) */
  backendType?: string;
  /** raw JSON object, e.g. {"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"} */
  backendData?: unknown;
  backendV6Data?: unknown;
}

export interface Lease {
  enableIPv4: boolean;
  enableIPv6: boolean;
  subnet: IPNet;
  ipv6Subnet?: IPNet;
  attrs: LeaseAttrs;
  /**
   * ms since epoch; for a key without an etcd lease (a reservation) this is `now - 1 s`, as Go.
   * 0 when it is not known: not looked up (the etcd manager asks etcd for TTLs only where flanneld
   * uses them, our own lease, not for peers) or the lookup failed (see daemon/subnet/etcd/registry.ts).
   */
  expiration: number;
  /**
   * Our extension: true for a key stored without an etcd lease (an operator's reservation,
   * Documentation/reservations.md). Such a lease is never renewed and never given a TTL.
   */
  reservation?: boolean;
}

export type LeaseEventType = 'added' | 'removed';

export interface LeaseEvent {
  type: LeaseEventType;
  /** for `removed`, the lease as it was known before (attrs included), so a backend can undo it */
  lease: Lease;
}

/** A lease's identity in a backend's maps: `<v4 subnet>` or `<v4>&<v6>` (the subnet key's shape). */
export function leaseKey(lease: Lease): string {
  const v4 = lease.subnet ? formatNet(lease.subnet) : '';
  return lease.ipv6Subnet ? `${v4}&${formatNet(lease.ipv6Subnet)}` : v4;
}

/**
 * The last event of each lease in a batch, in the order of those last events, leaving out the ones
 * `skip` names (our own lease). Backends write with replace semantics and remove what they
 * programmed, so one plan per lease is enough and never conflicts with itself.
 */
export function lastEventPerLease(events: readonly LeaseEvent[], skip: (l: Lease) => boolean): Map<string, LeaseEvent> {
  const last = new Map<string, LeaseEvent>();
  for (const ev of events) {
    if (skip(ev.lease)) continue;
    const key = leaseKey(ev.lease);
    last.delete(key);
    last.set(key, ev);
  }
  return last;
}

/**
 * Why a peer's subnet must not be routed, or undefined when it may: it has to lie inside the flannel
 * network of its family. Go routes whatever a key says, so a junk or hostile key such as `0.0.0.0-0`
 * would take over the node's default route (or its LAN's) and cut it off from etcd.
 */
export function peerSubnetProblem(subnet: IPNet, network: IPNet | undefined): string | undefined {
  if (network === undefined) return subnet.prefix === 0 ? `its subnet ${formatNet(subnet)} would replace the default route` : undefined;
  if (subnet.family === network.family && subnet.prefix >= network.prefix && netContains(network, netIP(subnet))) return undefined;
  return `its subnet ${formatNet(subnet)} is outside the network ${formatNet(network)}`;
}
