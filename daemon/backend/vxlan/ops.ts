// Pure helpers of network.ts: what a lease asks of us, and the kernel writes, ordered and described.
import type { KernelOp, Route } from '../../../shared/kernel/kernel.js';
import { ZERO_MAC, isUnicastMac, normalizeMac } from '../../../shared/net/mac.js';
import { field } from '../../../shared/go/json.js';
import type { Lease } from '../../lease.js';
import { formatIP, formatNet, netIP, tryParseIP, type IP } from '../../../shared/net/ip.js';
import { parseRouteDst } from '../../../shared/net/route.js';
import type { Fdb, Neigh } from '../../../shared/kernel/kernel.js';
import type { Neighbor } from './device.js';

/**
 * Orders a batch so that each tool gets one contiguous run (ip, bridge, ip: three execs at most with
 * iproute2) while every peer still sees its writes in the safe order: neighbour before FDB before route
 * when adding, route before neighbour and FDB when removing. Stable within a phase.
 */
export function orderOps(ops: readonly KernelOp[]): KernelOp[] {
  const phase = (op: KernelOp): number => {
    switch (op.op) {
      case 'deleteRoute':
      case 'deleteNeigh':
      case 'replaceNeigh':
        return 0;
      case 'deleteFdb':
      case 'replaceFdb':
      case 'appendFdb':
        return 1;
      default:
        return 2;
    }
  };
  const buckets: KernelOp[][] = [[], [], []];
  for (const op of ops) buckets[phase(op)]!.push(op);
  return buckets.flat();
}

export function describeOp(op: KernelOp): string {
  switch (op.op) {
    case 'deleteRoute':
      return `route ${op.route.dst} dev ${op.route.dev ?? ''}`;
    case 'deleteNeigh':
      return `neighbour ${op.ip} dev ${op.dev}`;
    case 'deleteFdb':
      return `fdb ${op.mac} dst ${op.dst ?? ''} dev ${op.dev}`;
    default:
      return op.op;
  }
}

/** A peer's entries as the kernel lists them: `dst` 10.10.32.0/20, `gw` 10.10.32.0, `pub` its PublicIP. */
export interface NeighborKeys {
  dst: string;
  gw: string;
  pub: string;
}

const keysCache = new WeakMap<Neighbor, NeighborKeys>();

/** The text forms of a peer's entries, formatted once per Neighbor (a reconcile at 5000 peers looks them all up). */
export function neighborKeys(n: Neighbor): NeighborKeys {
  let k = keysCache.get(n);
  if (k === undefined) keysCache.set(n, (k = { dst: formatNet(n.subnet), gw: formatIP(netIP(n.subnet)), pub: formatIP(n.publicIP) }));
  return k;
}

/**
 * The deletes of the flannel-owned entries on one of our devices that no kept peer accounts for.
 * Flannel-owned means, on flannel.<VNI> / flannel-v6.<VNI> only:
 * - a route `<net> via <net's own address> dev <ours> onlink` (the shape of every vxlan route we
 *   write; kernel prefix routes, link-local routes and an operator's `dev`-only routes do not match);
 * - a PERMANENT neighbour (we never write any other kind; learned entries are left to the kernel);
 * - a `self permanent` FDB entry with a remote `dst`, other than the all-zeros default destination.
 */
