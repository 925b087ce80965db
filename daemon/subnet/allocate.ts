// Subnet allocation (pkg/subnet/etcd allocateSubnet): walk from SubnetMin to SubnetMax one SubnetLen
// block at a time, collect up to 100 blocks that overlap no existing lease, pick one uniformly at
// random. v6 is done the same way, independently. Pure: the random source is a parameter.
//
// Go compares every candidate with every lease (O(candidates × leases)); with 5000 leases packed
// from SubnetMin that is 25M overlap checks. Here leases of exactly SubnetLen are looked up in a Set
// by base address and only odd-sized ones are scanned, which gives the same answer.
import { type IP, type IPNet, bitsOf, formatIP, makeNet, netOverlaps } from '../../shared/net/ip.js';
import type { Lease } from '../lease.js';
import type { Config } from './config.js';

export const MAX_CANDIDATES = 100;

function freeBlocks(min: IP, max: IP, len: number, taken: IPNet[]): IPNet[] {
  const family = min.family;
  const step = 1n << BigInt(bitsOf(family) - len);
  const sameSize = new Set<bigint>();
  const others: IPNet[] = [];
  for (const t of taken) {
    if (t.family !== family) continue;
    if (t.prefix === len) sameSize.add(t.base);
    else others.push(t);
  }
  const bag: IPNet[] = [];
  for (let v = min.value; v <= max.value && bag.length < MAX_CANDIDATES; v += step) {
    if (sameSize.has(v)) continue;
    const sn = makeNet({ family, value: v }, len);
    if (others.some((o) => netOverlaps(sn, o))) continue;
    bag.push(sn);
  }
  return bag;
}

export interface Pick {
  sn: IPNet;
  sn6?: IPNet;
  /** for the log line `Picking subnet in range <first> ... <last>` */
  range: string;
}

/** Throws `out of subnets` when no v4 block (or no v6 block with IPv6 enabled) is free. */
export function pickSubnet(cfg: Config, leases: readonly Lease[], random: () => number = Math.random): Pick {
  const bag = freeBlocks(cfg.subnetMin!, cfg.subnetMax!, cfg.subnetLen, leases.map((l) => l.subnet));
  if (bag.length === 0) throw new RangeError('out of subnets');
  const sn = bag[Math.floor(random() * bag.length)]!;
  let range = `${formatIP(cfg.subnetMin!)} ... ${formatIP(cfg.subnetMax!)}`;
  if (!cfg.enableIPv6) return { sn, range };
  const bag6 = freeBlocks(
    cfg.ipv6SubnetMin!,
    cfg.ipv6SubnetMax!,
    cfg.ipv6SubnetLen,
    leases.flatMap((l) => (l.ipv6Subnet ? [l.ipv6Subnet] : [])),
  );
  if (bag6.length === 0) throw new RangeError('out of subnets');
  range += ` (v6 ${formatIP(cfg.ipv6SubnetMin!)} ... ${formatIP(cfg.ipv6SubnetMax!)})`;
  return { sn, sn6: bag6[Math.floor(random() * bag6.length)]!, range };
}
