// Leases as flannel's pkg/lease has them: the subnet a host holds, who holds it (PublicIP) and what the
// backend needs to reach it (BackendType/BackendData). Pure data; parsing and the etcd wire format live
// in daemon/subnet/.
import type { IP, IPNet } from '../shared/net/ip.js';

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
