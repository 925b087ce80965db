// One allocation range (backend/allocator/range.go): a subnet with an inclusive [rangeStart, rangeEnd]
// and a gateway. `canonicalizeRange` fills the defaults and validates exactly as Go does, with the same
// messages as the reference binaries (containernetworking-plugins 1.1.1), capitalisation included.
import { type IP, type IPNet, bitsOf, formatIP, makeNet, netContains, netLast, nextIP, prevIP } from '../../shared/net/ip.js';

/** A range as written in the config; every field may be missing. */
export interface RangeSpec {
  /** the subnet as written: address (host bits possibly set) and prefix */
  subnet?: { ip: IP; prefix: number };
  rangeStart?: IP;
  rangeEnd?: IP;
  gateway?: IP;
}

/** A canonical range: every field set and validated. */
export interface Range {
  subnet: IPNet;
  rangeStart: IP;
  rangeEnd: IP;
  gateway: IP;
}

/** Range.Canonicalize. Throws Error with Go's message. */
export function canonicalizeRange(spec: RangeSpec): Range {
  const s = spec.subnet;
  if (s === undefined) throw new Error('IP <nil> not v4 nor v6');
  const bits = bitsOf(s.ip.family);
  if (s.prefix > bits - 2) throw new Error(`Network ${formatIP(s.ip)}/${s.prefix} too small to allocate from`);
  const subnet = makeNet(s.ip, s.prefix);
  if (subnet.base !== s.ip.value) {
    const base = formatIP({ family: subnet.family, value: subnet.base });
    throw new Error(`Network has host bits set. For a subnet mask of length ${s.prefix} the network address is ${base}`);
  }
  const first = nextIP({ family: subnet.family, value: subnet.base });
  const gateway = spec.gateway ?? first;
  // Go checks each bound with Contains() while the other bound is still the raw value from the config,
  // so rangeStart > rangeEnd is reported as "RangeStart ... not in network".
  const partial = { subnet, rangeStart: spec.rangeStart, rangeEnd: spec.rangeEnd };
  if (spec.rangeStart !== undefined && !containsPartial(partial, spec.rangeStart)) {
    throw new Error(`RangeStart ${formatIP(spec.rangeStart)} not in network ${formatIP(s.ip)}/${s.prefix}`);
  }
  const rangeStart = spec.rangeStart ?? first;
  partial.rangeStart = rangeStart;
  if (spec.rangeEnd !== undefined && !containsPartial(partial, spec.rangeEnd)) {
    throw new Error(`RangeEnd ${formatIP(spec.rangeEnd)} not in network ${formatIP(s.ip)}/${s.prefix}`);
  }
  const rangeEnd = spec.rangeEnd ?? lastIP(subnet);
  return { subnet, rangeStart, rangeEnd, gateway };
}

/** The last allocatable address: broadcast − 1 for IPv4, the all-ones address for IPv6. */
export function lastIP(subnet: IPNet): IP {
  const last = netLast(subnet);
  return subnet.family === 4 ? prevIP(last) : last;
}

function containsPartial(r: { subnet: IPNet; rangeStart?: IP | undefined; rangeEnd?: IP | undefined }, ip: IP): boolean {
  if (!netContains(r.subnet, ip)) return false;
  // Go's ip.Cmp compares the numeric values whatever the families.
  if (r.rangeStart !== undefined && ip.value < r.rangeStart.value) return false;
  if (r.rangeEnd !== undefined && ip.value > r.rangeEnd.value) return false;
  return true;
}

/** Range.Contains: inside the subnet and within [rangeStart, rangeEnd]. */
export function rangeContains(r: Range, ip: IP): boolean {
  return containsPartial(r, ip);
}

/** Range.Overlaps: same family and either range holds a bound of the other. */
export function rangesOverlap(a: Range, b: Range): boolean {
  if (a.subnet.family !== b.subnet.family) return false;
  return rangeContains(a, b.rangeStart) || rangeContains(a, b.rangeEnd) || rangeContains(b, a.rangeStart) || rangeContains(b, a.rangeEnd);
}

/** Range.String: `start-end`. */
export function formatRange(r: Range): string {
  return `${formatIP(r.rangeStart)}-${formatIP(r.rangeEnd)}`;
}