export function staleOps(
  dev: { name: string; family: 4 | 6 },
  keep: Iterable<Neighbor>,
  have: { routes: readonly Route[]; neighs: readonly Neigh[]; fdb: readonly Fdb[] },
): KernelOp[] {
  const { name, family } = dev;
  const keepRoutes = new Set<string>();
  const keepNeighs = new Set<string>();
  const keepFdb = new Set<string>();
  for (const n of keep) {
    const k = neighborKeys(n);
    keepRoutes.add(k.dst);
    keepNeighs.add(k.gw);
    keepFdb.add(`${n.mac}|${k.pub}`);
  }
  const ops: KernelOp[] = [];
  // a kept entry as the kernel spells it is skipped before any parsing (the common case, by far)
  for (const r of have.routes) {
    if (keepRoutes.has(r.dst)) continue;
    // `ip route show dev X` leaves `dev` out of each route: asked for ours, an absent one is ours
    if ((r.dev ?? name) !== name || !r.onlink || r.via === undefined || (r.table ?? 254) !== 254) continue;
    const dst = parseRouteDst(r.dst, family);
    const via = tryParseIP(r.via);
    if (!dst || !via || via.family !== family || via.value !== dst.base) continue;
    if (keepRoutes.has(formatNet(dst))) continue;
    ops.push({ op: 'deleteRoute', route: { dst: formatNet(dst), via: formatIP(via), dev: name, onlink: true } });
  }
  for (const n of have.neighs) {
    if (keepNeighs.has(n.ip)) continue;
    const ip = tryParseIP(n.ip);
    if (!n.permanent || !ip || ip.family !== family || keepNeighs.has(formatIP(ip))) continue;
    ops.push({ op: 'deleteNeigh', dev: name, ip: formatIP(ip) });
  }
  for (const f of have.fdb) {
    if (keepFdb.has(`${f.mac}|${f.dst}`)) continue;
    const mac = normalizeMac(f.mac);
    const dst = f.dst === undefined ? undefined : tryParseIP(f.dst);
    if (!f.self || !f.permanent || !mac || !dst || mac === ZERO_MAC) continue;
    if (keepFdb.has(`${mac}|${formatIP(dst)}`)) continue;
    ops.push({ op: 'deleteFdb', dev: name, mac, dst: formatIP(dst) });
  }
  return ops;
}

const isZero = (ip: IP | undefined): boolean => ip === undefined || ip.value === 0n;

/** The remote VTEP of one family of a lease, a reason why the lease cannot be used, or undefined (no such family). */
export function leaseNeighbor(lease: Lease, family: 4 | 6): Neighbor | string | undefined {
  const subnet = family === 4 ? lease.subnet : lease.ipv6Subnet;
  if (!subnet || (family === 4 && !lease.enableIPv4 && !lease.subnet)) return undefined;
  const publicIP = family === 4 ? lease.attrs.publicIP : lease.attrs.publicIPv6;
  const data = family === 4 ? lease.attrs.backendData : lease.attrs.backendV6Data;
  if (isZero(publicIP) || !publicIP) return `no public IPv${family}`;
  if (typeof data !== 'object' || data === null) return `no ${family === 4 ? 'BackendData' : 'BackendV6Data'}`;
  const rawMac = field(data as Record<string, unknown>, 'VtepMAC');
  const mac = normalizeMac(rawMac);
  if (!mac) return `error decoding subnet lease JSON: invalid VtepMAC ${JSON.stringify(rawMac)}`;
  return { subnet, mac, publicIP };
}

/**
 * What a vxlan lease holds exclusively besides its subnet (PeerGuard claims): its VtepMAC per family in
 * use (the FDB is keyed by MAC, so two leases with one MAC would take each other's entry). A VtepMAC that
 * is not unicast is refused: the kernel refuses a multicast FDB replace, and retrying would go on forever.
 */
export function vtepMacClaims(l: Lease, families: { v4: boolean; v6: boolean }): string[] | string {
  if (l.attrs.backendType !== 'vxlan') return [];
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    if (!(family === 4 ? families.v4 : families.v6)) continue;
    const data = family === 4 ? l.attrs.backendData : l.attrs.backendV6Data;
    if (typeof data !== 'object' || data === null) continue;
    const mac = normalizeMac(field(data as Record<string, unknown>, 'VtepMAC'));
    if (!mac) continue; // the lease is skipped with its own log line (leaseNeighbor)
    if (!isUnicastMac(mac)) return `its VtepMAC ${mac} is not a unicast MAC address`;
    out.push(`IPv${family} VtepMAC ${mac}`);
  }
  return out;
}
